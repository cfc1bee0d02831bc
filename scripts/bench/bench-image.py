#!/usr/bin/env python3
"""Image tower throughput: OmniEmbed's EfficientNet-Lite0 vs ONNX Runtime (fp32, graph optimisations on; exported
by torch.onnx from the same weights) vs PyTorch (`efficientnet_lite_pytorch`), 2 threads each, images/s per batch
size; then decoding + preprocessing of a 1080p JPEG: ours full-size and DCT-scaled vs Pillow's pipeline.

Run through scripts/bench/bench-image, which prepares the venv and the release build. Method as scripts/bench/bench-text.py.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS = os.path.join(ROOT, "models", "efficientnet-lite0", "efficientnet-lite0-57934424.pth")
GFLOP_PER_IMAGE = 0.77


def reference_model(threads):
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    return model.eval()


def export_onnx(path):
    import torch
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(WEIGHTS):
        return
    with torch.no_grad():
        torch.onnx.export(reference_model(1), (torch.zeros(1, 3, 224, 224),), path + ".tmp", dynamo=False,
                          opset_version=17, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(path + ".tmp", path)


def worker(engine, onnx_path, threads):
    import numpy as np

    def make_runner():
        if engine in ("onnxruntime", "onnxruntime-int8"):
            import onnxruntime as ort
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            path = onnx_path if engine == "onnxruntime" else onnx_path.replace(".onnx", ".int8.onnx")
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            return lambda x: session.run(None, {"image": x})
        import torch
        model = reference_model(threads)

        def run(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x))
        return run

    rng = np.random.default_rng(0)
    bench_common.serve_worker(make_runner, lambda cell: rng.uniform(-1, 1, (cell["batch"], 3, 224, 224)).astype(np.float32))


def pillow_pipeline(path):
    import numpy as np
    from PIL import Image
    image = Image.open(path).convert("RGB")
    w, h = image.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    image = image.resize(size, Image.BILINEAR)
    top, left = int(round((size[1] - 224) / 2.0)), int(round((size[0] - 224) / 2.0))
    pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    return ((pixels - 127) / 128).transpose(2, 0, 1)


def hd_photo(path):
    if not os.path.exists(path):
        import skimage.data
        from PIL import Image
        Image.fromarray(skimage.data.astronaut()).resize((1920, 1080), Image.BICUBIC).save(path, quality=90)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "omniembed"))
    parser.add_argument("--onnx", default=os.path.join(ROOT, ".cache", "bench", "efficientnet-lite0.onnx"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per engine per cell")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over all batch sizes; the table shows each cell's median over the rounds")
    parser.add_argument("--precision", default="fp32", help="OmniEmbed's precisions, comma-separated: fp32,bf16,int8")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    if "fp32" not in precisions:
        precisions.insert(0, "fp32")
    if args.worker:
        return worker(args.worker, args.onnx, args.threads)

    os.makedirs(os.path.dirname(args.onnx), exist_ok=True)
    export_onnx(args.onnx)
    extra = ["--onnx", args.onnx, "--threads", str(args.threads)]
    references = ["onnxruntime", "pytorch"]
    if len(precisions) > 1:
        from bench_text_reference import quantize_onnx
        quantize_onnx(args.onnx, args.onnx.replace(".onnx", ".int8.onnx"))
        references.insert(1, "onnxruntime-int8")
    engines = {name: bench_common.Worker(__file__, name, extra) for name in references}
    print(f"CPU: {bench_common.cpu_name()}")
    print(f"threads: {args.threads} per engine; images/s are medians over repeated batches ({args.seconds:g} s per engine "
          f"per cell), then the median of {args.rounds} round(s)")
    lower = [f"omniembed-{p}" for p in precisions[1:]]
    measured = {batch: {e: [] for e in ["omniembed"] + lower + references} for batch in args.batch_sizes}
    for round in range(args.rounds):
        for batch in args.batch_sizes:
            for precision, name in zip(precisions, ["omniembed"] + lower):
                measured[batch][name].append(bench_common.omniembed(
                    args.binary, ["--tower", "image", "--batch-sizes", str(batch), "--seconds", str(args.seconds)],
                    args.threads, OMNIEMBED_MODEL_PRECISION=precision)["items_per_second"])
            for engine in references:
                time.sleep(0.2)
                measured[batch][engine].append(batch / engines[engine].measure({"batch": batch}, args.seconds))
        print(f"  round {round + 1} of {args.rounds} done", flush=True)
    print(f"{'batch':>5} | {'omniembed':>10} {'GFLOP/s':>8} | {'onnxrt':>8} | {'pytorch':>8} | {'vs ORT':>6} {'vs PT':>6}")
    for batch in args.batch_sizes:
        ours, ort, torch = (statistics.median(measured[batch][e]) for e in ("omniembed", "onnxruntime", "pytorch"))
        print(f"{batch:>5} | {ours:>10.1f} {ours * GFLOP_PER_IMAGE:>8.1f} | {ort:>8.1f} | {torch:>8.1f} | "
              f"{ours / ort:>6.2f} {ours / torch:>6.2f}", flush=True)
    # Each round measures the engines one after the other, so the ratio within a round is the least disturbed by a
    # noisy host; its median over the rounds is printed beside the ratio of the medians.
    for batch in args.batch_sizes:
        ratios = [o / r for o, r in zip(measured[batch]["omniembed"], measured[batch]["onnxruntime"])]
        print(f"batch {batch:>2}, omniembed/ORT per round: {' '.join(f'{r:.2f}' for r in ratios)}; "
              f"median {statistics.median(ratios):.2f}")

    if len(precisions) > 1:
        columns = ["omniembed"] + lower + references[:-1]
        print(f"\nimages/s by precision: " + ", ".join(c.replace("omniembed-", "ours ").replace("omniembed", "ours fp32") for c in columns))
        for batch in args.batch_sizes:
            median = {c: statistics.median(measured[batch][c]) for c in columns}
            print(f"{batch:>5} | " + " | ".join(f"{median[c]:>8.1f}" for c in columns) + " | " +
                  ", ".join(f"{c.replace('omniembed-', '')} {median[c] / median['omniembed']:.2f}× fp32" for c in lower) +
                  (f", int8 {median['omniembed-int8'] / median['onnxruntime-int8']:.2f}× ORT int8" if "omniembed-int8" in median else ""))

    photo = os.path.join(os.path.dirname(args.onnx), "1080p.jpg")
    hd_photo(photo)
    timing = bench_common.omniembed(args.binary, ["--decode", photo, "--seconds", str(args.seconds)], args.threads)
    pillow = bench_common.time_runs(lambda: pillow_pipeline(photo), args.seconds)
    print()
    print(f"decode + preprocess of a {timing['width']}×{timing['height']} JPEG to the 3×224×224 input, median ms:")
    print(f"  omniembed, DCT-scaled decode: {timing['scaled_decode_and_preprocess_seconds'] * 1000:7.2f}  (target ≤ 5)")
    print(f"  omniembed, full decode:       {timing['full_decode_and_preprocess_seconds'] * 1000:7.2f}")
    print(f"  Pillow + numpy:               {pillow * 1000:7.2f}")


if __name__ == "__main__":
    main()
