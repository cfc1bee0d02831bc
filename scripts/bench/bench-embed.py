#!/usr/bin/env python3
"""The driver of scripts/bench/bench-embed (see there). Standard library only; wrk does the load.

Every engine serves all-MiniLM-L6-v2 from models/ (Infinity's ONNX engine from an optimum export of the same weights),
with mean pooling. Requests: titles of about 16 tokens, 1 or 32 per request, at 1, 8 and 64 connections; OmniEmbed gets
`/embed` items with `"store": false` (nothing to compare the store against), Infinity `/embeddings` inputs. Cells run
back to back per round, the engine order rotating, the other servers stopped (SIGSTOP) meanwhile; figures are medians
over rounds.
"""
import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request

from bench_common import WRK_DONE_LUA, free_port, run_wrk, stop_servers, titles, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
INFINITY = os.path.join(ROOT, ".cache", "infinity-venv", "bin")
ONNX_MODEL = os.path.join(ROOT, ".cache", "bench", "minilm-optimum")

LUA = r"""
local bodies = {}
local path = os.getenv("BENCH_PATH")
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local index = 0
request = function()
    index = index % #bodies + 1
    return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[index])
end
""" + WRK_DONE_LUA


def export_onnx():
    """Infinity's ONNX engine wants an optimum feature-extraction export (`last_hidden_state`) named model.onnx."""
    if os.path.exists(os.path.join(ONNX_MODEL, "model.onnx")):
        return
    subprocess.run([os.path.join(INFINITY, "optimum-cli"), "export", "onnx", "--model", MODEL, "--task",
                    "feature-extraction", "--library-name", "transformers", ONNX_MODEL],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, HF_HUB_OFFLINE="1"))


def wrk(port, path, bodies_file, connections, seconds, work):
    return run_wrk(LUA, port, connections, seconds, work, BENCH_PATH=path, BENCH_BODIES=bodies_file)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = os.path.join(ROOT, ".build", "release", "omniembed")
    work = tempfile.mkdtemp(prefix="bench-embed-")
    texts = titles(20000)
    with open(os.path.join(work, "titles.txt"), "w") as f:
        f.write("\n".join(texts) + "\n")

    export_onnx()
    environment = dict(os.environ, HF_HUB_OFFLINE="1", INFINITY_ANONYMOUS_USAGE_STATS="0", DO_NOT_TRACK="1",
                       HF_HOME=os.path.join(ROOT, ".cache", "bench", "hf"))
    ports = {name: free_port() for name in ("omniembed", "infinity-torch", "infinity-onnx")}
    logs = {name: open(os.path.join(work, name + ".log"), "w") for name in ports}
    servers = {
        "omniembed": subprocess.Popen(
            [binary, "serve", "--config", os.path.join(ROOT, "config", "default.json"), "--port", str(ports["omniembed"])],
            stdout=logs["omniembed"], stderr=logs["omniembed"],
            env=dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(work, "items.sqlite"), OMNIEMBED_LOG_LEVEL="warning")),
        "infinity-torch": subprocess.Popen(
            [os.path.join(INFINITY, "infinity_emb"), "v2", "--model-id", MODEL, "--engine", "torch",
             "--pooling-method", "mean", "--served-model-name", "minilm", "--port", str(ports["infinity-torch"])],
            stdout=logs["infinity-torch"], stderr=logs["infinity-torch"], env=environment),
        # Run from the model folder: Infinity 0.0.78 passes the ONNX file's path where optimum expects its name.
        "infinity-onnx": subprocess.Popen(
            [os.path.join(INFINITY, "infinity_emb"), "v2", "--model-id", ".", "--engine", "optimum",
             "--pooling-method", "mean", "--served-model-name", "minilm", "--port", str(ports["infinity-onnx"])],
            stdout=logs["infinity-onnx"], stderr=logs["infinity-onnx"], env=environment, cwd=ONNX_MODEL),
    }
    try:
        wait_until(f"http://127.0.0.1:{ports['omniembed']}/readyz", servers["omniembed"])
        for name in ("infinity-torch", "infinity-onnx"):
            wait_until(f"http://127.0.0.1:{ports[name]}/health", servers[name])
        run(args, work, texts, ports, binary, servers)
    finally:
        stop_servers(servers.values())


def only(servers, running):
    """Stops (SIGSTOP) every server but `running`: idle thread pools of PyTorch and ONNX Runtime spin for a while
    after each call and would take cycles from the engine being measured."""
    for name, process in servers.items():
        process.send_signal(signal.SIGCONT if name == running else signal.SIGSTOP)


def drain(port, path, bodies_file):
    """Waits for a server's backlog (requests wrk left queued when it stopped) by sending one more request and
    waiting for its answer, so that the next cell, or the server's stop, does not begin mid-work."""
    with open(bodies_file) as f:
        body = f.readline().encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()


def run(args, work, texts, ports, binary, servers):
    only(servers, "omniembed")
    # Average title length in tokens, as OmniEmbed's tokenizer counts them ([CLS] and [SEP] included).
    request = urllib.request.Request(f"http://127.0.0.1:{ports['omniembed']}/tokenize",
                                     json.dumps({"texts": texts[:200]}).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        lengths = [len(d["ids"]) for d in json.loads(response.read())["data"]]
    print(f"titles: {statistics.mean(lengths):.1f} tokens on average (min {min(lengths)}, max {max(lengths)}); "
          f"{args.seconds} s per cell, {args.rounds} rounds, medians; wrk -t1", flush=True)

    def bodies(engine, batch):
        path = os.path.join(work, f"{engine}-{batch}.jsonl")
        with open(path, "w") as f:
            for start in range(0, len(texts) - batch, batch):
                chunk = texts[start:start + batch]
                if engine == "omniembed":
                    body = {"items": [{"id": f"t{start + k}", "text": t} for k, t in enumerate(chunk)], "store": False}
                else:
                    body = {"input": chunk, "model": "minilm"}
                f.write(json.dumps(body) + "\n")
        return path

    engines = {"omniembed": "/embed", "infinity-torch": "/embeddings", "infinity-onnx": "/embeddings"}
    cells = [(c, b) for b in (1, 32) for c in (1, 8, 64)]
    files = {(e, b): bodies(e, b) for e in engines for b in (1, 32)}
    results = {}
    offline = []
    for round_index in range(args.rounds):
        order = list(engines)[round_index % 3:] + list(engines)[:round_index % 3]
        for connections, batch in cells:
            for engine in order:
                only(servers, engine)
                r = wrk(ports[engine], engines[engine], files[(engine, batch)], connections, args.seconds, work)
                drain(ports[engine], engines[engine], files[(engine, 1)])
                r["items_per_s"] = r["requests"] * batch / r["seconds"]
                results.setdefault((engine, connections, batch), []).append(r)
        only(servers, None)
        cells_out = subprocess.run([binary, "benchmark", "--config", os.path.join(ROOT, "config", "default.json"),
                                    "--texts", os.path.join(work, "titles.txt"), "--batch-sizes", "32", "128",
                                    "--seconds", str(max(2, args.seconds // 2))],
                                   capture_output=True, text=True, check=True).stdout
        offline.append(max(json.loads(line)["items_per_second"] for line in cells_out.splitlines()))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    def median(engine, connections, batch, key):
        return statistics.median(r[key] for r in results[(engine, connections, batch)])

    print(f"\n{'conc':>4} {'batch':>5} | {'omniembed items/s':>17} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'inf-torch':>9} {'p50':>6} | {'inf-onnx':>8} {'p50':>6} | {'vs torch':>8} {'vs onnx':>7}")
    for connections, batch in cells:
        o = median("omniembed", connections, batch, "items_per_s")
        t = median("infinity-torch", connections, batch, "items_per_s")
        x = median("infinity-onnx", connections, batch, "items_per_s")
        print(f"{connections:>4} {batch:>5} | {o:>17.1f} {median('omniembed', connections, batch, 'p50_ms'):>7.2f} "
              f"{median('omniembed', connections, batch, 'p99_ms'):>7.2f} | {t:>9.1f} "
              f"{median('infinity-torch', connections, batch, 'p50_ms'):>6.1f} | {x:>8.1f} "
              f"{median('infinity-onnx', connections, batch, 'p50_ms'):>6.1f} | {o / max(t, 1e-9):>8.2f} {o / max(x, 1e-9):>7.2f}")
    errors = {k: sum(r["errors"] for r in v) for k, v in results.items() if sum(r["errors"] for r in v)}
    if errors:
        print(f"non-2xx or socket errors: {errors}")
    saturation = max(median("omniembed", c, b, "items_per_s") for c, b in cells)
    encoder = statistics.median(offline)
    c64 = median("omniembed", 64, 1, "items_per_s")
    print(f"\noffline encoder on the same titles (best of batch 32/128): {encoder:.1f} items/s")
    print(f"HTTP at saturation: {saturation:.1f} items/s = {saturation / encoder:.2f} of the offline encoder (target >= 0.90)")
    print(f"single-item requests, 64 connections: {c64 / median('infinity-torch', 64, 1, 'items_per_s'):.2f}x Infinity torch "
          f"(target >= 3), {c64 / median('infinity-onnx', 64, 1, 'items_per_s'):.2f}x Infinity ONNX (target >= 1.5)")
    print(f"one short text, 1 connection: p50 {median('omniembed', 1, 1, 'p50_ms'):.2f} ms (target <= 5)")
    only(servers, "omniembed")
    mixed(args, work, ports)


def mixed(args, work, ports):
    """Items with a title, a cover photo and (every fourth) a 7-second soundtrack, one per request, 8 connections."""
    def encoded(path):
        return base64.b64encode(open(os.path.join(ROOT, path), "rb").read()).decode()
    photos = [encoded(f"Tests/MediaTests/Fixtures/images/preprocess/{name}.jpg") for name in ("cat", "coffee", "rocket")]
    melody = encoded("Tests/ModelsTests/Fixtures/musicnn/melody.wav")
    path = os.path.join(work, "mixed.jsonl")
    with open(path, "w") as f:
        for k in range(400):
            item = {"id": f"m{k}", "fields": {"title": f"video {k} about {['cats', 'coffee', 'rockets'][k % 3]}"},
                    "images": [{"data": photos[k % 3]}]}
            if k % 4 == 0:
                item["audio"] = {"data": melody}
            f.write(json.dumps({"items": [item], "store": False}) + "\n")
    samples = [wrk(ports["omniembed"], "/embed", path, 8, args.seconds, work) for _ in range(args.rounds)]
    items = statistics.median(s["requests"] / s["seconds"] for s in samples)
    print(f"\nmixed load (title + cover photo, a soundtrack on every 4th item; 1 item per request, 8 connections): "
          f"{items:.1f} items/s, p50 {statistics.median(s['p50_ms'] for s in samples):.1f} ms, "
          f"p99 {statistics.median(s['p99_ms'] for s in samples):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
