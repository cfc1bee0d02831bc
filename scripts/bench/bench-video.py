#!/usr/bin/env python3
"""Video items: a 60-second 720p H.264 + AAC clip (a pan across a photo, 30 fps, a keyframe every 2 s, the melody
looped as its soundtrack), its cover and 5 frames and its soundtrack brought to tower inputs.

- Ours: `omniembed benchmark --video` (the frames seeked and decoded, converted, Pillow-exact resized and cropped
  to 224 × 224 tensors; the soundtrack decoded and resampled to 16 kHz), on one thread, as the decode pool runs an item.
- The ffmpeg CLI and Pillow, as a pipeline without our service would do it: one `ffmpeg -ss T -i clip -frames:v 1`
  per time (rgb24; a fast seek to the keyframe before it, then decoding forward, as ours), one writing the soundtrack
  as 16 kHz mono float (one command for all seven outputs was 2.5x slower: it reads the file once per input), one
  after another, then Pillow's resize and crop and the same normalisation in NumPy. The CLI picks its own threads.
- /embed with one video item per request (a title and the clip: cover, 5 frames, soundtrack) at 8 connections,
  items/s and p50/p99 (wrk).

Medians of --rounds rounds; run through scripts/bench/bench-video.
"""
import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402
from bench_common import WRK_DONE_LUA, free_port, run_wrk, stop_servers, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(ROOT, ".cache", "bench", "clip-60s-720p.mp4")
LUA = r"""
local body = io.open(os.getenv("BENCH_BODY")):read("*a")
request = function()
    return wrk.format("POST", "/embed", {["Content-Type"] = "application/json"}, body)
end
""" + WRK_DONE_LUA


def make_clip():
    if os.path.exists(CLIP):
        return
    os.makedirs(os.path.dirname(CLIP), exist_ok=True)
    photo = os.path.join(ROOT, "Tests", "MediaTests", "Fixtures", "images", "preprocess", "cat.jpg")
    melody = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "musicnn", "melody.wav")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-framerate", "30", "-i", photo,
                    "-stream_loop", "-1", "-i", melody, "-t", "60",
                    "-vf", "scale=1920:1440,crop=1280:720:x='640*t/60':y='720*t/60'", "-c:v", "libx264", "-preset",
                    "veryfast", "-crf", "26", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                    "-ar", "44100", "-shortest", CLIP], check=True)


def duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def cli_and_pillow(path, times, work):
    """Seconds for the CLI to write the frames and the soundtrack, and Pillow to preprocess the frames."""
    import numpy as np
    from PIL import Image
    started = time.perf_counter()
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    for index, t in enumerate(times):
        subprocess.run(quiet + ["-ss", f"{t:.6f}", "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24",
                                os.path.join(work, f"frame{index}.rgb")], check=True)
    subprocess.run(quiet + ["-i", path, "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", os.path.join(work, "audio.f32")],
                   check=True)
    tensors = []
    for index in range(len(times)):
        with open(os.path.join(work, f"frame{index}.rgb"), "rb") as f:
            image = Image.frombytes("RGB", (1280, 720), f.read())
        w, h = image.size
        size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        image = image.resize(size, Image.BILINEAR)
        top, left = int(round((size[1] - 224) / 2.0)), int(round((size[0] - 224) / 2.0))
        pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        tensors.append(((pixels - 127) / 128).transpose(2, 0, 1))
    samples = np.fromfile(os.path.join(work, "audio.f32"), dtype=np.float32)
    assert len(tensors) == len(times) and len(samples) > 0
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "omniembed"))
    parser.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    make_clip()
    seconds = duration(CLIP)
    times = [0.0] + [seconds * (i + 0.5) / 5 for i in range(5)]
    print(f"CPU: {bench_common.cpu_name()}")
    print(f"clip: {os.path.getsize(CLIP) / 1e6:.1f} MB, {seconds:.1f} s, 1280 x 720 H.264 (keyframe every 2 s) + AAC; "
          f"cover + 5 frames + soundtrack; medians of {args.rounds} rounds")

    with tempfile.TemporaryDirectory() as work:
        ours, theirs = [], []
        for _ in range(args.rounds):
            result = bench_common.omniembed(args.binary, ["--video", CLIP, "--frames", "5", "--seconds", str(args.seconds)], 1)
            ours.append(result["seconds"])
            runs = []
            started = time.perf_counter()
            while time.perf_counter() - started < args.seconds or len(runs) < 3:
                runs.append(cli_and_pillow(CLIP, times, work))
            theirs.append(statistics.median(runs))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"to tower inputs, per clip: ours {a * 1000:.0f} ms (one thread), ffmpeg CLI + Pillow {b * 1000:.0f} ms: "
              f"{b / a:.2f}x (target >= 3)", flush=True)

        port = free_port()
        env = dict(os.environ, OMNIEMBED_HTTP_MAX_BODY_BYTES=str(64 << 20))
        server = subprocess.Popen([args.binary, "serve", "--config", os.path.join(ROOT, "config", "default.json"),
                                   "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(f"http://127.0.0.1:{port}/readyz", server)
            body = os.path.join(work, "video.json")
            with open(body, "w") as f:
                data = base64.b64encode(open(CLIP, "rb").read()).decode()
                json.dump({"items": [{"id": "clip", "fields": {"title": "a cat, slowly"}, "video": {"data": data}}],
                           "store": False}, f)
            samples = [run_wrk(LUA, port, 8, max(1, round(args.seconds)), work, BENCH_BODY=body) for _ in range(args.rounds)]
            errors = sum(s["errors"] for s in samples)
            rate = statistics.median(s["requests"] / s["seconds"] for s in samples)
            print(f"/embed, one 60 s 720p video item per request, 8 connections: {rate:.2f} items/s, "
                  f"p50 {statistics.median(s['p50_ms'] for s in samples):.0f} ms, "
                  f"p99 {statistics.median(s['p99_ms'] for s in samples):.0f} ms, {errors} errors")
        finally:
            stop_servers([server])


if __name__ == "__main__":
    main()
