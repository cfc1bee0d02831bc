#!/usr/bin/env python3
"""Text encoder throughput: OmniEmbed vs ONNX Runtime (fp32, graph optimisations on) vs PyTorch, side by side.

Run through scripts/bench/bench-text, which prepares the venv and the release build. For each cell (batch size ×
exact sequence length) the engines run one after another on the same machine state, each with 2 threads,
each timing repeated batches after a warm-up; all cells are measured `--rounds` times (the machine is shared
and a burst of noise can take one engine's window) and the table shows each cell's median and the ratios.
Engines run in separate processes that sit blocked between cells, so no thread pool spins while another runs.

`--precision fp32,bf16,int8` runs OmniEmbed once per precision (`model.precision`), and with int8 also ONNX
Runtime's dynamic int8 (per-channel weights). GFLOP/s are printed beside the machine's measured fp32 ceiling
(NumPy's OpenBLAS sgemm on 2048² matrices with the same threads), so each precision's distance from it shows.
Targets: fp32 ≥ ONNX Runtime fp32 (batch ≥ 8 or length ≥ 64) and ≥ 2× PyTorch; bf16 ≥ 1.6× our fp32 at batch ≥ 8;
int8 ≥ ONNX Runtime int8 at batch ≥ 8.
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
    runners = {"onnxruntime": lambda: reference.OnnxRunner(onnx_path, threads),
               "onnxruntime-int8": lambda: reference.OnnxRunner(int8_path(onnx_path), threads),
               "pytorch": lambda: reference.TorchRunner(directory, threads)}
    bench_common.serve_worker(runners[engine],
                              lambda cell: rng.integers(1000, 30000, size=(cell["batch"], cell["length"])).astype(np.int64))


def int8_path(onnx_path):
    return onnx_path.replace(".onnx", ".int8.onnx")


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
    parser.add_argument("--precision", default="fp32", help="OmniEmbed's precisions, comma-separated: fp32,bf16,int8")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.onnx, args.threads)

    import bench_text_reference as reference
    precisions = args.precision.split(",")
    if "fp32" not in precisions:
        precisions.insert(0, "fp32")
    os.makedirs(os.path.dirname(args.onnx), exist_ok=True)
    reference.export_onnx(args.model, args.onnx)
    references = ["onnxruntime", "pytorch"]
    if "int8" in precisions:
        reference.quantize_onnx(args.onnx, int8_path(args.onnx))
        references.insert(1, "onnxruntime-int8")
    config = json.load(open(os.path.join(args.model, "config.json")))
    extra = ["--model", args.model, "--onnx", args.onnx, "--threads", str(args.threads)]
    engines = {name: bench_common.Worker(__file__, name, extra) for name in references}
    ours = [f"omniembed-{p}" for p in precisions]

    peak = reference.sgemm_peak(args.threads)
    print(f"CPU: {bench_common.cpu_name()}; fp32 ceiling: OpenBLAS sgemm 2048² with {args.threads} threads {peak:.1f} GFLOP/s")
    print(f"threads: {args.threads} per engine; items/s are medians over repeated batches ({args.seconds:g} s per engine "
          f"per cell), then the median of {args.rounds} round(s) over all cells")
    cells = [(batch, length) for length in args.lengths for batch in args.batch_sizes]
    measured = {cell: {engine: [] for engine in ours + references} for cell in cells}
    for round in range(args.rounds):
        for batch, length in cells:
            for precision in precisions:
                result = bench_common.omniembed(args.binary, ["--batch-sizes", str(batch), "--lengths", str(length),
                                                              "--seconds", str(args.seconds)], args.threads,
                                                OMNIEMBED_MODEL_PRECISION=precision)
                measured[(batch, length)][f"omniembed-{precision}"].append(result["items_per_second"])
            for engine in references:
                time.sleep(0.2)
                seconds = engines[engine].measure({"batch": batch, "length": length}, args.seconds)
                measured[(batch, length)][engine].append(batch / seconds)
        print(f"  round {round + 1} of {args.rounds} done", flush=True)

    columns = ours + references
    print(f"\nitems/s (GFLOP/s, % of the sgemm ceiling)")
    print(f"{'batch':>5} {'len':>4} | " + " | ".join(f"{c.replace('omniembed-', 'ours '):>22}" for c in columns))
    misses = []
    for batch, length in cells:
        median = {e: statistics.median(measured[(batch, length)][e]) for e in columns}
        flops = flops_per_item(config, length)
        print(f"{batch:>5} {length:>4} | " + " | ".join(
            f"{median[e]:>8.1f} ({median[e] * flops / 1e9:>5.1f}, {100 * median[e] * flops / 1e9 / peak:>3.0f}%)" for e in columns))
        verdicts = []
        fp32, ort, torch = median["omniembed-fp32"], median["onnxruntime"], median["pytorch"]
        needs_ort = batch >= 8 or length >= 64
        verdicts.append(((f"fp32 {fp32 / ort:.2f}× ORT, " if needs_ort else "fp32 ") + f"{fp32 / torch:.2f}× PT",
                         (fp32 >= ort or not needs_ort) and fp32 >= 2 * torch))
        if "bf16" in precisions and batch >= 8:
            ratio = median["omniembed-bf16"] / fp32
            verdicts.append((f"bf16 {ratio:.2f}× fp32 (≥1.6)", ratio >= 1.6))
        if "int8" in precisions and batch >= 8:
            ratio = median["omniembed-int8"] / median["onnxruntime-int8"]
            verdicts.append((f"int8 {ratio:.2f}× ORT int8 (≥1)", ratio >= 1))
        print(f"{'':>12}" + "; ".join(f"{text}: {'met' if ok else 'MISSED'}" for text, ok in verdicts), flush=True)
        misses += [(batch, length, text) for text, ok in verdicts if not ok]
    print(f"cells missing their target: {len(misses)}" + (f" {misses}" if misses else ""))


if __name__ == "__main__":
    main()
