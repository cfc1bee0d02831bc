#!/usr/bin/env python3
"""Text encoder throughput: OmniEmbed vs ONNX Runtime (fp32, graph optimisations on) vs PyTorch, side by side.

Run through scripts/bench/bench-text, which prepares the venv and the release build. For each cell (batch size ×
exact sequence length) the three engines run one after another on the same machine state, each with 2 threads,
each timing repeated batches after a warm-up; all cells are measured `--rounds` times (the machine is shared
and a burst of noise can take one engine's window) and the table shows each cell's median and the ratios.
Engines run in separate processes that sit blocked between cells, so no thread pool spins while another runs.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker(engine, directory, onnx_path, threads):
    import numpy as np
    import bench_text_reference as reference

    rng = np.random.default_rng(0)
    bench_common.serve_worker(
        lambda: reference.OnnxRunner(onnx_path, threads) if engine == "onnxruntime" else reference.TorchRunner(directory, threads),
        lambda cell: rng.integers(1000, 30000, size=(cell["batch"], cell["length"])).astype(np.int64))


def flops_per_item(config, length):
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    dense = 2 * h * (3 * h + h + 2 * i)      # QKV, output projection, two feed-forward GEMMs, per token
    attention = 4 * length * h              # scores and weighted values, all heads, per token
    return layers * length * (dense + attention)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "omniembed"))
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    parser.add_argument("--onnx", default=os.path.join(ROOT, ".cache", "bench", "all-MiniLM-L6-v2.onnx"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per engine per cell")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 128, 256])
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over all cells; the table shows each cell's median over the rounds")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.onnx, args.threads)

    import bench_text_reference as reference
    os.makedirs(os.path.dirname(args.onnx), exist_ok=True)
    reference.export_onnx(args.model, args.onnx)
    config = json.load(open(os.path.join(args.model, "config.json")))
    extra = ["--model", args.model, "--onnx", args.onnx, "--threads", str(args.threads)]
    engines = {name: bench_common.Worker(__file__, name, extra) for name in ("onnxruntime", "pytorch")}

    print(f"threads: {args.threads} per engine; items/s are medians over repeated batches ({args.seconds:g} s per engine "
          f"per cell), then the median of {args.rounds} round(s) over all cells")
    cells = [(batch, length) for length in args.lengths for batch in args.batch_sizes]
    measured = {cell: {"omniembed": [], "onnxruntime": [], "pytorch": []} for cell in cells}
    for round in range(args.rounds):
        for batch, length in cells:
            ours = bench_common.omniembed(args.binary, ["--batch-sizes", str(batch), "--lengths", str(length),
                                                        "--seconds", str(args.seconds)], args.threads)["items_per_second"]
            measured[(batch, length)]["omniembed"].append(ours)
            for engine in ("onnxruntime", "pytorch"):
                time.sleep(0.2)
                seconds = engines[engine].measure({"batch": batch, "length": length}, args.seconds)
                measured[(batch, length)][engine].append(batch / seconds)
        print(f"  round {round + 1} of {args.rounds} done", flush=True)

    print(f"{'batch':>5} {'len':>4} | {'omniembed':>10} {'GFLOP/s':>8} | {'onnxrt':>8} {'GFLOP/s':>8} | {'pytorch':>8} | {'vs ORT':>6} {'vs PT':>6}  target")
    misses = []
    for batch, length in cells:
        ours, ort, torch = (statistics.median(measured[(batch, length)][e]) for e in ("omniembed", "onnxruntime", "pytorch"))
        flops = flops_per_item(config, length)
        versus_ort, versus_torch = ours / ort, ours / torch
        needs_ort = batch >= 8 or length >= 64
        ok = (versus_ort >= 1 or not needs_ort) and versus_torch >= 2
        if not ok:
            misses.append((batch, length))
        target = ("≥ORT, " if needs_ort else "") + "≥2×PT"
        print(f"{batch:>5} {length:>4} | {ours:>10.1f} {ours * flops / 1e9:>8.1f} | {ort:>8.1f} {ort * flops / 1e9:>8.1f} | "
              f"{torch:>8.1f} | {versus_ort:>6.2f} {versus_torch:>6.2f}  {target}: {'met' if ok else 'MISSED'}", flush=True)
    print(f"cells missing their target: {len(misses)}" + (f" {misses}" if misses else ""))


if __name__ == "__main__":
    main()
