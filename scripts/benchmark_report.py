#!/usr/bin/env python3
"""Merge perf.py and pytorch_perf.py results into one CSV, a Markdown table and a plot.

Each engine row gets the PyTorch time of the same model, batch and sequence length measured in
the same run (the better of eager and CUDA graph), the ratio, and the fraction of the dense fp16
matrix-product rate that the engine's matrix products reach:

    FLOPs = batch x (L x (24 S H^2 + 4 S^2 H) + 4 S H)       (matrix products and the QA head)

    python scripts/benchmark_report.py results/*.perf.json results/*.torch.json -o results/benchmark
    (a .json.gz input is read through gzip)
"""
import argparse
import csv
import gzip
import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.errors import BertTrtError, run_main  # noqa: E402
from helpers.files import check_writable, write_atomically  # noqa: E402


def bert_flops(model, batch, sequence):
    layers, hidden = model["num_hidden_layers"], model["hidden_size"]
    per_layer = 24 * sequence * hidden ** 2 + 4 * sequence ** 2 * hidden
    return batch * (layers * per_layer + 4 * sequence * hidden)


def model_name(model):
    return {768: "base", 1024: "large"}.get(model.get("hidden_size"), f"h{model.get('hidden_size')}")


def build_label(options, model):
    """How an engine was built, where that changes what it runs: builder.py flags and the GELU form."""
    flags = []
    if options.get("tactic_sources"):
        flags.append("--tactic-sources " + ",".join(s.lower() for s in options["tactic_sources"]))
    if options.get("optimization_level") is not None:
        flags.append(f"--optimization-level {options['optimization_level']}")
    flags += [flag for key, flag in (("strict", "-t"), ("int8_skipln", "-iln"), ("int8_multihead", "-imh"),
                                     ("force_fc2_gemm", "-g"), ("conv_projections", "--conv-projections"),
                                     ("matmul_projections", "--no-conv-projections"),
                                     ("calib_qkv_max", "--calib-qkv-max"), ("varseqlen", "--varseqlen"))
              if options.get(key)]
    if options.get("fp16_projections"):
        flags.append("--fp16-projections " + ",".join(options["fp16_projections"]))
    if options.get("attention") == "layers":
        flags.append("--attention layers")
    if options.get("conv_projections") is False and not options.get("matmul_projections"):  # newer records
        flags.append("--no-conv-projections")
    if options.get("quantization") == "explicit":
        flags.append("--quantization explicit")
    if options.get("strongly_typed"):
        flags.append("--strongly-typed")
    if options.get("gelu_plugin") is False:
        flags.append("--no-gelu-plugin")
    if model.get("gelu") == "tanh":
        flags.append("tanh GELU")
    return " ".join(flags)


def load(paths):
    """Engine and PyTorch reports; a name ending in .gz is read through gzip (the kept results with
    per-layer profiles are stored that way)."""
    engines, torch_runs = [], []
    for path in paths:
        try:
            with (gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)) as f:
                report = json.load(f)
        except (OSError, ValueError) as e:  # missing, not gzip, not JSON: say which file
            raise ValueError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from e
        (torch_runs if "torch" in report else engines).append(report)
    return engines, torch_runs


def merge(engines, torch_runs):
    best_torch, gemm = {}, None
    for run in torch_runs:
        gemm = max(gemm or 0.0, run["gemm_fp16_tflops"])
        for row in run["rows"]:
            key = (run["model"], row["batch"], row["sequence"])
            best_torch[key] = min(best_torch.get(key, float("inf")), row["mean_ms"])
    rows = []
    for report in engines:
        name = model_name(report["model"])
        for r in report["rows"]:
            flops = bert_flops(report["model"], r["batch"], r["sequence"])
            torch_ms = best_torch.get((name, r["batch"], r["sequence"]))
            tflops = flops / (r["mean_ms"] / 1000) / 1e12
            rows.append({
                "model": name, "precision": report["precision"],
                "build": build_label(report.get("build_options", {}), report["model"]),
                "sequence": r["sequence"], "batch": r["batch"],
                "cuda_graph": r["cuda_graph"], "mean_ms": r["mean_ms"], "p95_ms": r["p95_ms"], "p99_ms": r["p99_ms"],
                "with_copies_ms": r["with_copies_mean_ms"], "throughput_seq_per_s": r["throughput_seq_per_s"],
                "tflops": tflops, "fraction_of_fp16_gemm": tflops / gemm if gemm else None,
                "torch_fp16_ms": torch_ms, "speedup_vs_torch": torch_ms / r["mean_ms"] if torch_ms else None,
                "gpu": report["gpu"], "tensorrt": report["tensorrt"]})
    return rows, gemm


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(rows, gemm):
    lines = [f"Random weights. Dense fp16 GEMM rate measured in the same run: {fmt(gemm, 0)} TFLOP/s. "
             "PyTorch: the better of eager and CUDA graph.", "",
             "| model | precision | build | seq | batch | graph | mean ms | p95 ms | p99 ms | with copies ms "
             "| seq/s | TFLOP/s | of GEMM rate | PyTorch fp16 ms | TensorRT vs PyTorch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["model"], r["precision"], r["build"], r["sequence"], r["batch"],
                                         r["cuda_graph"])):
        frac = r["fraction_of_fp16_gemm"]
        speedup = "-" if r["speedup_vs_torch"] is None else f"{r['speedup_vs_torch']:.2f}x"
        lines.append(f"| {r['model']} | {r['precision']} | {r['build'] or '-'} | {r['sequence']} | "
                     f"{r['batch']} | {'yes' if r['cuda_graph'] else 'no'} | {fmt(r['mean_ms'], 3)} | "
                     f"{fmt(r['p95_ms'], 3)} | {fmt(r['p99_ms'], 3)} | {fmt(r['with_copies_ms'], 3)} | "
                     f"{fmt(r['throughput_seq_per_s'], 0)} | "
                     f"{fmt(r['tflops'], 0)} | {'-' if frac is None else f'{frac:.0%}'} | "
                     f"{fmt(r['torch_fp16_ms'], 3)} | {speedup} |")
    return "\n".join(lines) + "\n"


def engine_label(row):
    return " ".join(filter(None, (row["precision"], row["build"], "graph" if row["cuda_graph"] else "")))


def plot(rows, path):
    """Latency and throughput against batch size; engines timed at one batch each (variants of one
    workload) get bars instead, one panel per model, sequence and batch. Returns the panel titles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {(r["model"], r["precision"], r["build"], r["sequence"], r["cuda_graph"]) for r in rows}
    if len(series) == len(rows):
        fig, titles = plot_bars(plt, rows)
    else:
        fig, titles = plot_lines(plt, rows)
    gpu = rows[0]["gpu"] if rows else ""
    fig.suptitle(f"BERT-QA TensorRT {rows[0]['tensorrt'] if rows else ''} on {gpu} (random weights)")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)
    return titles


def plot_bars(plt, rows):
    panels = sorted({(r["model"], r["sequence"], r["batch"]) for r in rows})
    bars = {panel: sorted((r for r in rows if (r["model"], r["sequence"], r["batch"]) == panel),
                          key=lambda r: -r["mean_ms"]) for panel in panels}
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(11, 1.2 + 0.32 * sum(len(b) + 1 for b in bars.values())),
                             gridspec_kw={"height_ratios": [len(b) + 1 for b in bars.values()]})
    titles = []
    for axis, panel in zip(axes[:, 0], panels):
        labels = [engine_label(r) for r in bars[panel]]
        values = [r["mean_ms"] for r in bars[panel]]
        colors = ["tab:blue"] * len(values)
        torch_ms = bars[panel][0]["torch_fp16_ms"]
        if torch_ms:
            labels, values, colors = ["PyTorch fp16 (best of eager, graph)"] + labels, [torch_ms] + values, \
                ["tab:gray"] + colors
        axis.barh(range(len(values)), values, color=colors)
        axis.set_yticks(range(len(values)), labels, fontsize=8)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.3f}", va="center", fontsize=8)
        axis.set_xlim(0, max(values) * 1.15)
        titles.append(f"{panel[0]} S={panel[1]} batch {panel[2]}: mean ms (CUDA events)")
        axis.set_title(titles[-1], fontsize=10)
    return fig, titles


def plot_lines(plt, rows):
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(19, 5.5))
    groups = sorted({(r["model"], r["precision"], r["build"], r["sequence"]) for r in rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, group in enumerate(groups):
        for graph, style in ((False, "-"), (True, "--")):  # solid: launched from Python; dashed: CUDA graph
            points = sorted((r["batch"], r["mean_ms"], r["throughput_seq_per_s"]) for r in rows
                            if (r["model"], r["precision"], r["build"], r["sequence"]) == group
                            and r["cuda_graph"] == graph)
            if not points:
                continue
            label = " ".join(filter(None, (group[0], group[1], group[2], f"S={group[3]}", "graph" if graph else "")))
            for axis, column in ((latency, 1), (throughput, 2)):
                axis.plot([p[0] for p in points], [p[column] for p in points], style, marker="o",
                          color=colors[i % len(colors)], label=label)
    for axis, title in ((latency, "latency (ms, mean)"), (throughput, "throughput (sequences/s)")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    # beside the panels, not over them: a sweep draws a dozen lines with long build labels
    throughput.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig, ["latency (ms, mean)", "throughput (sequences/s)"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="JSON files from perf.py --json and pytorch_perf.py --json")
    p.add_argument("-o", "--output", required=True, help="output prefix: writes PREFIX.csv, PREFIX.md, PREFIX.png")
    args = p.parse_args(argv)
    try:
        for suffix in (".csv", ".md", ".png"):
            check_writable(args.output + suffix)
        engines, torch_runs = load(args.results)
    except (BertTrtError, OSError, ValueError, KeyError) as e:
        print(f"benchmark_report.py: error: {e}", file=sys.stderr)
        return 2
    rows, gemm = merge(engines, torch_runs)
    if not rows:
        print("benchmark_report.py: error: no perf.py results among the inputs", file=sys.stderr)
        return 2
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(args.output + ".csv", table.getvalue())
    write_atomically(args.output + ".md", markdown(rows, gemm))
    print(markdown(rows, gemm))
    try:
        plot(rows, args.output + ".png")
    except ImportError:
        print(f"benchmark_report.py: error: wrote {args.output}.csv and .md but no plot: matplotlib is not "
              f"installed; pip install -r requirements.txt, then rerun this command", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_main("benchmark_report.py", main)
