#!/usr/bin/env python3
"""The driver of scripts/bench/bench-match (see there): `/match` latency under wrk against the same features in NumPy.

Set-up: a release service with an empty store embeds `--items` random-word titles (all-MiniLM-L6-v2, 384 dims),
`omniembed fit` builds a codebook from that store (3 levels × 256) and `/admin/reload` loads it. NumPy gets every
item's vector and semantic ID from `/items` (the served space), once.

Cells: candidates × history ∈ {100, 1000} × {100, 1000}, by stored id, features user_cos, max_cos, topk_mean_cos,
sim_top and sid_match (top_k 5, sim_top 10, recent 50), 64 distinct requests per cell. wrk drives `/match` at 1 and
16 connections; the client-side p50/p99 is wrk's, the server-side one comes from each response's `Server-Timing`
total (JSON decoding, reading the vectors, the features, JSON encoding). NumPy computes the same features for the
same requests in this process (ids to rows through a dict, one GEMM per request, partial selection), timed per
call on all cores. Rounds alternate; figures are medians over rounds.

`--precision fp32,bf16` also starts a second service on the same store with `match.precision` bf16 and times both
side by side, cell by cell (the bf16 one's features are checked against NumPy's within 2e-3).
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
import http.client

import numpy as np

from bench_common import WRK_DONE_LUA, free_port, wrk_summary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
FEATURES = ["user_cos", "max_cos", "topk_mean_cos", "sim_top", "sid_match"]
TOP_K, SIM_TOP, RECENT = 5, 10, 50

# One thread: bodies in turn; `response` keeps each Server-Timing total and appends them to a file every 50
# responses (wrk's `done` runs in another Lua state and cannot see them).
LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local index = 0
local totals = {}
local function flush()
    local f = io.open(os.getenv("BENCH_TIMINGS"), "a")
    f:write(table.concat(totals, "\n"), "\n")
    f:close()
    totals = {}
end
request = function()
    index = index % #bodies + 1
    return wrk.format("POST", "/match", {["Content-Type"] = "application/json"}, bodies[index])
end
response = function(status, headers, body)
    local timing = headers["Server-Timing"]
    if status == 200 and timing then
        totals[#totals + 1] = timing:match("total;dur=([%d%.]+)")
        if #totals >= 50 then flush() end
    end
end
""" + WRK_DONE_LUA


def request(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data), dict(response.getheaders())
    finally:
        connection.close()


def titles(count, seed=11):
    words = [w.strip() for w in open(os.path.join(MODEL, "vocab.txt"))
             if w.strip().isalpha() and w.strip().isascii() and len(w.strip()) >= 3]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(count)]


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class NumPyMatch:
    """The service's features over the vectors and codes /items serves."""

    def __init__(self, ids, vectors, codes):
        self.row = {i: n for n, i in enumerate(ids)}
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.codes = codes

    def __call__(self, body):
        history = np.fromiter((self.row[i] for i in body["user"]["history"]), dtype=np.int64)
        candidates = np.fromiter((self.row[i] for i in body["candidates"]), dtype=np.int64)
        h, c = self.vectors[history], self.vectors[candidates]
        user = h[-RECENT:].mean(axis=0)
        user_cos = c @ (user / np.linalg.norm(user))
        scores = c @ h.T
        max_cos = scores.max(axis=1)
        topk_mean = np.partition(scores, scores.shape[1] - TOP_K, axis=1)[:, -TOP_K:].mean(axis=1)
        top = np.argpartition(scores, scores.shape[1] - SIM_TOP, axis=1)[:, -SIM_TOP:]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        sim_top = np.take_along_axis(top, order, axis=1)
        # sid_match: per level, how many history items share the candidate's code prefix (prefixes as integers).
        hc, cc = self.codes[history].astype(np.int64), self.codes[candidates].astype(np.int64)
        sid_match = np.empty((len(candidates), hc.shape[1]), dtype=np.int64)
        hkey, ckey = np.zeros(len(history), np.int64), np.zeros(len(candidates), np.int64)
        for level in range(hc.shape[1]):
            hkey, ckey = hkey * 4096 + hc[:, level], ckey * 4096 + cc[:, level]
            keys, counts = np.unique(hkey, return_counts=True)
            at = np.clip(np.searchsorted(keys, ckey), 0, len(keys) - 1)
            sid_match[:, level] = np.where(keys[at] == ckey, counts[at], 0)
        return user_cos, max_cos, topk_mean, sim_top, sid_match


def wrk(port, bodies_file, connections, seconds, work):
    script = os.path.join(work, "match.lua")
    timings = os.path.join(work, "timings.txt")
    with open(script, "w") as f:
        f.write(LUA)
    if os.path.exists(timings):
        os.remove(timings)
    result = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script,
                             f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                            env=dict(os.environ, BENCH_BODIES=bodies_file, BENCH_TIMINGS=timings))
    summary = wrk_summary(result.stderr)
    totals = [float(v) for v in open(timings).read().split()] if os.path.exists(timings) else []
    summary["server_p50_ms"] = percentile(totals, 50) if totals else float("nan")
    summary["server_p99_ms"] = percentile(totals, 99) if totals else float("nan")
    summary["server_samples"] = len(totals)
    return summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--precision", default="fp32", help="match.precision values, comma-separated: fp32,bf16")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    binary = os.path.join(ROOT, ".build", "release", "omniembed")
    config = os.path.join(ROOT, "config", "default.json")
    work = tempfile.mkdtemp(prefix="bench-match-")
    environment = dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(work, "items.sqlite"),
                       OMNIEMBED_CODEBOOK_PATH=os.path.join(work, "codebook.safetensors"),
                       OMNIEMBED_LOG_LEVEL="warning")
    services, ports = [], {}

    def launch(precision):
        ports[precision] = free_port()
        log = open(os.path.join(work, f"service-{precision}.log"), "w")
        services.append(subprocess.Popen([binary, "serve", "--config", config, "--port", str(ports[precision])],
                                         stdout=log, stderr=log, env=dict(environment, OMNIEMBED_MATCH_PRECISION=precision)))
        deadline = time.monotonic() + 300
        while True:
            try:
                request(ports[precision], "GET", "/readyz")
                break
            except (OSError, RuntimeError):
                if services[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start; see {log.name}")
                time.sleep(0.2)  # polling interval

    try:
        launch(precisions[0])
        port = ports[precisions[0]]
        ids = [f"item{i}" for i in range(args.items)]
        texts = titles(args.items)
        for start in range(0, len(ids), 128):
            request(port, "POST", "/embed", {"items": [{"id": i, "text": t} for i, t in
                                                       zip(ids[start:start + 128], texts[start:start + 128])]})
        subprocess.run([binary, "fit", "--config", config], check=True, env=environment, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        version = request(port, "POST", "/admin/reload")[0].get("codebook_version")
        served = [request(port, "GET", f"/items/{i}")[0] for i in ids]
        assert all(s["codebook_version"] == version for s in served), "items served without the fitted codebook"
        numpy_match = NumPyMatch(ids, np.array([s["embedding"] for s in served], dtype=np.float32),
                                 np.array([s["semantic_id"] for s in served], dtype=np.int32))
        for precision in precisions[1:]:
            launch(precision)
            request(ports[precision], "POST", "/admin/reload")
        run(args, ports, ids, numpy_match, work, version)
    finally:
        for service in services:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()


def run(args, ports, ids, numpy_match, work, version):
    rng = random.Random(5)
    cells = [(c, h) for c in (100, 1000) for h in (100, 1000)]
    files, bodies = {}, {}
    for candidates, history in cells:
        bodies[(candidates, history)] = [
            {"user": {"history": rng.sample(ids, history)}, "candidates": rng.sample(ids, candidates),
             "features": FEATURES, "top_k": TOP_K, "sim_top": SIM_TOP, "recent": RECENT}
            for _ in range(64)]
        files[(candidates, history)] = os.path.join(work, f"bodies-{candidates}x{history}.jsonl")
        with open(files[(candidates, history)], "w") as f:
            f.write("\n".join(json.dumps(b) for b in bodies[(candidates, history)]) + "\n")
        # The services and NumPy agree on the request they are timed on.
        user_cos, max_cos, topk_mean, _, sid_match = numpy_match(bodies[(candidates, history)][0])
        for precision, port in ports.items():
            served = request(port, "POST", "/match", bodies[(candidates, history)][0])[0]["data"]
            tolerance = 1e-4 if precision == "fp32" else 2e-3
            assert np.allclose([d["max_cos"] for d in served], max_cos, atol=tolerance), precision
            assert np.allclose([d["topk_mean_cos"] for d in served], topk_mean, atol=tolerance), precision
            assert np.allclose([d["user_cos"] for d in served], user_cos, atol=1e-4), precision
            assert np.array_equal(np.array([d["sid_match"] for d in served]), sid_match), precision

    print(f"/match, {len(ids)} stored items of 384 dims, codebook {version}; features {', '.join(FEATURES)} "
          f"(top_k {TOP_K}, sim_top {SIM_TOP}, recent {RECENT}); wrk -t1, {args.seconds} s per cell, "
          f"{args.rounds} rounds, medians; {os.cpu_count()} cores", flush=True)
    results = {}
    for round in range(args.rounds):
        order = cells if round % 2 == 0 else cells[::-1]
        for cell in order:
            for connections in (1, 16):
                for precision, port in ports.items():
                    results.setdefault((cell, connections, precision), []).append(
                        wrk(port, files[cell], connections, args.seconds, work))
            times = []
            for body in bodies[cell] * 3:
                started = time.perf_counter()
                numpy_match(body)
                times.append((time.perf_counter() - started) * 1e3)
            results.setdefault((cell, "numpy"), []).append({"p50_ms": percentile(times, 50),
                                                            "p99_ms": percentile(times, 99)})
        print(f"  round {round + 1} done", flush=True)

    def median(key, field):
        return statistics.median(r[field] for r in results[key])

    print(f"\n{'candidates × history':>21} {'conn':>5} {'match':>6} {'req/s':>8} {'client p50':>11} {'client p99':>11} "
          f"{'server p50':>11} {'server p99':>11} {'NumPy p50':>10} {'NumPy p99':>10} {'server/NumPy p50':>17}")
    for cell in cells:
        numpy_p50, numpy_p99 = median((cell, "numpy"), "p50_ms"), median((cell, "numpy"), "p99_ms")
        for connections, precision in ((c, p) for c in (1, 16) for p in ports):
            key = (cell, connections, precision)
            rate = statistics.median(r["requests"] / r["seconds"] for r in results[key])
            errors = sum(r["errors"] for r in results[key])
            print(f"{cell[0]:>10} × {cell[1]:<8} {connections:>5} {precision:>6} {rate:>8.0f} {median(key, 'p50_ms'):>9.2f}ms "
                  f"{median(key, 'p99_ms'):>9.2f}ms {median(key, 'server_p50_ms'):>9.2f}ms "
                  f"{median(key, 'server_p99_ms'):>9.2f}ms {numpy_p50:>8.2f}ms {numpy_p99:>8.2f}ms "
                  f"{median(key, 'server_p50_ms') / numpy_p50:>16.2f}×" + (f"  ({errors} errors)" if errors else ""))
    for precision in ports:
        target = median(((1000, 1000), 1, precision), "server_p99_ms")
        print(f"target: server-side p99 ≤ 10 ms at 1000 × 1000, 1 connection, match.precision {precision}: "
              f"{target:.2f} ms ({'met' if target <= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
