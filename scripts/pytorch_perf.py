#!/usr/bin/env python3
"""The same BERT-QA workload in PyTorch, timed the way perf.py times an engine, plus the GPU's
dense fp16 matrix-product rate: the two references of the performance tables.

Hugging Face BertForQuestionAnswering, random weights, fp16, SDPA attention; eager and replayed
as a CUDA graph. Inputs live on the GPU; each iteration is timed with CUDA events.

    python scripts/pytorch_perf.py --model large -s 384 -b 1 -b 128 --json torch.json

With --squad SQUAD_JSON -v VOCAB it runs instead on that file's real windows (made by the project's
own feature code, as perf.py --squad makes them) in batches of -b: padded to the sequence length in
file order (eager and CUDA graph), sorted by length and padded to each batch's longest window
(eager), and with --compile as torch.compile(mode="max-autotune") at the padded shape; each row is
the time of every batch, inputs already on the GPU, so it compares with perf.py --squad's engine
alone.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.errors import BertTrtError, check_range, run_main  # noqa: E402
from helpers.files import check_writable, write_json_atomically  # noqa: E402

SHAPES = {"base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
          "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096)}


def time_ms(fn, iterations, warm_up):
    for _ in range(warm_up):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iterations):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return np.array(times)


def gemm_tflops(n=8192, iterations=20):
    """Dense fp16 matrix-product rate (TFLOP/s) of an n x n x n product on random data."""
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    times = time_ms(lambda: torch.mm(a, b), iterations, 5)
    return 2 * n ** 3 / (times.mean() / 1000) / 1e12


def make_model(name, seed=0):
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_act="gelu", attn_implementation="sdpa", **SHAPES[name])
    return BertForQuestionAnswering(config).cuda().half().eval()


def benchmark(model, batch, sequence, iterations, warm_up, cuda_graph):
    ids = torch.randint(0, 30522, (batch, sequence), device="cuda")
    segments = torch.randint(0, 2, (batch, sequence), device="cuda")
    mask = torch.ones(batch, sequence, dtype=torch.long, device="cuda")

    def forward():
        with torch.inference_mode():
            return model(input_ids=ids, token_type_ids=segments, attention_mask=mask)

    run = forward
    if cuda_graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                forward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            forward()
        run = graph.replay
    times = time_ms(run, iterations, warm_up)
    return {"batch": batch, "sequence": sequence, "cuda_graph": cuda_graph, "mean_ms": float(times.mean()),
            "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "throughput_seq_per_s": batch * 1000.0 / float(times.mean()), "iterations": iterations}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after each option's help, unless the help already names the default."""

    def _get_help_string(self, action):
        return action.help if "default" in (action.help or "") else super()._get_help_string(action)


def squad_windows(squad_json, vocab_file, sequence):
    """input_ids, segment_ids (int64 [windows, sequence]) and the real lengths of a SQuAD file's windows."""
    from helpers.answering import AnswerOptions, make_features
    from helpers.data_processing import read_squad_examples
    from helpers.tokenization import FullTokenizer
    windows = make_features(read_squad_examples(squad_json), FullTokenizer(vocab_file),
                            AnswerOptions(max_seq_length=sequence))
    return windows.input_ids.astype(np.int64), windows.segment_ids.astype(np.int64), windows.lengths


def squad_batches(ids, segments, lengths, batch, sort_by_length):
    """[(ids, segments, mask)] on the GPU: file order padded to the full width, or sorted by length
    and padded to each batch's longest window (a multiple of 8); the last batch is filled up with
    empty windows so that every batch has the same row count."""
    order = np.argsort(lengths, kind="stable") if sort_by_length else np.arange(len(lengths))
    batches = []
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        width = ids.shape[1]
        if sort_by_length:
            width = min(ids.shape[1], -(-int(lengths[rows].max()) // 8) * 8)
        block = np.zeros((batch, width), np.int64)
        seg = np.zeros((batch, width), np.int64)
        mask = np.zeros((batch, width), np.int64)
        block[:len(rows)] = ids[rows, :width]
        seg[:len(rows)] = segments[rows, :width]
        mask[:len(rows)] = np.arange(width)[None, :] < lengths[rows][:, None]
        batches.append(tuple(torch.from_numpy(a).cuda() for a in (block, seg, mask)))
    return batches


def time_all(run, batches):
    """Seconds to run every batch once (after one untimed pass), and the per-batch mean in ms."""
    for inputs in batches[:3]:
        run(*inputs)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for inputs in batches:
        run(*inputs)
    end.record()
    end.synchronize()
    seconds = start.elapsed_time(end) / 1000
    return seconds, 1000 * seconds / len(batches)


def random_input_rows(model, model_name, sequences, batches, iterations, warm_up, graphs):
    """perf.py's workload: random token ids, all-ones masks, each sequence x batch, eager and (with
    `graphs`) as a CUDA graph."""
    rows = []
    for sequence in sequences:
        for batch in batches:
            for graph in ([False, True] if graphs else [False]):
                row = benchmark(model, batch, sequence, iterations, warm_up, graph)
                rows.append(row)
                print(f"torch {model_name} fp16 seq {sequence} batch {batch} {'graph' if graph else 'eager'}: "
                      f"{row['mean_ms']:.3f} ms mean, {row['p99_ms']:.3f} ms p99, "
                      f"{row['throughput_seq_per_s']:.1f} seq/s", flush=True)
    return rows


def squad_rows(model, model_name, squad_json, vocab_file, batch, sequence, compile_too):
    """The rows of --squad: every window of the file, run in each of the modes of the docstring."""
    ids, segments, lengths = squad_windows(squad_json, vocab_file, sequence)

    def eager(i, s, m):
        with torch.inference_mode():
            return model(input_ids=i, token_type_ids=s, attention_mask=m)

    def graphed(batches):
        static = [t.clone() for t in batches[0]]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                eager(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            eager(*static)

        def run(i, s, m):  # the copies into the graph's inputs are part of each run
            for dst, src in zip(static, (i, s, m)):
                dst.copy_(src)
            graph.replay()
        return run

    padded = squad_batches(ids, segments, lengths, batch, sort_by_length=False)
    runs = [("padded, eager", eager, padded), ("padded, CUDA graph", graphed(padded), padded),
            ("sorted by length, eager", eager, squad_batches(ids, segments, lengths, batch, sort_by_length=True))]
    if compile_too:
        compiled = torch.compile(model, mode="max-autotune")

        def run_compiled(i, s, m):
            with torch.inference_mode():
                return compiled(input_ids=i, token_type_ids=s, attention_mask=m)
        runs.append(("padded, torch.compile max-autotune", run_compiled, padded))
    rows = []
    for name, run, batches in runs:
        seconds, per_batch = time_all(run, batches)
        rows.append({"mode": name, "windows": int(len(lengths)), "batch": batch, "sequence": int(ids.shape[1]),
                     "seconds": seconds, "mean_batch_ms": per_batch, "windows_per_s": len(lengths) / seconds,
                     "real_tokens": int(lengths.sum())})
        print(f"torch {model_name} fp16 SQuAD windows, {name}: {len(lengths)} windows in {seconds:.3f} s, "
              f"{len(lengths) / seconds:.1f} windows/s ({per_batch:.3f} ms a batch of {batch})", flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--model", choices=sorted(SHAPES), default="base", help="BERT shape, random weights")
    p.add_argument("-b", "--batch-size", type=int, action="append", help="batch size; repeatable (default: 1)")
    p.add_argument("-s", "--sequence-length", type=int, action="append",
                   help="sequence length; repeatable (default: 128)")
    p.add_argument("-i", "--iterations", type=int, default=50, help="timed iterations per row")
    p.add_argument("-w", "--warm-up-runs", type=int, default=5, help="untimed runs before timing")
    p.add_argument("--no-graph", action="store_true", help="eager only")
    p.add_argument("--json", help="write the rows here (default: print them only)")
    p.add_argument("--squad", metavar="SQUAD_JSON", help="time this file's real windows instead (needs -v)")
    p.add_argument("-v", "--vocab-file", help="with --squad: the vocab.txt to make the windows with")
    p.add_argument("--compile", action="store_true", help="with --squad: also torch.compile(mode='max-autotune')")
    args = p.parse_args(argv)
    try:
        for flag, values, minimum in (("-b/--batch-size", args.batch_size or [], 1),
                                      ("-s/--sequence-length", args.sequence_length or [], 1),
                                      ("-i/--iterations", [args.iterations], 1),
                                      ("-w/--warm-up-runs", [args.warm_up_runs], 0)):
            for value in values:
                check_range(flag, value, minimum=minimum)
        if args.json:
            check_writable(args.json, "--json file")
        if args.squad and not args.vocab_file:
            raise BertTrtError("--squad needs the vocabulary to make the windows with: pass -v vocab.txt")
        if args.squad and (len(args.batch_size or [1]) > 1 or len(args.sequence_length or [384]) > 1):
            raise BertTrtError("--squad takes one -b and one -s")
    except BertTrtError as e:
        print(f"pytorch_perf.py: error: {e}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("pytorch_perf.py: error: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 2
    model = make_model(args.model)
    if args.squad:
        rows = squad_rows(model, args.model, args.squad, args.vocab_file, (args.batch_size or [128])[0],
                          (args.sequence_length or [384])[0], args.compile)
    else:
        rows = random_input_rows(model, args.model, args.sequence_length or [128], args.batch_size or [1],
                                 args.iterations, args.warm_up_runs, graphs=not args.no_graph)
    del model
    torch.cuda.empty_cache()
    rate = gemm_tflops()
    print(f"dense fp16 GEMM 8192^3: {rate:.1f} TFLOP/s")
    if args.json:
        report = {"model": args.model, "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
                  "gemm_fp16_tflops": rate, "rows": rows}
        write_json_atomically(args.json, report)
    return 0


if __name__ == "__main__":
    run_main("pytorch_perf.py", main)
