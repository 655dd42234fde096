"""scripts/squad_report.py: the table and plot of perf.py --squad runs, on real perf.py --squad output
(an engine stand-in on the CPU) and a PyTorch file in pytorch_perf.py's format."""
import json

import pytest

from conftest import TF_MODEL, require, write_small_squad
from test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def squad_runs(tmp_path_factory):
    """Two perf.py --squad results: stand-ins of 1 and 20 ms a batch on 16 dev questions."""
    vocab = require(TF_MODEL / "vocab.txt")
    folder = tmp_path_factory.mktemp("squad_report")
    squad = write_small_squad(folder / "small.json")
    paths = {}
    for ms in (1, 20):
        paths[ms] = folder / f"stand-in-{ms}.json"
        result = run("perf.py", "--squad", squad, "-v", vocab, "--stand-in", ms, "-b", 4,
                     "-s", 384, "--jobs", 1, "--json", paths[ms])
        assert result.returncode == 0, result.stderr
    torch = folder / "torch.json"
    torch.write_text(json.dumps({"model": "large", "torch": "2.13.0", "rows": [
        {"mode": "padded, eager", "windows": 18, "windows_per_s": 1234.5},
        {"mode": "sorted by length, eager", "windows": 18, "windows_per_s": 2345.6}]}))
    return folder, paths, torch


def table_rows(markdown):
    """{first cell: cells} of each row of the Markdown tables."""
    rows = ([c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("| "))
    return {cells[0]: cells for cells in rows}


def test_table_and_plot_from_perf_squad_results(squad_runs):
    folder, paths, torch = squad_runs
    result = run("scripts/squad_report.py", f"fast={paths[1]}", paths[20], "--pytorch", torch,
                 "--line", "MLPerf v4.1 H200=9164", "-o", folder / "report")
    assert result.returncode == 0, result.stderr
    markdown = (folder / "report.md").read_text()
    rows = table_rows(markdown)
    for label, ms in (("fast", 1), ("stand-in-20", 20)):
        squad = json.loads(paths[ms].read_text())["squad"]
        cells = rows[label]
        assert cells[1] == f"engine stand-in, {ms} ms per batch"
        assert cells[3] == f"{squad['windows_per_s']:,.0f}"
        assert cells[5] == f"{squad['engine_windows_per_s']:,.0f}"
        assert cells[6] == f"{squad['engine_s'] / squad['end_to_end_s']:.0%}"
        assert cells[9] == f"{squad['padding_fraction']:.1%}"
    assert rows["PyTorch 2.13.0 fp16, sorted by length, eager"][5] == "2,346"
    assert rows["MLPerf v4.1 H200"][3] == "9,164"
    assert (folder / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stdout == markdown


def test_bad_inputs_are_one_line_and_write_nothing(squad_runs, tmp_path):
    folder, paths, torch = squad_runs
    not_squad = tmp_path / "perf.json"
    not_squad.write_text(json.dumps({"rows": [{"mean_ms": 1.0}]}))  # perf.py without --squad
    out = tmp_path / "report"
    cases = [
        ([not_squad, "-o", out], ["is not a perf.py --squad --json result", str(not_squad)]),
        ([tmp_path / "absent.json", "-o", out], ["not found"]),
        ([paths[1], "--pytorch", paths[1], "-o", out], ["is not a pytorch_perf.py --squad --json result"]),
        ([paths[1], "--line", "MLPerf", "-o", out], ["LABEL=WINDOWS_PER_S"]),
        ([paths[1], "--line", "MLPerf=-3", "-o", out], ["LABEL=WINDOWS_PER_S"]),
        ([paths[1], "-o", tmp_path / "missing" / "report"], ["does not exist"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(run("scripts/squad_report.py", *args), *fragments)
    assert not list(tmp_path.glob("report*"))
