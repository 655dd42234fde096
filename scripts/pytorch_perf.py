#!/usr/bin/env python3
"""The same BERT-QA workload in PyTorch, timed the way perf.py times an engine, plus the GPU's
dense fp16 matrix-product rate: the two references of the performance tables.

Hugging Face BertForQuestionAnswering, random weights, fp16, SDPA attention; eager and replayed
as a CUDA graph. Inputs live on the GPU; each iteration is timed with CUDA events.

    python scripts/pytorch_perf.py --model large -s 384 -b 1 -b 128 --json torch.json
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
    except BertTrtError as e:
        print(f"pytorch_perf.py: error: {e}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("pytorch_perf.py: error: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 2
    model = make_model(args.model)
    rows = []
    for sequence in args.sequence_length or [128]:
        for batch in args.batch_size or [1]:
            for graph in ([False] if args.no_graph else [False, True]):
                row = benchmark(model, batch, sequence, args.iterations, args.warm_up_runs, graph)
                rows.append(row)
                print(f"torch {args.model} fp16 seq {sequence} batch {batch} {'graph' if graph else 'eager'}: "
                      f"{row['mean_ms']:.3f} ms mean, {row['p99_ms']:.3f} ms p99, "
                      f"{row['throughput_seq_per_s']:.1f} seq/s", flush=True)
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
