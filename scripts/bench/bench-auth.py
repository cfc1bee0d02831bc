#!/usr/bin/env python3
"""The driver of scripts/bench/bench-auth (see there). Standard library only; wrk does the load.

Two services from one binary and configuration, each on its own store: one without keys, one with a keys file and
every request carrying `Authorization: Bearer KEY`. One connection (c=1), one text per request, rounds alternating
which service runs first. Two cells: the same text again (answered from the memory bank: the cheapest request, where
auth weighs most) and a new text each request (through the text tower).
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

from bench_common import ROOT, WRK_DONE_LUA, free_port, run_wrk, stop_servers, titles, wait_until

LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local headers = {["Content-Type"] = "application/json"}
if os.getenv("BENCH_KEY") ~= "" then headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY") end
local index = 0
request = function()
    index = index % #bodies + 1
    return wrk.format("POST", "/embed", headers, bodies[index])
end
""" + WRK_DONE_LUA


def wrk(port, bodies, key, seconds, work):
    summary = run_wrk(LUA, port, 1, seconds, work, BENCH_BODIES=bodies, BENCH_KEY=key)
    if summary["errors"]:
        raise RuntimeError(f"wrk saw {summary['errors']} errors on port {port}")
    return summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    binary = os.path.join(ROOT, ".build", "release", "omniembed")
    work = tempfile.mkdtemp(prefix="bench-auth-")
    generated = subprocess.run([binary, "keys", "new", "bench", "--scopes", "embed"], check=True,
                               capture_output=True, text=True).stdout.splitlines()
    key = generated[0].split(":", 1)[1].strip()
    with open(os.path.join(work, "keys"), "w") as f:
        f.write(generated[1].split(":", 1)[1].strip() + "\n")

    texts = titles(200_000, seed=13)
    cells = {"same text": os.path.join(work, "same.jsonl"), "new text": os.path.join(work, "new.jsonl")}
    with open(cells["same text"], "w") as f:
        f.write(json.dumps({"items": [{"id": "same", "text": texts[0]}]}) + "\n")
    with open(cells["new text"], "w") as f:
        for index, text in enumerate(texts):
            f.write(json.dumps({"items": [{"id": f"t{index}", "text": text}], "store": False}) + "\n")

    ports = {"no auth": free_port(), "auth": free_port()}
    servers = {}
    for name, port in ports.items():
        environment = dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(work, name.replace(" ", "-") + ".sqlite"))
        if name == "auth":
            environment["OMNIEMBED_AUTH_KEYS_FILE"] = os.path.join(work, "keys")
        log = open(os.path.join(work, name.replace(" ", "-") + ".log"), "w")
        servers[name] = subprocess.Popen([binary, "serve", "--config", os.path.join(ROOT, "config", "default.json"),
                                          "--port", str(port)], stdout=log, stderr=log, env=environment)
    try:
        for name, port in ports.items():
            wait_until(f"http://127.0.0.1:{port}/readyz", servers[name])
        print(f"/embed, one text per request, c=1, {args.seconds} s per cell, {args.rounds} rounds, medians; wrk -t1",
              flush=True)
        results = {(cell, name): [] for cell in cells for name in ports}
        for round_index in range(args.rounds):
            order = list(ports) if round_index % 2 == 0 else list(reversed(ports))
            for cell, bodies in cells.items():
                for name in order:
                    results[(cell, name)].append(wrk(ports[name], bodies, key if name == "auth" else "",
                                                     args.seconds, work))
        print(f"{'cell':<10} {'server':<8} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for cell in cells:
            rates = {}
            for name in ports:
                samples = results[(cell, name)]
                rates[name] = [s["requests"] / s["seconds"] for s in samples]
                print(f"{cell:<10} {name:<8} {statistics.median(rates[name]):10.0f} "
                      f"{statistics.median(s['p50_ms'] for s in samples):8.3f} "
                      f"{statistics.median(s['p99_ms'] for s in samples):8.3f}")
            # Both run in each round: the ratio within a round cancels most of the machine's drift.
            ratios = [a / b for a, b in zip(rates["auth"], rates["no auth"])]
            spread = [a / b for a, b in zip(rates["no auth"][1:], rates["no auth"][:-1])]
            print(f"{cell:<10} auth/no-auth requests/s per round: {' '.join(f'{r:.3f}' for r in ratios)}; "
                  f"median {statistics.median(ratios):.3f} (no auth round to round: "
                  f"{min(spread, default=1):.3f}..{max(spread, default=1):.3f})")
    finally:
        stop_servers(servers.values())


if __name__ == "__main__":
    main()
