#!/usr/bin/env python3
"""The driver of scripts/bench/bench-bank (see there). Standard library only; wrk does the load.

Four release services on the same items: SQLite and PostgreSQL banks, each once with the vector cache in front
(store.cacheItems at its default: what /match reads once warm) and once without (store.cacheItems 0: every read goes
to the database, as for a cold replica or a bank larger than the cache). Cells, each run on every service in turn,
rounds alternating the order:
- /match, 1,000 candidates × 1,000 history items by id, features as bench-match's, 1 connection (warm services);
- POST /items/batch_get of 1,000 random ids, embeddings (base64, and JSON numbers) and semantic IDs, 1 connection
  (cold services);
- /embed of one stored, unchanged item per request (the cached path: answered from the bank), 8 connections.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import urllib.request

from bench_common import WRK_DONE_LUA, free_port, run_wrk, stop_servers, titles, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local index = 0
request = function()
    index = index % #bodies + 1
    return wrk.format("POST", os.getenv("BENCH_PATH"), {["Content-Type"] = "application/json"}, bodies[index])
end
""" + WRK_DONE_LUA


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=5000)
    args = parser.parse_args()
    binary = os.path.join(ROOT, ".build", "release", "omniembed")
    config = os.path.join(ROOT, "config", "default.json")
    work = tempfile.mkdtemp(prefix="bench-bank-")
    banks = {
        "sqlite": {"OMNIEMBED_STORE_PATH": os.path.join(work, "items.sqlite")},
        "postgres": {"OMNIEMBED_STORE_BACKEND": "postgres", "OMNIEMBED_STORE_URL": os.environ["OMNIEMBED_TEST_POSTGRES_URL"],
                     "OMNIEMBED_STORE_PASSWORD": os.environ["OMNIEMBED_TEST_POSTGRES_PASSWORD"]},
    }
    # batch_get takes up to limits.maxItems ids: a ranker's thousand candidates need it raised from 256.
    base = dict(os.environ, OMNIEMBED_LOG_LEVEL="warning", OMNIEMBED_LIMITS_MAX_ITEMS="1000",
                OMNIEMBED_CODEBOOK_PATH=os.path.join(work, "codebook.safetensors"))
    ids = [f"item{i}" for i in range(args.items)]
    texts = titles(args.items, seed=17)

    servers, ports = {}, {}

    def start(name, environment):
        ports[name] = free_port()
        log = open(os.path.join(work, name + ".log"), "w")
        servers[name] = subprocess.Popen([binary, "serve", "--config", config, "--port", str(ports[name])],
                                         stdout=log, stderr=log, env=environment)
        wait_until(f"http://127.0.0.1:{ports[name]}/readyz", servers[name])

    try:
        for bank, settings in banks.items():
            start(f"{bank} warm", dict(base, **settings))
            for start_index in range(0, len(ids), 128):
                post(ports[f"{bank} warm"], "/embed", {"items": [{"id": i, "text": t} for i, t in
                                                                 zip(ids[start_index:start_index + 128], texts[start_index:start_index + 128])]})
            subprocess.run([binary, "fit", "--config", config, "--clusters", "64"], check=True,
                           env=dict(base, **settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            post(ports[f"{bank} warm"], "/admin/reload", {})
            # Sent again, unchanged: the bank then holds their codes of this codebook, as in steady state.
            for start_index in range(0, len(ids), 128):
                post(ports[f"{bank} warm"], "/embed", {"items": [{"id": i, "text": t} for i, t in
                                                                 zip(ids[start_index:start_index + 128], texts[start_index:start_index + 128])]})
            start(f"{bank} cold", dict(base, OMNIEMBED_STORE_CACHE_ITEMS="0", **settings))
            post(ports[f"{bank} cold"], "/admin/reload", {})

        rng = random.Random(5)
        cells = {
            "/match 1000 × 1000, c=1": ("/match", 1, "warm", [
                {"user": {"history": rng.sample(ids, 1000)}, "candidates": rng.sample(ids, 1000),
                 "features": ["user_cos", "max_cos", "topk_mean_cos", "sim_top", "sid_match"]} for _ in range(32)]),
            # A ranker's fetch: vectors as base64 (little-endian float32), as a machine client takes them ...
            "batch_get 1000 ids, cold, c=1": ("/items/batch_get", 1, "cold", [
                {"ids": rng.sample(ids, 1000), "return": ["embedding", "semantic_id"], "encoding_format": "base64"}
                for _ in range(32)]),
            # ... and as JSON numbers, where formatting 384,000 floats is most of the time.
            "batch_get 1000 ids, cold, JSON floats": ("/items/batch_get", 1, "cold", [
                {"ids": rng.sample(ids, 1000), "return": ["embedding", "semantic_id"]} for _ in range(32)]),
            "/embed stored item, c=8": ("/embed", 8, "warm", [
                {"items": [{"id": ids[i], "text": texts[i]}]} for i in rng.sample(range(len(ids)), 512)]),
        }
        files = {}
        for cell, (_, _, _, bodies) in cells.items():
            files[cell] = os.path.join(work, f"cell{len(files)}.jsonl")
            with open(files[cell], "w") as f:
                f.write("\n".join(json.dumps(b) for b in bodies) + "\n")
        # Warm every cache the cell reads through, once.
        for cell, (path, _, kind, bodies) in cells.items():
            for bank in banks:
                for body in bodies:
                    post(ports[f"{bank} {kind}"], path, body)

        print(f"{args.items} stored items of 384 dims; wrk -t1, {args.seconds} s per cell, {args.rounds} rounds, medians; "
              f"{os.cpu_count()} cores", flush=True)
        results = {}
        for round_index in range(args.rounds):
            order = list(banks) if round_index % 2 == 0 else list(reversed(banks))
            for cell, (path, connections, kind, _) in cells.items():
                for bank in order:
                    summary = run_wrk(LUA, ports[f"{bank} {kind}"], connections, args.seconds, work,
                                      BENCH_BODIES=files[cell], BENCH_PATH=path)
                    if summary["errors"]:
                        raise RuntimeError(f"{cell} on {bank}: {summary['errors']} errors")
                    results.setdefault((cell, bank), []).append(summary)
        print(f"\n{'cell':<38} {'bank':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for cell in cells:
            p99 = {}
            for bank in banks:
                samples = results[(cell, bank)]
                rate = statistics.median(s["requests"] / s["seconds"] for s in samples)
                p50 = statistics.median(s["p50_ms"] for s in samples)
                p99[bank] = statistics.median(s["p99_ms"] for s in samples)
                print(f"{cell:<38} {bank:<9} {rate:>8.0f} {p50:>8.2f} {p99[bank]:>8.2f}")
            print(f"{'':<38} postgres/sqlite p99: {p99['postgres'] / p99['sqlite']:.2f}")
        match_ratio = statistics.median(r["p99_ms"] for r in results[("/match 1000 × 1000, c=1", "postgres")]) / \
            statistics.median(r["p99_ms"] for r in results[("/match 1000 × 1000, c=1", "sqlite")])
        cold = statistics.median(r["p99_ms"] for r in results[("batch_get 1000 ids, cold, c=1", "postgres")])
        print(f"\ntargets: /match 1k × 1k p99 with PostgreSQL ≤ 1.5 × SQLite's, warm: {match_ratio:.2f} "
              f"({'met' if match_ratio <= 1.5 else 'NOT met'}); cold batch_get of 1,000 ids p99 ≤ 20 ms on PostgreSQL: "
              f"{cold:.2f} ms ({'met' if cold <= 20 else 'NOT met'})")
    finally:
        stop_servers(servers.values())


if __name__ == "__main__":
    main()
