#!/usr/bin/env python3
"""Measure the latency and throughput of a BERT-QA engine, or of the whole SQuAD pipeline.

As in NVIDIA's demo, inputs are random token ids copied to the GPU once and each iteration is
timed on the GPU with CUDA events around the engine alone. A second pass times the same
iterations with the host-to-device and device-to-host copies included. With --real-lengths the
masks have the lengths of a SQuAD file's windows, so packed (--varseqlen) engines are timed on
real data.

With --squad, the whole pipeline is timed, SQuAD JSON in to answers out, three ways on the same
windows and batches: the host alone (a zero-time engine stand-in), the engine alone (features
made beforehand), and end to end. --stand-in MS replaces the engine by a stand-in that sleeps
MS ms per batch and returns random logits, to measure on any machine whether the host can feed
a GPU.

    python perf.py -e bert.engine
    python perf.py -e bert.engine --squad dev-v1.1.json -v vocab.txt --json squad.json
    python perf.py --stand-in 40 -b 128 --squad dev-v1.1.json -v vocab.txt
"""
import argparse
import collections
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from helpers.cli import HelpFormatter
from helpers.files import check_writable, write_json_atomically
from helpers.layer_profile import engine_layer_name, inspected_precisions, make_profiler, summarize_parts, time_by
from helpers.errors import InputError, OptionError, check_range, run_main
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


def benchmark(runner, batch, sequence, iterations, warm_up, duration_s, seed, cuda_graph, lengths=None):
    """One row of the latency table for (batch, sequence); masks of `lengths` when given (else all ones)."""
    cuda = runner.cuda
    rng = np.random.default_rng(seed)
    vocab = runner.info.model.get("vocab_size", 30522) if runner.info else 30522
    mask = np.ones((batch, sequence))
    if lengths is not None:
        mask = np.arange(sequence) < rng.choice(np.minimum(lengths, sequence), batch)[:, None]
    inputs = (rng.integers(0, vocab, (batch, sequence)), rng.integers(0, 2, (batch, sequence)), mask)
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
    row = {"batch": batch, "sequence": sequence, "cuda_graph": bool(cuda_graph),
           "real_tokens_per_row": float(mask.sum() / batch)}
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


@dataclass(frozen=True)
class SquadRun:
    """What perf.py --squad times: the pipeline's options, decided once in main()."""
    squad_json: str
    vocab_file: str
    batch_size: int
    sequence_length: int
    sequence_lengths: tuple  # the profiles' sequence lengths, for --sort-by-length
    jobs: int
    sort_by_length: bool


def window_lengths(squad_json, vocab_file, sequence_length):
    """The real lengths of a SQuAD file's windows at this sequence length (stride 128, query 64)."""
    from helpers.answering import AnswerOptions, make_features
    from helpers.data_processing import read_squad_examples
    from helpers.tokenization import FullTokenizer
    examples = read_squad_examples(squad_json)
    return make_features(examples, FullTokenizer(vocab_file), AnswerOptions(max_seq_length=sequence_length)).lengths


def time_batches(model, batches):
    """Seconds to run the batches through the model alone, as many in flight as it allows."""
    from helpers.answering import async_model
    model = async_model(model)
    pending = collections.deque()
    start = time.perf_counter()
    for inputs in batches:
        if len(pending) >= model.in_flight:
            pending.popleft().result()
        pending.append(model.submit(*inputs))
    while pending:
        pending.popleft().result()
    return time.perf_counter() - start


def squad_pipeline(model, run):
    """Times of the SQuAD pipeline: host alone, engine alone and end to end, on the same batches."""
    from helpers.answering import AnswerOptions, answer_examples, batch_widths, make_features, plan_batches
    from helpers.data_processing import read_squad_examples
    from helpers.stand_in import StandIn
    from helpers.tokenization import FullTokenizer
    tokenizer = FullTokenizer(run.vocab_file)
    start = time.perf_counter()
    examples = read_squad_examples(run.squad_json)
    read_s = time.perf_counter() - start
    if not examples:
        raise InputError(f"{run.squad_json} holds no questions")
    options = dict(batch_size=run.batch_size, max_seq_length=run.sequence_length, jobs=run.jobs, nbest=False,
                   sort_by_length=run.sort_by_length, sequence_lengths=run.sequence_lengths)

    def pipeline(logits_fn):
        start = time.perf_counter()
        answers = answer_examples(examples, tokenizer, logits_fn, **options)
        return read_s + time.perf_counter() - start, answers

    host_s, _ = pipeline(StandIn(0))
    windows = make_features(examples, tokenizer, AnswerOptions(max_seq_length=run.sequence_length))
    widths = batch_widths(run.sequence_length, run.sequence_lengths, run.sort_by_length)
    plan = plan_batches(windows.lengths, run.batch_size, widths)
    batches = [(windows.input_ids[rows, :width], windows.segment_ids[rows, :width],
                windows.input_mask(rows, width)) for width, rows in plan]
    engine_s = time_batches(model, batches)
    end_to_end_s, answers = pipeline(model)
    assert len(answers) == len(examples)
    tokens = int(windows.lengths.sum())
    padded = sum(width * len(rows) for width, rows in plan)
    count = len(windows.lengths)
    return {"squad_json": os.path.basename(run.squad_json), "questions": len(examples), "windows": count,
            "tokens": tokens, "batches": len(plan), "batch": run.batch_size, "sequence": run.sequence_length,
            "widths": widths, "jobs": run.jobs, "sort_by_length": run.sort_by_length, "read_s": read_s,
            "host_s": host_s, "engine_s": engine_s, "end_to_end_s": end_to_end_s,
            "questions_per_s": len(examples) / end_to_end_s, "windows_per_s": count / end_to_end_s,
            "tokens_per_s": tokens / end_to_end_s, "engine_windows_per_s": count / engine_s,
            "host_questions_per_s": len(examples) / host_s, "padding_fraction": 1 - tokens / padded,
            "end_to_end_over_slower_part": end_to_end_s / max(host_s, engine_s)}


def print_squad_report(row):
    print(f"SQuAD pipeline: {row['questions']} questions, {row['windows']} windows, {row['tokens']} real tokens in "
          f"{row['batches']} batches of up to {row['batch']} at widths {row['widths']}, {row['jobs']} jobs\n"
          f"\tend to end: {row['end_to_end_s']:.2f} s\t{row['questions_per_s']:.1f} questions/s\t"
          f"{row['windows_per_s']:.1f} windows/s\t{row['tokens_per_s']:.0f} tokens/s\n"
          f"\thost alone: {row['host_s']:.2f} s ({row['host_questions_per_s']:.1f} questions/s; "
          f"JSON read {row['read_s']:.2f} s)\tengine alone: {row['engine_s']:.2f} s "
          f"({row['engine_windows_per_s']:.1f} windows/s)\n"
          f"\tend to end / max(host, engine): {row['end_to_end_over_slower_part']:.3f}\t"
          f"padding: {row['padding_fraction']:.1%} of the tokens run")


def squad_run(args, runner):
    """The --squad options, checked against each other and the engine."""
    from helpers.answering import batch_widths
    if not args.vocab_file:
        raise OptionError("--squad needs the model's vocabulary: pass its vocab.txt with -v")
    if args.batch_size and len(args.batch_size) > 1 or args.sequence_length and len(args.sequence_length) > 1 and runner:
        raise OptionError("--squad takes one -b and, with an engine, at most one -s (its other profiles serve "
                         "--sort-by-length)")
    if runner:
        lengths = tuple(runner.sequence_lengths)
        sequence = args.sequence_length[0] if args.sequence_length else lengths[-1]
        if sequence not in lengths:
            raise OptionError(f"the engine serves sequence lengths {list(lengths)}, not {sequence}; pass one of "
                             "them with -s or rebuild the engine")
        batch = args.batch_size[0] if args.batch_size else runner.max_batch_size
        for width in batch_widths(sequence, lengths, args.sort_by_length):
            runner.profile_for(batch, width)  # a batch the engine cannot run fails here, before any work
    else:
        lengths = tuple(sorted(args.sequence_length or [384]))
        sequence = lengths[-1]
        batch = args.batch_size[0] if args.batch_size else 128
    return SquadRun(args.squad, args.vocab_file, batch, sequence, lengths,
                    args.jobs or available_jobs(), args.sort_by_length)


def available_jobs():
    from helpers.answering import available_cores
    return available_cores()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter, epilog=__doc__)
    p.add_argument("-e", "--engine", help="engine built by builder.py (required unless --squad --stand-in)")
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
    p.add_argument("--real-lengths", metavar="SQUAD_JSON",
                   help="masks with the lengths of this SQuAD file's windows (needs -v), not all ones")
    p.add_argument("--squad", metavar="SQUAD_JSON",
                   help="time the whole SQuAD pipeline on this file: host alone, engine alone, end to end (needs -v)")
    p.add_argument("-v", "--vocab-file", help="the model's vocab.txt, for --squad and --real-lengths")
    p.add_argument("--stand-in", type=float, metavar="MS",
                   help="with --squad: instead of an engine, a stand-in sleeping MS ms per batch (random logits)")
    p.add_argument("--jobs", type=int, help="with --squad: worker processes for features and answers "
                                           "(default: the cores available)")
    p.add_argument("--sort-by-length", action="store_true",
                   help="with --squad: run each window on the smallest of the engine's sequence lengths that holds it")
    return p.parse_args(argv)


def main_squad(args):
    if (args.engine is None) == (args.stand_in is None):
        raise OptionError("--squad needs either an engine (-e) or --stand-in MS, not both")
    if args.engine:
        from helpers.engine_runner import EngineRunner
        runner = EngineRunner(args.engine)
        model, what = runner, (f"{args.engine}: {runner.info.precision if runner.info else 'unknown'}, TensorRT "
                               f"{runner.trt.__version__}, {runner.cuda.Device(0).name()}")
    else:
        from helpers.stand_in import StandIn
        runner, model, what = None, StandIn(args.stand_in), f"engine stand-in, {args.stand_in:g} ms per batch"
    run = squad_run(args, runner)
    print(what)
    row = squad_pipeline(model, run)
    row["model"] = what
    print_squad_report(row)
    if args.json:
        write_json_atomically(args.json, {"squad": row})
    return 0


def check_options(args):
    """Every number as given: 0 is checked like any other value, never taken for "not set"."""
    for value in args.batch_size or []:
        check_range("-b/--batch-size", value, minimum=1)
    for value in args.sequence_length or []:
        check_range("-s/--sequence-length", value, minimum=1)
    check_range("-i/--iterations", args.iterations, minimum=1)
    check_range("-w/--warm-up-runs", args.warm_up_runs, minimum=0)
    check_range("-r/--random-seed", args.random_seed, minimum=0)
    check_range("-d/--duration", args.duration, minimum=0)
    check_range("--stand-in", args.stand_in, minimum=0)
    check_range("--jobs", args.jobs, minimum=1)
    if args.json:
        check_writable(args.json, "--json file")


def main(argv=None):
    args = parse_args(argv)
    check_options(args)
    if args.squad:
        return main_squad(args)
    if args.stand_in is not None or args.jobs is not None or args.sort_by_length:
        raise OptionError("--stand-in, --jobs and --sort-by-length go with --squad")
    if not args.engine:
        raise OptionError("give an engine with -e (or time the SQuAD pipeline with --squad)")
    if args.real_lengths and not args.vocab_file:
        raise OptionError("--real-lengths needs the model's vocabulary: pass its vocab.txt with -v")
    from helpers.engine_runner import EngineRunner
    runner = EngineRunner(args.engine)
    sequences = args.sequence_length or runner.sequence_lengths
    batches = args.batch_size or sorted({p.max_batch for p in runner.profiles})
    gpu = runner.cuda.Device(0).name()
    precision = runner.info.precision if runner.info else "unknown"
    print(f"{args.engine}: {precision}, TensorRT {runner.trt.__version__}, {gpu}")
    rows = []
    for sequence in sequences:
        lengths = window_lengths(args.real_lengths, args.vocab_file, sequence) if args.real_lengths else None
        for batch in batches:
            row = benchmark(runner, batch, sequence, args.iterations, args.warm_up_runs, args.duration,
                            args.random_seed, args.cuda_graph, lengths)
            if args.real_lengths:
                row["real_lengths"] = os.path.basename(args.real_lengths)
            rows.append(row)
            print(f"Running {row['iterations']} iterations with Batch Size: {batch}, Sequence Length: {sequence}"
                  f"{' (CUDA graph)' if args.cuda_graph else ''}\n"
                  f"\tAverage Time: {row['mean_ms']:.3f} ms\tp50: {row['p50_ms']:.3f} ms\t"
                  f"p90: {row['p90_ms']:.3f} ms\t95th Percentile Time: {row['p95_ms']:.3f} ms\t"
                  f"99th Percentile Time: {row['p99_ms']:.3f} ms\n"
                  f"\tThroughput: {row['throughput_seq_per_s']:.1f} sequences/s\t"
                  f"{row['real_tokens_per_row']:.1f} real tokens per sequence\t"
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


if __name__ == "__main__":
    run_main("perf.py", main)
