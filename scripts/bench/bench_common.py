"""Shared by the benchmark scripts: timing, engines in their own processes, and OmniEmbed's side.

Each reference engine runs in a worker process that sits blocked on stdin between cells, so no idle thread pool
spins while another engine is timed; the engines of a cell run back to back, so their ratio is taken on the same
machine state.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_name():
    """The CPU as lscpu names it, with its family and model (the Zen 4 machines here all say "AMD EPYC")."""
    fields = {}
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    extras = [f for f in ("avx512f", "avx512_bf16", "avx512_vnni") if f in flags]
    return (f"{fields.get('Model name', '?')} (family {fields.get('CPU family', '?')} model {fields.get('Model', '?')}, "
            f"{fields.get('CPU(s)', '?')} CPUs, {' '.join(extras) or 'no AVX-512'})")


def time_runs(run, seconds, minimum=3):
    """Seconds per call, median over repeated calls (one warm-up first)."""
    run()
    samples = []
    started = time.perf_counter()
    while len(samples) < minimum or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2]


def serve_worker(make_runner, make_input):
    """Worker side: builds the engine, then answers {"cell": ..., "seconds": s} lines with seconds per call."""
    run = make_runner()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        data = make_input(request["cell"])
        print(json.dumps({"seconds": time_runs(lambda: run(data), request["seconds"])}), flush=True)


class Worker:
    """Driver side of serve_worker: `script --worker ENGINE extra...` in the same interpreter."""

    def __init__(self, script, engine, extra):
        self.process = subprocess.Popen([sys.executable, script, "--worker", engine, *extra],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        json.loads(self.process.stdout.readline())

    def measure(self, cell, seconds):
        self.process.stdin.write(json.dumps({"cell": cell, "seconds": seconds}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["seconds"]


def omniembed(binary, arguments, threads, **settings):
    """The last JSON line of `omniembed benchmark ARGUMENTS`, with `threads` encoder threads, one BLAS thread each,
    and `settings` as environment variables."""
    env = dict(os.environ, OMNIEMBED_MODEL_THREADS=str(threads), OMNIEMBED_MODEL_BLAS_THREADS="1", **settings)
    out = subprocess.run([binary, "benchmark", *arguments], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# wrk's `done` hook, appended to each benchmark's Lua script: one "BENCH {json}" line on stderr.
WRK_DONE_LUA = r"""
done = function(summary, latency, requests)
    io.stderr:write(string.format('BENCH {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
        summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk_summary(stderr):
    """The figures WRK_DONE_LUA printed."""
    lines = [l for l in stderr.splitlines() if l.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary: {stderr[-2000:]}")
    return json.loads(lines[0][6:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(url, process, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling interval
    raise RuntimeError(f"{url} never became ready")


def titles(count, seed=7):
    """Titles of whole-word vocabulary entries: about 14 words, 16 tokens with [CLS] and [SEP]."""
    words = [w.strip() for w in open(os.path.join(ROOT, "models", "all-MiniLM-L6-v2", "vocab.txt"))
             if w.strip().isalpha() and w.strip().isascii() and len(w.strip()) >= 3]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(14)) for _ in range(count)]


def melody_wav(path, seconds=30, rate=44100):
    """A mono 16-bit recording at `path` (kept when already there): a synthetic melody, a note every quarter
    second, with a little noise. Standard library only."""
    import math
    import struct
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(0)
    samples = bytearray()
    for n in range(rate * seconds):
        t = n / rate
        note = 220 * 2 ** (math.floor(t * 4) % 12 / 12)
        value = 0.3 * math.sin(2 * math.pi * note * t) * math.exp(-3 * (t % 0.25)) + 0.02 * rng.gauss(0, 1)
        samples += struct.pack("<h", round(max(-1.0, min(1.0, value)) * 32767))
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    with open(path, "wb") as f:
        f.write(header + b"data" + struct.pack("<I", len(samples)) + bytes(samples))


def run_wrk(lua, port, connections, seconds, work, **environment):
    """wrk -t1 with the Lua script `lua` (ending in WRK_DONE_LUA) against 127.0.0.1:`port`: its summary."""
    script = os.path.join(work, "bench.lua")
    with open(script, "w") as f:
        f.write(lua)
    result = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script,
                             f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                            env=dict(os.environ, **environment))
    return wrk_summary(result.stderr + result.stdout)


def stop_servers(processes):
    """SIGTERM (after SIGCONT, for one stopped meanwhile) to each, then waits; a server that hangs is killed."""
    for process in processes:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
