#!/usr/bin/env python3
"""Audio tower throughput: seconds of audio embedded per second of wall time, for OmniEmbed (end to end: WAV
decoding, resampling, log-mel, musicnn; and the model alone on ready patches) and, in the same run, musicnn's own
extractor (TensorFlow; it rebuilds its graph on every call) and the same TensorFlow model with the graph built once.
A 30-second 44.1 kHz recording (a synthetic melody with noise), 2 threads for everyone; medians.

Run through scripts/bench/bench-audio, which prepares the TensorFlow venv and the release build.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = os.path.join(ROOT, "models", "musicnn-mtt", "")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "omniembed"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per engine")
    parser.add_argument("--precision", default="fp32", help="OmniEmbed's precisions, comma-separated: fp32,bf16,int8")
    args = parser.parse_args()
    precisions = [p for p in args.precision.split(",") if p != "fp32"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    path = os.path.join(ROOT, ".cache", "bench", "30s-44k.wav")
    bench_common.melody_wav(path)

    ours = bench_common.omniembed(args.binary, ["--audio", path, "--seconds", str(args.seconds)], args.threads)
    duration = ours["audio_seconds"]
    lower = {p: bench_common.omniembed(args.binary, ["--audio", path, "--seconds", str(args.seconds)], args.threads,
                                       OMNIEMBED_MODEL_PRECISION=p) for p in precisions}

    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from musicnn import configuration, models
    from musicnn.extractor import batch_data, extractor

    def end_to_end():
        extractor(path, model="MTT_musicnn", extract_features=True)
    reference_end_to_end = bench_common.time_runs(end_to_end, args.seconds, minimum=2)

    batch, _ = batch_data(path, 187, 187)
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, configuration.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, penultimate = models.define_model(x, is_training, "MTT_musicnn", len(configuration.MTT_LABELS))
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(config=config) as session:
        tf.compat.v1.train.Saver().restore(session, PREFIX)
        reference_model = bench_common.time_runs(
            lambda: session.run([y, penultimate], feed_dict={x: batch, is_training: False}), args.seconds)

    print(f"CPU: {bench_common.cpu_name()}")
    print(f"{duration:.0f} s of 44.1 kHz audio ({ours['patches']} patches), {args.threads} threads; audio seconds per second, medians:")
    rows = [("omniembed, end to end (decode, resample, log-mel, model)", duration / ours["end_to_end_seconds"]),
            ("musicnn extractor, end to end (TensorFlow)", duration / reference_end_to_end),
            ("omniembed, model alone", duration / ours["model_seconds"]),
            ("TensorFlow model alone, graph built once", duration / reference_model)]
    for precision, timing in lower.items():
        rows += [(f"omniembed {precision}, end to end", duration / timing["end_to_end_seconds"]),
                 (f"omniembed {precision}, model alone", duration / timing["model_seconds"])]
    for label, rate in rows:
        print(f"  {label:<58} {rate:8.1f}")
    for precision, timing in lower.items():
        ratio = ours["model_seconds"] / timing["model_seconds"]
        print(f"{precision} model alone: {ratio:.2f}× our fp32" + (f" (target ≥ 1.5×: {'met' if ratio >= 1.5 else 'MISSED'})"
                                                                    if precision == "bf16" else ""))
    print(f"end to end: {rows[0][1] / rows[1][1]:.1f}× the extractor (target ≥ 5×); "
          f"model alone: {rows[2][1] / rows[3][1]:.2f}× TensorFlow's (target ≥ 1)")


if __name__ == "__main__":
    main()
