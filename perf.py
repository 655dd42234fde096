#!/usr/bin/env python3
"""Measure the latency and throughput of a BERT-QA engine.

As in NVIDIA's demo, inputs are random token ids copied to the GPU once and each iteration is
timed on the GPU with CUDA events around the engine alone. A second pass times the same
iterations with the host-to-device and device-to-host copies included.
"""
import argparse
import os
import sys
import time

import numpy as np

from helpers.cli import HelpFormatter
from helpers.files import write_json_atomically
from helpers.layer_profile import engine_layer_name, inspected_precisions, make_profiler, summarize_parts, time_by
from helpers.errors import BertTrtError
from helpers.trt_common import TensorRTError


def percentile(values, q):
    return float(np.percentile(values, q))


def time_iterations(cuda, stream, run, iterations, duration_s):
    """GPU milliseconds of each call of run(), at least `iterations` of them, or `duration_s` seconds."""
    start, end = cuda.Event(), cuda.Event()
    times = []
    deadline = time.monotonic() + (duration_s or 0)
    while len(times) < iterations or time.monotonic() < deadline:
        start.record(stream)
        run()
        end.record(stream)
        end.synchronize()
        times.append(start.time_till(end))
    return np.array(times)


def summarize(times_ms):
    return {"mean_ms": float(times_ms.mean()), "p50_ms": percentile(times_ms, 50),
            "p90_ms": percentile(times_ms, 90), "p95_ms": percentile(times_ms, 95),
            "p99_ms": percentile(times_ms, 99), "iterations": int(times_ms.size)}


def graph_replay(runner, binding):
    """The binding's inference, captured once as a CUDA graph: returns the call that replays it."""
    from helpers.cuda_graph import CudaGraph, CudaGraphError
    try:
        return CudaGraph(runner.stream, binding.execute_async).launch
    except (TensorRTError, CudaGraphError) as e:
        # TensorRT 8.6 cannot capture the layers it fuses itself (Myelin), e.g. those of --attention layers.
        raise TensorRTError(f"the engine could not be captured as a CUDA graph ({e}; TensorRT's log above says "
                            "why); time it without --cuda-graph") from None


def benchmark(runner, batch, sequence, iterations, warm_up, duration_s, seed, cuda_graph):
    """One row of the latency table for (batch, sequence)."""
    cuda = runner.cuda
    rng = np.random.default_rng(seed)
    vocab = runner.info.model.get("vocab_size", 30522) if runner.info else 30522
    inputs = (rng.integers(0, vocab, (batch, sequence)), rng.integers(0, 2, (batch, sequence)),
              np.ones((batch, sequence)))
    binding = runner.binding(batch, sequence)
    binding.stage_inputs([a.astype(np.int32) for a in inputs])
    binding.copy_inputs_async()
    binding.execute_async()
    runner.stream.synchronize()

    compute = graph_replay(runner, binding) if cuda_graph else binding.execute_async

    def end_to_end():
        binding.copy_inputs_async()
        compute()
        binding.copy_outputs_async()

    for _ in range(warm_up):
        compute()
    runner.stream.synchronize()
    row = {"batch": batch, "sequence": sequence, "cuda_graph": bool(cuda_graph)}
    row.update(summarize(time_iterations(cuda, runner.stream, compute, iterations, duration_s)))
    row["throughput_seq_per_s"] = batch * 1000.0 / row["mean_ms"]
    with_copies = summarize(time_iterations(cuda, runner.stream, end_to_end, iterations, duration_s))
    row["with_copies_mean_ms"] = with_copies["mean_ms"]
    row["with_copies_p99_ms"] = with_copies["p99_ms"]
    return row


def profile_layers(runner, batch, sequence, runs):
    """Mean time of each engine layer over `runs` runs, from TensorRT's profiler.

    Called after the timed rows: the profiler slows every later run of its context down.
    """
    binding = runner.binding(batch, sequence)
    timer = make_profiler(runner.trt)
    binding.context.profiler = timer
    for _ in range(runs):
        binding.execute_async()
        runner.stream.synchronize()
    return binding, timer.layer_times()


def layer_report(runner, batch, sequence, runs):
    """Per-layer times, their sum per part of BERT, and each layer's precision (engine inspector)."""
    binding, times = profile_layers(runner, batch, sequence, runs)
    # TensorRT 8.6's inspector logs an internal error for each layer it cannot describe on a profile
    # other than the first (126 lines for the 6-layer test engine); those layers are left out of the
    # precision column, which says "unknown" for them, so the log lines are kept quiet.
    shown, runner.logger.min_severity = runner.logger.min_severity, runner.trt.Logger.INTERNAL_ERROR
    try:
        precisions = inspected_precisions(runner.trt, runner.engine, binding.context)
    except (AttributeError, TypeError) as e:  # an inspector API this code does not know
        print(f"perf.py: warning: no layer precisions from the engine inspector ({e})", file=sys.stderr)
        precisions = {}
    finally:
        runner.logger.min_severity = shown
    precision = {t.name: precisions.get(engine_layer_name(t.name)) for t in times}
    return {"batch": batch, "sequence": sequence, "runs": runs,
            "parts": [{"part": part, "ms": ms, "share": share} for part, ms, share in summarize_parts(times)],
            "ms_by_precision": time_by(times, lambda t: precision[t.name] or "unknown"),
            "layers": [{"name": t.name, "ms": t.mean_ms, "precision": precision[t.name]} for t in times]}


def print_layer_report(report):
    total = sum(p["ms"] for p in report["parts"])
    print(f"Per-layer profile, batch {report['batch']}, sequence {report['sequence']} "
          f"(TensorRT profiler, {report['runs']} runs; {total:.3f} ms in all, profiler overhead included):")
    for p in report["parts"]:
        print(f"\t{p['part']:<32} {p['ms']:8.3f} ms  {p['share']:6.1%}")
    print("\tby precision: " + ", ".join(f"{k} {v:.3f} ms" for k, v in sorted(report["ms_by_precision"].items())))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("-e", "--engine", required=True, help="engine built by builder.py")
    p.add_argument("-b", "--batch-size", type=int, action="append",
                   help="batch size; repeatable (default: the largest batch of each profile)")
    p.add_argument("-s", "--sequence-length", type=int, action="append",
                   help="sequence length; repeatable (default: every sequence length of the engine)")
    p.add_argument("-i", "--iterations", type=int, default=200, help="timed iterations per row")
    p.add_argument("-w", "--warm-up-runs", type=int, default=10, help="untimed runs before timing")
    p.add_argument("-r", "--random-seed", type=int, default=12345, help="seed of the random inputs")
    p.add_argument("-d", "--duration", type=float, default=0.0,
                   help="time each row for at least this many seconds (and at least -i iterations)")
    p.add_argument("--cuda-graph", action="store_true", help="replay each inference as a CUDA graph")
    p.add_argument("--json", help="write the rows, with GPU and TensorRT versions, to this JSON file")
    p.add_argument("--layer-profile", action="store_true",
                   help="after timing, profile each layer with TensorRT's profiler and print where the time "
                        "goes and in which precision (added to --json)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        from helpers.engine_runner import EngineRunner
        runner = EngineRunner(args.engine)
        sequences = args.sequence_length or runner.sequence_lengths
        batches = args.batch_size or sorted({p.max_batch for p in runner.profiles})
        gpu = runner.cuda.Device(0).name()
        precision = runner.info.precision if runner.info else "unknown"
        print(f"{args.engine}: {precision}, TensorRT {runner.trt.__version__}, {gpu}")
        rows = []
        for sequence in sequences:
            for batch in batches:
                row = benchmark(runner, batch, sequence, args.iterations, args.warm_up_runs, args.duration,
                                args.random_seed, args.cuda_graph)
                rows.append(row)
                print(f"Running {row['iterations']} iterations with Batch Size: {batch}, Sequence Length: {sequence}"
                      f"{' (CUDA graph)' if args.cuda_graph else ''}\n"
                      f"\tAverage Time: {row['mean_ms']:.3f} ms\tp50: {row['p50_ms']:.3f} ms\t"
                      f"p90: {row['p90_ms']:.3f} ms\t95th Percentile Time: {row['p95_ms']:.3f} ms\t"
                      f"99th Percentile Time: {row['p99_ms']:.3f} ms\n"
                      f"\tThroughput: {row['throughput_seq_per_s']:.1f} sequences/s\t"
                      f"with copies: {row['with_copies_mean_ms']:.3f} ms average, "
                      f"{row['with_copies_p99_ms']:.3f} ms p99")
        report = {"engine": os.path.basename(args.engine), "gpu": gpu, "tensorrt": runner.trt.__version__,
                  "precision": precision, "model": runner.info.model if runner.info else {},
                  "build_options": runner.info.build_options if runner.info else {}, "rows": rows}
        if args.json:  # the timings first: the layer profile is a further, slower pass
            write_json_atomically(args.json, report)
        if args.layer_profile:
            report["layer_profiles"] = []
            for row in rows:
                report["layer_profiles"].append(
                    layer_report(runner, row["batch"], row["sequence"], max(args.iterations // 10, 10)))
                print_layer_report(report["layer_profiles"][-1])
            if args.json:
                write_json_atomically(args.json, report)
        return 0
    except (BertTrtError, ValueError, OSError) as e:
        print(f"perf.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
