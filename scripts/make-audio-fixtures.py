#!/usr/bin/env python3
"""Regenerates Tests/MediaTests/Fixtures/audio: one 16 kHz test signal (a chord, a chirp to 7 kHz and noise, 0.5 s) written as
WAV in every supported encoding, and librosa's mel spectrogram (the reference) of it and of a spoken sentence.

- signal.f32: the signal (float32, little-endian), what every mono encoding decodes to within its quantisation;
  the stereo files hold (signal, 0.5 · signal), which mixes to 0.75 · signal.
- *.wav: PCM u8/16/24/32, float 32/64, WAVE_FORMAT_EXTENSIBLE, big-endian RIFX, stereo, an odd-sized chunk
  before the data, a cut-off data chunk.
- rate-<hz>.wav / rate-<hz>.16k.f32: the signal's recipe rendered at 44.1, 48, 22.05 and 8 kHz (float32), and
  librosa's `resample(y, orig_sr=hz, target_sr=16000, res_type="kaiser_best")` of it (resampy's filter).
- signal.mel.f32, speech.mel.f32: `librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256,
  n_mels=96)` (frames × bands, float32); speech.wav is espeak-ng's voice resampled to 16 kHz by sox.

Needs numpy and librosa (e.g. `.cache/bench-venv/bin/pip install librosa`), espeak-ng and sox (Debian):
    .cache/bench-venv/bin/python scripts/make-audio-fixtures.py
"""
import os
import shutil
import struct
import subprocess
import tempfile

import librosa
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "MediaTests", "Fixtures", "audio")
RATE = 16000


def signal(rate=RATE):
    t = np.arange(rate // 2) / rate
    chord = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220, 277.18, 329.63))
    chirp = 0.2 * np.sin(2 * np.pi * (100 * t + 7000 * t ** 2))
    noise = 0.05 * np.random.default_rng(1).standard_normal(rate // 2)
    return (chord + chirp + noise).clip(-0.99, 0.99).astype(np.float32)


def wav(path, channels, tag, bits, payload, big=False, extensible=False, extra_chunk=False, declared=None, rate=RATE):
    e = ">" if big else "<"
    block = channels * bits // 8
    if extensible:
        guid = struct.pack(e + "H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack(e + "HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack(e + "HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack(e + "I", len(fmt)) + fmt
    if extra_chunk:
        chunks += b"LIST" + struct.pack(e + "I", 5) + b"INFOx\x00"   # odd size, padded
    chunks += b"data" + struct.pack(e + "I", declared if declared is not None else len(payload)) + payload
    header = (b"RIFX" if big else b"RIFF") + struct.pack(e + "I", 4 + len(chunks)) + b"WAVE"
    open(path, "wb").write(header + chunks)


def pcm(x, bits, big=False):
    if bits == 8:
        return (np.round(x * 128) + 128).clip(0, 255).astype(np.uint8).tobytes()
    scaled = np.round(x.astype(np.float64) * 2 ** (bits - 1)).clip(-2 ** (bits - 1), 2 ** (bits - 1) - 1).astype(np.int64)
    if bits == 24:
        raw = scaled.astype("<i4").tobytes()
        frames = [raw[i:i + 3] for i in range(0, len(raw), 4)]
        return b"".join(f[::-1] for f in frames) if big else b"".join(frames)
    return scaled.astype((">" if big else "<") + {16: "i2", 32: "i4"}[bits]).tobytes()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    x = signal()
    x.astype("<f4").tofile(os.path.join(OUT, "signal.f32"))
    p = lambda name: os.path.join(OUT, name)  # noqa: E731
    wav(p("pcm8.wav"), 1, 1, 8, pcm(x, 8))
    wav(p("pcm16.wav"), 1, 1, 16, pcm(x, 16))
    wav(p("pcm24.wav"), 1, 1, 24, pcm(x, 24))
    wav(p("pcm32.wav"), 1, 1, 32, pcm(x, 32))
    wav(p("float32.wav"), 1, 3, 32, x.astype("<f4").tobytes())
    wav(p("float64.wav"), 1, 3, 64, x.astype("<f8").tobytes())
    wav(p("extensible-pcm24.wav"), 1, 1, 24, pcm(x, 24), extensible=True)
    wav(p("rifx-pcm16.wav"), 1, 1, 16, pcm(x, 16, big=True), big=True)
    stereo = np.stack([x, 0.5 * x], axis=1).reshape(-1)
    wav(p("stereo-pcm16.wav"), 2, 1, 16, pcm(stereo, 16))
    wav(p("stereo-float32-extensible.wav"), 2, 3, 32, stereo.astype("<f4").tobytes(), extensible=True)
    wav(p("odd-chunk-pcm16.wav"), 1, 1, 16, pcm(x, 16), extra_chunk=True)
    wav(p("cut-off-pcm16.wav"), 1, 1, 16, pcm(x, 16)[:8000], declared=0xFFFFFFFF)

    for rate in (44100, 48000, 22050, 8000):
        y = signal(rate)
        wav(p(f"rate-{rate}.wav"), 1, 3, 32, y.astype("<f4").tobytes(), rate=rate)
        librosa.resample(y, orig_sr=rate, target_sr=RATE, res_type="kaiser_best").astype("<f4").tofile(p(f"rate-{rate}.16k.f32"))

    librosa.feature.melspectrogram(y=x, sr=RATE, n_fft=512, hop_length=256, n_mels=96).T.astype("<f4").tofile(p("signal.mel.f32"))
    with tempfile.TemporaryDirectory() as tmp:
        spoken = os.path.join(tmp, "spoken.wav")
        subprocess.run(["espeak-ng", "-w", spoken, "A cat sat on the sofa and listened to solo piano."], check=True)
        subprocess.run(["sox", spoken, "-r", "16000", "-b", "16", p("speech.wav")], check=True)
    speech, _ = librosa.load(p("speech.wav"), sr=None)
    librosa.feature.melspectrogram(y=speech, sr=RATE, n_fft=512, hop_length=256, n_mels=96).T.astype("<f4").tofile(p("speech.mel.f32"))
    total = sum(os.path.getsize(p(f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: {len(os.listdir(OUT))} files, {total // 1024} KiB")


if __name__ == "__main__":
    main()
