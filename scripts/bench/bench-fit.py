#!/usr/bin/env python3
"""The driver of scripts/bench/bench-fit (see there): `omniembed fit` against faiss's k-means, same data, same run.

Data: `--items` unit vectors of `--dims` dimensions around 4,096 random centres (clustered like item embeddings),
seeded, cached under .cache/bench/. Both engines fit `--levels` residual k-means levels of `--clusters` centroids
on every point (faiss's sub-sampling is turned off) with at most `--iterations` Lloyd iterations per level, on all
cores, and end with every point's assignment; round r seeds both with r. Each run is a fresh process (one engine in memory at a time). The
quantisation error (mean squared norm of what the last level leaves) is recounted here with NumPy for both, from
OmniEmbed's codebook and codes and from faiss's centroids and assignments.
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dataset(items, dims, seed=1):
    path = os.path.join(ROOT, ".cache", "bench", f"fit-{items}x{dims}-s{seed}.npy")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((4096, dims), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        x = np.empty((items, dims), dtype=np.float32)
        for start in range(0, items, 100_000):
            n = min(100_000, items - start)
            block = centres[rng.integers(0, len(centres), n)]
            block += rng.standard_normal((n, dims), dtype=np.float32) * np.float32(0.7 / np.sqrt(dims))
            x[start:start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
        np.save(path + ".tmp.npy", x)
        os.replace(path + ".tmp.npy", path)
    return path


def read_safetensors(path):
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    header.pop("__metadata__", None)
    return {name: np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]], dtype="<f4").reshape(e["shape"])
            for name, e in header.items()}


def residual_error(x, levels, codes):
    """Mean squared norm of x minus the sum of each level's centroid, in blocks (x is large)."""
    total = 0.0
    for start in range(0, len(x), 100_000):
        r = x[start:start + 100_000].astype(np.float32, copy=True)
        for level, centroids in enumerate(levels):
            r -= centroids[codes[start:start + 100_000, level]]
        total += float(np.einsum("ij,ij->", r, r, dtype=np.float64))
    return total / len(x)


def run_omniembed(binary, data, args, work, seed):
    paths = {name: os.path.join(work, name) for name in ("cb.safetensors", "codes.npy", "report.json")}
    started = time.perf_counter()
    subprocess.run([binary, "fit", "--config", os.path.join(ROOT, "config", "default.json"), "--vectors", data,
                    "--output", paths["cb.safetensors"], "--levels", str(args.levels), "--clusters", str(args.clusters),
                    "--iterations", str(args.iterations), "--seed", str(seed), "--initialisation", args.initialisation,
                    "--refinement-passes", str(args.refinement_passes), "--codes", paths["codes.npy"],
                    "--report", paths["report.json"]], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    report = json.load(open(paths["report.json"]))
    tensors = read_safetensors(paths["cb.safetensors"])
    x = np.load(data, mmap_mode="r")
    rotated = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), 100_000):
        rotated[start:start + 100_000] = x[start:start + 100_000] @ tensors["rotation"].T
    levels = [tensors[f"level.{l}.centroids"] for l in range(args.levels)]
    error = residual_error(rotated, levels, np.load(paths["codes.npy"]))
    return {"seconds": report["seconds"], "wall": wall, "error": error, "reported_error": report["levels"][-1]["error"],
            "levels": [level["error"] for level in report["levels"]],
            "iterations": [level["iterations"] for level in report["levels"]]}


def faiss_worker(data, levels, clusters, iterations, seed):
    """Residual k-means with faiss.Kmeans on every point; prints seconds and the NumPy-recounted error."""
    import faiss
    x = np.load(data)
    started = time.perf_counter()
    residual = x.copy()
    centroids, codes = [], np.empty((len(x), levels), dtype=np.int64)
    for level in range(levels):
        kmeans = faiss.Kmeans(x.shape[1], clusters, niter=iterations, seed=1234 + 1000 * seed + level,
                              max_points_per_centroid=len(x), verbose=False)
        kmeans.train(residual)
        _, assignment = kmeans.index.search(residual, 1)
        codes[:, level] = assignment[:, 0]
        residual -= kmeans.centroids[assignment[:, 0]]
        centroids.append(kmeans.centroids.copy())
    seconds = time.perf_counter() - started
    per_level = [residual_error(x, centroids[:l + 1], codes[:, :l + 1]) for l in range(levels)]
    print(json.dumps({"seconds": seconds, "error": per_level[-1], "levels": per_level, "threads": faiss.omp_get_max_threads()}))


def run_faiss(data, args, seed):
    out = subprocess.run([sys.executable, __file__, "--faiss-worker", data, str(args.levels), str(args.clusters),
                          str(args.iterations), str(seed)], check=True, capture_output=True, text=True,
                         # faiss's bundled OpenBLAS gets the kernel OmniEmbed picks (scripts/bench/bench-venv.sh).
                         env=os.environ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--faiss-worker":
        faiss_worker(sys.argv[2], *map(int, sys.argv[3:7]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--initialisation", default="kmeans++", help="omniembed fit's: kmeans++ or random")
    parser.add_argument("--refinement-passes", type=int, default=2,
                        help="omniembed fit's joint codebook refinement passes after the levels (0: none)")
    parser.add_argument("--only-omniembed", action="store_true", help="skip faiss (to compare settings of ours)")
    args = parser.parse_args()
    binary = os.path.join(ROOT, ".build", "release", "omniembed")
    data = dataset(args.items, args.dims)
    work = tempfile.mkdtemp(prefix="bench-fit-")
    print(f"{args.items} vectors × {args.dims}, {args.levels} levels × {args.clusters}, ≤ {args.iterations} iterations, "
          f"omniembed initialisation {args.initialisation}, refinement passes {args.refinement_passes}, "
          f"{os.cpu_count()} cores, {args.rounds} round(s), engines alternating", flush=True)
    results = {"omniembed": [], "faiss": []}
    for round in range(args.rounds):
        order = ["omniembed", "faiss"] if round % 2 == 0 else ["faiss", "omniembed"]
        if args.only_omniembed:
            order = ["omniembed"]
        for engine in order:
            # Round r seeds both engines with r: the errors' spread over rounds is the seeds' effect.
            result = (run_omniembed(binary, data, args, work, round) if engine == "omniembed"
                      else run_faiss(data, args, round))
            results[engine].append(result)
            print(f"  round {round + 1} {engine:9s} {result['seconds']:8.2f} s  error {result['error']:.6f}  per level "
                  + ", ".join(f"{e:.6f}" for e in result["levels"])
                  + (f"  (reported {result['reported_error']:.6f}, iterations {result['iterations']})"
                     if engine == "omniembed" else ""), flush=True)
    if args.only_omniembed:
        print(f"\nmedian fit time {statistics.median(r['seconds'] for r in results['omniembed']):.2f} s, error "
              f"{statistics.median(r['error'] for r in results['omniembed']):.6f}")
        return
    ours = statistics.median(r["seconds"] for r in results["omniembed"])
    theirs = statistics.median(r["seconds"] for r in results["faiss"])
    our_error = statistics.median(r["error"] for r in results["omniembed"])
    their_error = statistics.median(r["error"] for r in results["faiss"])
    print(f"\nmedian fit time: omniembed {ours:.2f} s, faiss {theirs:.2f} s → omniembed/faiss time {ours / theirs:.2f}×")
    print(f"quantisation error (mean squared residual): omniembed {our_error:.6f}, faiss {their_error:.6f} "
          f"→ ratio {our_error / their_error:.4f}")


if __name__ == "__main__":
    main()
