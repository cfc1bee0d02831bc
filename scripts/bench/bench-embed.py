#!/usr/bin/env python3
"""The driver of scripts/bench/bench-embed (see there). Standard library only; wrk does the load.

Every engine serves all-MiniLM-L6-v2 from models/ (Infinity's ONNX engine from an optimum export of the same weights),
with mean pooling. Requests: titles of about 16 tokens, 1 or 32 per request, at 1, 8 and 64 connections; OmniEmbed gets
`/embed` items with `"store": false` (nothing to compare the store against), Infinity `/embeddings` inputs. Cells run
back to back per round, the engine order rotating, the other servers stopped (SIGSTOP) meanwhile; figures are medians
over rounds.

`--precision fp32,bf16,int8` runs one OmniEmbed per precision (`model.precision`) beside the others, cell by cell.
Then, per precision, one item per request at 8 connections: the mixed load (title, cover photo, a 7-second
soundtrack on every fourth item) and short videos (title and tags, a cover and 5 frames, a 30-second soundtrack).
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

from bench_common import WRK_DONE_LUA, cpu_name, free_port, melody_wav, run_wrk, stop_servers, titles, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
INFINITY = os.path.join(ROOT, ".cache", "infinity-venv", "bin")
ONNX_MODEL = os.path.join(ROOT, ".cache", "bench", "minilm-optimum")
# OmniEmbed's servers are named after their precision: "omniembed-fp32", "omniembed-bf16", ...
ENGINE = "omniembed-"

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
    parser.add_argument("--precision", default="fp32", help="OmniEmbed's precisions, comma-separated: fp32,bf16,int8")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    binary = os.path.join(ROOT, ".build", "release", "omniembed")
    work = tempfile.mkdtemp(prefix="bench-embed-")
    texts = titles(20000)
    with open(os.path.join(work, "titles.txt"), "w") as f:
        f.write("\n".join(texts) + "\n")

    export_onnx()
    environment = dict(os.environ, HF_HUB_OFFLINE="1", INFINITY_ANONYMOUS_USAGE_STATS="0", DO_NOT_TRACK="1",
                       HF_HOME=os.path.join(ROOT, ".cache", "bench", "hf"))
    ours = [ENGINE + precision for precision in precisions]
    ports = {name: free_port() for name in ours + ["infinity-torch", "infinity-onnx"]}
    logs = {name: open(os.path.join(work, name + ".log"), "w") for name in ports}
    servers = {
        name: subprocess.Popen(
            [binary, "serve", "--config", os.path.join(ROOT, "config", "default.json"), "--port", str(ports[name])],
            stdout=logs[name], stderr=logs[name],
            env=dict(os.environ, OMNIEMBED_STORE_PATH=os.path.join(work, name + ".sqlite"), OMNIEMBED_LOG_LEVEL="warning",
                     OMNIEMBED_MODEL_PRECISION=name[len(ENGINE):]))
        for name in ours
    }
    servers.update({
        "infinity-torch": subprocess.Popen(
            [os.path.join(INFINITY, "infinity_emb"), "v2", "--model-id", MODEL, "--engine", "torch",
             "--pooling-method", "mean", "--served-model-name", "minilm", "--port", str(ports["infinity-torch"])],
            stdout=logs["infinity-torch"], stderr=logs["infinity-torch"], env=environment),
        # Run from the model folder: Infinity 0.0.78 passes the ONNX file's path where optimum expects its name.
        "infinity-onnx": subprocess.Popen(
            [os.path.join(INFINITY, "infinity_emb"), "v2", "--model-id", ".", "--engine", "optimum",
             "--pooling-method", "mean", "--served-model-name", "minilm", "--port", str(ports["infinity-onnx"])],
            stdout=logs["infinity-onnx"], stderr=logs["infinity-onnx"], env=environment, cwd=ONNX_MODEL),
    })
    try:
        for name in ours:
            wait_until(f"http://127.0.0.1:{ports[name]}/readyz", servers[name])
        for name in ("infinity-torch", "infinity-onnx"):
            wait_until(f"http://127.0.0.1:{ports[name]}/health", servers[name])
        run(args, work, texts, ports, binary, servers, ours)
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


def run(args, work, texts, ports, binary, servers, ours):
    only(servers, ours[0])
    # Average title length in tokens, as OmniEmbed's tokenizer counts them ([CLS] and [SEP] included).
    request = urllib.request.Request(f"http://127.0.0.1:{ports[ours[0]]}/tokenize",
                                     json.dumps({"texts": texts[:200]}).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        lengths = [len(d["ids"]) for d in json.loads(response.read())["data"]]
    print(f"CPU: {cpu_name()}")
    print(f"titles: {statistics.mean(lengths):.1f} tokens on average (min {min(lengths)}, max {max(lengths)}); "
          f"{args.seconds} s per cell, {args.rounds} rounds, medians; wrk -t1", flush=True)

    def bodies(engine, batch):
        path = os.path.join(work, f"{engine}-{batch}.jsonl")
        with open(path, "w") as f:
            for start in range(0, len(texts) - batch, batch):
                chunk = texts[start:start + batch]
                if engine.startswith(ENGINE):
                    body = {"items": [{"id": f"t{start + k}", "text": t} for k, t in enumerate(chunk)], "store": False}
                else:
                    body = {"input": chunk, "model": "minilm"}
                f.write(json.dumps(body) + "\n")
        return path

    engines = {**{name: "/embed" for name in ours}, "infinity-torch": "/embeddings", "infinity-onnx": "/embeddings"}
    cells = [(c, b) for b in (1, 32) for c in (1, 8, 64)]
    files = {(e, b): bodies(e, b) for e in engines for b in (1, 32)}
    results = {}
    offline = {name: [] for name in ours}
    for round_index in range(args.rounds):
        shift = round_index % len(engines)
        order = list(engines)[shift:] + list(engines)[:shift]
        for connections, batch in cells:
            for engine in order:
                only(servers, engine)
                r = wrk(ports[engine], engines[engine], files[(engine, batch)], connections, args.seconds, work)
                drain(ports[engine], engines[engine], files[(engine, 1)])
                r["items_per_s"] = r["requests"] * batch / r["seconds"]
                results.setdefault((engine, connections, batch), []).append(r)
        only(servers, None)
        for name in ours:
            cells_out = subprocess.run([binary, "benchmark", "--config", os.path.join(ROOT, "config", "default.json"),
                                        "--texts", os.path.join(work, "titles.txt"), "--batch-sizes", "32", "128",
                                        "--seconds", str(max(2, args.seconds // 2))],
                                       capture_output=True, text=True, check=True,
                                       env=dict(os.environ, OMNIEMBED_MODEL_PRECISION=name[len(ENGINE):])).stdout
            offline[name].append(max(json.loads(line)["items_per_second"] for line in cells_out.splitlines()))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    def median(engine, connections, batch, key):
        return statistics.median(r[key] for r in results[(engine, connections, batch)])

    print(f"\n{'conc':>4} {'batch':>5} {'ours':>14} | {'items/s':>9} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'inf-torch':>9} {'p50':>6} | {'inf-onnx':>8} {'p50':>6} | {'vs torch':>8} {'vs onnx':>7}")
    for connections, batch in cells:
        t = median("infinity-torch", connections, batch, "items_per_s")
        x = median("infinity-onnx", connections, batch, "items_per_s")
        for name in ours:
            o = median(name, connections, batch, "items_per_s")
            print(f"{connections:>4} {batch:>5} {name:>14} | {o:>9.1f} {median(name, connections, batch, 'p50_ms'):>7.2f} "
                  f"{median(name, connections, batch, 'p99_ms'):>7.2f} | {t:>9.1f} "
                  f"{median('infinity-torch', connections, batch, 'p50_ms'):>6.1f} | {x:>8.1f} "
                  f"{median('infinity-onnx', connections, batch, 'p50_ms'):>6.1f} | {o / max(t, 1e-9):>8.2f} {o / max(x, 1e-9):>7.2f}")
    errors = {k: sum(r["errors"] for r in v) for k, v in results.items() if sum(r["errors"] for r in v)}
    if errors:
        print(f"non-2xx or socket errors: {errors}")
    saturation = {}
    for name in ours:
        saturation[name] = max(median(name, c, b, "items_per_s") for c, b in cells)
        encoder = statistics.median(offline[name])
        c64 = median(name, 64, 1, "items_per_s")
        print(f"\n{name}: offline encoder on the same titles (best of batch 32/128): {encoder:.1f} items/s")
        print(f"{name}: HTTP at saturation: {saturation[name]:.1f} items/s = {saturation[name] / encoder:.2f} of the "
              f"offline encoder (target >= 0.90)")
        print(f"{name}: single-item requests, 64 connections: {c64 / median('infinity-torch', 64, 1, 'items_per_s'):.2f}x "
              f"Infinity torch (target >= 3), {c64 / median('infinity-onnx', 64, 1, 'items_per_s'):.2f}x Infinity ONNX "
              f"(target >= 1.5)")
        print(f"{name}: one short text, 1 connection: p50 {median(name, 1, 1, 'p50_ms'):.2f} ms (target <= 5)")
    for name in ours[1:]:
        print(f"{name} against {ours[0]} at saturation: {saturation[name] / saturation[ours[0]]:.2f}x")
    print(f"\none item per request, 8 connections: {'ours':>14} {'items/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    loads = items(work)
    for name in ours:
        print(f"{'text (a title)':>34} {name:>14} {median(name, 8, 1, 'items_per_s'):>9.1f} "
              f"{median(name, 8, 1, 'p50_ms'):>8.1f} {median(name, 8, 1, 'p99_ms'):>8.1f}")
    for label, path in loads:
        for name in ours:
            only(servers, name)
            samples = [wrk(ports[name], "/embed", path, 8, args.seconds, work) for _ in range(args.rounds)]
            drain(ports[name], "/embed", files[(name, 1)])
            rate = statistics.median(s["requests"] / s["seconds"] for s in samples)
            print(f"{label:>34} {name:>14} {rate:>9.1f} {statistics.median(s['p50_ms'] for s in samples):>8.1f} "
                  f"{statistics.median(s['p99_ms'] for s in samples):>8.1f}", flush=True)


def items(work):
    """The request files of the loads with media, one item per request: `(label, path)`.

    Mixed: a title and a cover photo, a 7-second soundtrack on every fourth item. Short video: a title and tags,
    a cover and 5 frames (the fixture photos in turn), a 30-second 44.1 kHz soundtrack."""
    def encoded(path):
        return base64.b64encode(open(os.path.join(ROOT, path), "rb").read()).decode()
    photos = [encoded(f"Tests/MediaTests/Fixtures/images/preprocess/{name}.jpg") for name in ("cat", "coffee", "rocket")]
    melody = encoded("Tests/ModelsTests/Fixtures/musicnn/melody.wav")
    soundtrack_path = os.path.join(ROOT, ".cache", "bench", "30s-44k.wav")
    melody_wav(soundtrack_path)
    soundtrack = base64.b64encode(open(soundtrack_path, "rb").read()).decode()
    subjects = ["cats", "coffee", "rockets"]
    mixed, video = os.path.join(work, "mixed.jsonl"), os.path.join(work, "video.jsonl")
    with open(mixed, "w") as f:
        for k in range(400):
            item = {"id": f"m{k}", "fields": {"title": f"video {k} about {subjects[k % 3]}"},
                    "images": [{"data": photos[k % 3]}]}
            if k % 4 == 0:
                item["audio"] = {"data": melody}
            f.write(json.dumps({"items": [item], "store": False}) + "\n")
    with open(video, "w") as f:
        for k in range(24):
            item = {"id": f"v{k}", "fields": {"title": f"a short video about {subjects[k % 3]}, part {k}",
                                               "tags": [subjects[k % 3], "daily life", "vlog"]},
                    "images": [{"data": photos[(k + j) % 3]} for j in range(6)], "audio": {"data": soundtrack}}
            f.write(json.dumps({"items": [item], "store": False}) + "\n")
    return [("mixed (title, photo, 1/4 audio)", mixed), ("short video (6 images, 30 s audio)", video)]


if __name__ == "__main__":
    sys.exit(main())
