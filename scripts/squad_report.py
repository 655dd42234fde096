#!/usr/bin/env python3
"""A table and a plot of SQuAD end-to-end runs: windows/s per engine beside PyTorch and reference lines.

Each input is a perf.py --squad --json file (two bars: end to end and engine alone, on the same
windows), named LABEL=FILE or else by its file name; --pytorch adds a scripts/pytorch_perf.py --squad
--json file (one bar per mode); --line draws a reference throughput, such as a published result:

    python scripts/squad_report.py int8=int8.json fp16=fp16.json --pytorch torch.json \\
        --line "MLPerf v4.1 BERT-99 offline, H200=9164" -o results/mine/squad
    writes PREFIX.md (the table) and PREFIX.png (the plot)
"""
import argparse
import importlib.util
import json
import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.cli import HelpFormatter  # noqa: E402
from helpers.errors import BertTrtError, run_main  # noqa: E402
from helpers.files import check_writable, write_atomically  # noqa: E402


class ReportError(BertTrtError, ValueError):
    """An input that is not what this report reads; the message names the file and the fix."""


@dataclass(frozen=True)
class Run:
    """One perf.py --squad row under its label."""
    label: str
    row: dict


@dataclass(frozen=True)
class Line:
    label: str
    windows_per_s: float


def split_label(item):
    """(label, path) of LABEL=FILE or FILE (labelled by its name without .json)."""
    label, sep, path = item.rpartition("=")
    if not sep:
        return Path(item).name.removesuffix(".json"), item
    return label, path


def read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{what} {path} not found") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{what} {path} is not JSON ({error.msg} at line {error.lineno}); give the file "
                          f"that --json wrote") from None


SQUAD_KEYS = ("windows", "questions", "batch", "end_to_end_s", "engine_s", "host_s", "read_s",
              "windows_per_s", "questions_per_s", "engine_windows_per_s", "padding_fraction", "model")


def load_run(item):
    label, path = split_label(item)
    data = read_json(path, "perf.py --squad result")
    row = data.get("squad") if isinstance(data, dict) else None
    if not isinstance(row, dict) or any(key not in row for key in SQUAD_KEYS):
        raise ReportError(f"{path} is not a perf.py --squad --json result (no 'squad' row with "
                          f"{', '.join(SQUAD_KEYS)}); write one with perf.py --squad FILE --json {path}")
    return Run(label, row)


def load_pytorch(path):
    """The PyTorch bars: (label, windows/s) for each mode of a pytorch_perf.py --squad file."""
    data = read_json(path, "pytorch_perf.py --squad result")
    rows = data.get("rows") if isinstance(data, dict) else None
    if not rows or any(not isinstance(r, dict) or "mode" not in r or "windows_per_s" not in r for r in rows):
        raise ReportError(f"{path} is not a pytorch_perf.py --squad --json result (no rows with 'mode' and "
                          f"'windows_per_s'); write one with scripts/pytorch_perf.py --squad FILE --json {path}")
    return [(f"PyTorch {data.get('torch', '')} fp16, {r['mode']}".replace("  ", " "), r["windows_per_s"])
            for r in rows]


def parse_line(text):
    label, sep, value = text.rpartition("=")
    try:
        windows_per_s = float(value)
    except ValueError:
        windows_per_s = None
    if not sep or not label or windows_per_s is None or not windows_per_s > 0:
        raise ReportError(f"--line {text!r}: give LABEL=WINDOWS_PER_S, a positive number, e.g. "
                          f"\"MLPerf v4.1 H200=9164\"")
    return Line(label, windows_per_s)


def engine_description(model):
    """perf.py's "PATH: precision, TensorRT X, GPU" with the engine's file name for its path."""
    path, sep, rest = model.partition(": ")
    return f"{Path(path).name}: {rest}" if sep else model


def markdown(runs, pytorch, lines):
    out = ["| run | engine | batch | end to end windows/s | questions/s | engine alone windows/s | "
           "end to end / engine alone | JSON read s | host alone s | padding |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        r = run.row
        out.append(f"| {run.label} | {engine_description(r['model'])} | {r['batch']} | {r['windows_per_s']:,.0f} | "
                   f"{r['questions_per_s']:,.0f} | {r['engine_windows_per_s']:,.0f} | "
                   f"{r['engine_s'] / r['end_to_end_s']:.0%} | {r['read_s']:.2f} | {r['host_s']:.2f} | "
                   f"{r['padding_fraction']:.1%} |")
    for label, windows_per_s in pytorch:
        out.append(f"| {label} | inputs on the GPU, no host pipeline | | | | {windows_per_s:,.0f} | | | | |")
    for line in lines:
        out.append(f"| {line.label} | reference | | {line.windows_per_s:,.0f} | | | | | | |")
    windows = {r.row["windows"] for r in runs}
    out.append("")
    out.append(f"Windows: {', '.join(f'{w:,}' for w in sorted(windows))}; end to end includes reading the JSON; "
               f"engine alone runs the same batches from features made beforehand.")
    return "\n".join(out) + "\n"


def plot(runs, pytorch, lines, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = []
    for run in runs:  # one run's two bars side by side: end to end, then its engine alone
        bars.append((f"{run.label}: end to end", run.row["windows_per_s"], "tab:blue"))
        bars.append((f"{run.label}: engine alone", run.row["engine_windows_per_s"], "tab:cyan"))
    bars += [(label, value, "tab:gray") for label, value in pytorch]
    fig, axis = plt.subplots(figsize=(11, 1.6 + 0.34 * len(bars)))
    y = list(range(len(bars)))[::-1]
    axis.barh(y, [b[1] for b in bars], color=[b[2] for b in bars])
    axis.set_yticks(y, [b[0] for b in bars], fontsize=8)
    for position, (_, value, _) in zip(y, bars):
        axis.text(value, position, f" {value:,.0f}", va="center", fontsize=8)
    top = max([b[1] for b in bars] + [line.windows_per_s for line in lines])
    for line in lines:
        axis.axvline(line.windows_per_s, color="tab:red", linestyle="--")
        axis.text(line.windows_per_s, len(bars) - 0.4, f"{line.label}: {line.windows_per_s:,.0f} ",
                  color="tab:red", fontsize=8, va="bottom", ha="right")
    axis.set_xlim(0, top * 1.2)
    axis.set_ylim(-0.6, len(bars) + 0.4)
    axis.set_xlabel("SQuAD windows per second")
    axis.set_title(textwrap.fill(title, 90), fontsize=10)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter, epilog=__doc__)
    p.add_argument("runs", nargs="+", metavar="[LABEL=]FILE", help="perf.py --squad --json files")
    p.add_argument("--pytorch", metavar="FILE", help="a scripts/pytorch_perf.py --squad --json file")
    p.add_argument("--line", action="append", default=[], metavar="LABEL=WINDOWS_PER_S",
                   help="a reference throughput drawn as a line; repeatable")
    p.add_argument("--title", default="SQuAD v1.1 dev end to end", help="the plot's title")
    p.add_argument("-o", "--output", required=True, help="output prefix: writes PREFIX.md and PREFIX.png")
    args = p.parse_args(argv)
    for suffix in (".md", ".png"):
        check_writable(args.output + suffix)
    lines = [parse_line(text) for text in args.line]
    runs = [load_run(item) for item in args.runs]
    pytorch = load_pytorch(args.pytorch) if args.pytorch else []
    table = markdown(runs, pytorch, lines)
    if importlib.util.find_spec("matplotlib") is None:  # before writing anything: the table and plot come together
        raise ReportError("matplotlib is not installed; pip install -r requirements.txt, then rerun")
    write_atomically(args.output + ".md", table)
    plot(runs, pytorch, lines, args.output + ".png", args.title)
    print(table, end="")
    return 0


if __name__ == "__main__":
    run_main("squad_report.py", main)
