#!/usr/bin/env python3
"""Regenerates Tests/ModelsTests/Fixtures/musicnn: musicnn's own model and spectrogram (TensorFlow, the reference) on three 16 kHz
recordings — espeak-ng's voice from the Media fixtures, flite's "awb" voice (a male voice built from recorded speech,
less robotic than espeak-ng's) and a synthetic piano-like melody, both written here — per-patch 200-d penultimate
features and 50 tag probabilities; and checks that our TensorFlow-checkpoint converter
(scripts/tf_checkpoint_to_safetensors.py) reads every variable exactly as TensorFlow does.
Needs flite and sox (Debian) for the voice.

Needs TensorFlow 2.15 with numpy<2, librosa and musicnn (a separate venv; musicnn pins old versions):
    python3 -m venv .cache/tf-venv
    .cache/tf-venv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" librosa==0.10.2.post1
    .cache/tf-venv/bin/pip install --no-deps musicnn==0.1.0
    .cache/tf-venv/bin/python scripts/make-audio-tower-fixtures.py
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

tf.compat.v1.disable_eager_execution()
from musicnn import configuration, models
from musicnn.extractor import batch_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import tf_checkpoint_to_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "musicnn")
PREFIX = os.path.join(ROOT, "models", "musicnn-mtt", "")


def check_converter():
    ours = tf_checkpoint_to_safetensors.read_checkpoint(PREFIX)
    reader = tf.compat.v1.train.NewCheckpointReader(PREFIX)
    for name, (dtype, shape, raw) in ours.items():
        reference = reader.get_tensor(name)
        assert list(reference.shape) == shape, name
        assert np.array_equal(np.frombuffer(raw, dtype="<f4").reshape(shape), reference), name
    print(f"converter: {len(ours)} variables identical to TensorFlow's reader")


def melody(path, rate=16000, seconds=7):
    """Notes with decaying harmonics, a rough piano."""
    t = np.arange(int(rate * 0.5)) / rate
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 293.66, 349.23, 440.0, 349.23, 293.66, 246.94, 261.63, 196.0]
    signal = np.concatenate([sum(np.exp(-3 * t * h) * np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6)) for f in notes])
    signal = (0.3 * signal[: rate * seconds] / np.abs(signal).max()).astype(np.float32)
    pcm = np.round(signal * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    open(path, "wb").write(header + b"data" + struct.pack("<I", len(pcm)) + pcm)


def voice(path):
    """A spoken sentence by flite's awb voice, 16 kHz 16-bit mono."""
    with tempfile.TemporaryDirectory() as work:
        spoken = os.path.join(work, "voice.wav")
        subprocess.run(["flite", "-voice", "awb", "-t", "The weather today is cloudy, with a chance of rain in the "
                        "afternoon, so bring an umbrella.", "-o", spoken], check=True)
        subprocess.run(["sox", spoken, "-r", "16000", "-b", "16", "-c", "1", path], check=True)


def reference(path):
    """musicnn's extractor with its patch loop fixed: `extractor()` (0.1.0) returns the first patch's penultimate
    features for every patch (its loop unpacks the new values as `backend_` and concatenates the stale
    `penultimate_`). Same spectrogram (`batch_data`), same graph (`models.define_model`), same checkpoint."""
    n_frames = 187
    batch, _ = batch_data(path, n_frames, n_frames)
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, configuration.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, penultimate = models.define_model(x, is_training, "MTT_musicnn", len(configuration.MTT_LABELS))
        tags = tf.nn.sigmoid(y)
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, PREFIX)
        outputs = [session.run([tags, penultimate], feed_dict={x: batch[i:i + 1], is_training: False})
                   for i in range(batch.shape[0])]
    return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs])


def main():
    check_converter()
    os.makedirs(OUT, exist_ok=True)
    melody(os.path.join(OUT, "melody.wav"))
    voice(os.path.join(OUT, "voice.wav"))
    files = {"speech": os.path.join(ROOT, "Tests", "MediaTests", "Fixtures", "audio", "speech.wav"),
             "voice": os.path.join(OUT, "voice.wav"),
             "melody": os.path.join(OUT, "melody.wav")}
    cases = []
    for name, path in files.items():
        taggram, penultimate = reference(path)
        tags = configuration.MTT_LABELS
        cases.append({"name": name, "penultimate": np.round(penultimate, 6).tolist(),
                      "tags": np.round(taggram, 6).tolist(), "labels": tags})
        top = np.argsort(-taggram.mean(0))[:5]
        print(f"{name}: {taggram.shape[0]} patches, top tags {[tags[i] for i in top]}")
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()
