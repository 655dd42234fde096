"""scripts/benchmark_report.py: the FLOP count behind the "fraction of the GEMM rate" column, and
the merge of engine and PyTorch timings."""
import gzip
import importlib.util
import json
import sys

import pytest

from conftest import REPO
from helpers.weights import BERT_BASE, BERT_LARGE, expected_shapes


def load_report_module():
    spec = importlib.util.spec_from_file_location("benchmark_report", REPO / "scripts" / "benchmark_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flops_from_weight_shapes(config, batch, sequence):
    """2 x rows x in x out for every kernel of the network, plus QK^T and PV per layer."""
    total = 0
    for name, shape in expected_shapes(config).items():
        if name.endswith(".kernel"):
            total += 2 * sequence * shape[0] * shape[1]
    total += config.num_hidden_layers * 2 * (2 * sequence * sequence * config.hidden_size)
    return batch * total


@pytest.mark.parametrize("config", [BERT_BASE, BERT_LARGE], ids=["base", "large"])
@pytest.mark.parametrize("batch,sequence", [(1, 128), (128, 384)])
def test_flop_count_matches_the_weight_shapes(config, batch, sequence):
    report = load_report_module()
    assert report.bert_flops(config.to_dict(), batch, sequence) == flops_from_weight_shapes(config, batch, sequence)


def write_results(folder):
    """One perf.py result (BERT-Base fp16, batch 8, seq 128) and one pytorch_perf.py result."""
    model = BERT_BASE.to_dict()
    engine = {"engine": "e", "gpu": "GPU", "tensorrt": "8.6.1", "precision": "fp16", "model": model,
              "rows": [{"batch": 8, "sequence": 128, "cuda_graph": False, "mean_ms": 2.0, "p95_ms": 2.1,
                        "p99_ms": 2.2, "with_copies_mean_ms": 2.5, "throughput_seq_per_s": 4000.0}]}
    torch_run = {"model": "base", "torch": "2.11", "gpu": "GPU", "gemm_fp16_tflops": 500.0,
                 "rows": [{"batch": 8, "sequence": 128, "cuda_graph": False, "mean_ms": 5.0},
                          {"batch": 8, "sequence": 128, "cuda_graph": True, "mean_ms": 3.0},
                          {"batch": 1, "sequence": 128, "cuda_graph": True, "mean_ms": 0.5}]}
    paths = []
    for i, content in enumerate((engine, torch_run)):
        paths.append(folder / f"{i}.json")
        paths[-1].write_text(json.dumps(content))
    return paths


def test_merge_compares_like_with_like(tmp_path):
    report = load_report_module()
    model = BERT_BASE.to_dict()
    paths = write_results(tmp_path)
    assert report.main([str(p) for p in paths] + ["-o", str(tmp_path / "bench")]) == 0
    rows, gemm = report.merge(*report.load(paths))
    (row,) = rows
    assert row["torch_fp16_ms"] == 3.0  # the better of eager and graph, same batch and sequence
    assert row["speedup_vs_torch"] == pytest.approx(1.5)
    tflops = report.bert_flops(model, 8, 128) / 2e-3 / 1e12
    assert row["tflops"] == pytest.approx(tflops)
    assert row["fraction_of_fp16_gemm"] == pytest.approx(tflops / 500.0)
    assert row["build"] == ""
    for suffix in (".csv", ".md", ".png"):
        assert (tmp_path / ("bench" + suffix)).stat().st_size > 0


def test_gzipped_results_read_as_the_plain_ones(tmp_path):
    report = load_report_module()
    paths = write_results(tmp_path)
    zipped = tmp_path / "0.perf.json.gz"
    with gzip.open(zipped, "wt") as f:
        f.write(paths[0].read_text())
    assert report.merge(*report.load([zipped, paths[1]])) == report.merge(*report.load(paths))


def test_without_matplotlib_the_tables_are_written_and_the_missing_plot_named(tmp_path, monkeypatch, capsys):
    report = load_report_module()
    paths = write_results(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert report.main([str(p) for p in paths] + ["-o", str(tmp_path / "bench")]) == 1
    assert capsys.readouterr().err == (
        f"benchmark_report.py: error: wrote {tmp_path}/bench.csv and .md but no plot: matplotlib is not "
        "installed; pip install -r requirements.txt, then rerun this command\n")
    assert (tmp_path / "bench.csv").stat().st_size > 0 and (tmp_path / "bench.md").stat().st_size > 0
    assert not (tmp_path / "bench.png").exists()


@pytest.mark.parametrize("options,gelu,label", [
    ({}, "erf", ""),
    ({"tactic_sources": [], "optimization_level": None, "strict": False, "gelu_plugin": True}, "erf", ""),
    ({"tactic_sources": ["CUBLAS_LT"]}, "erf", "--tactic-sources cublas_lt"),
    ({"optimization_level": 0}, "erf", "--optimization-level 0"),
    ({"strict": True, "int8_skipln": True, "int8_multihead": True}, "erf", "-t -iln -imh"),
    ({"conv_projections": True, "gelu_plugin": False}, "tanh", "--conv-projections --no-gelu-plugin tanh GELU"),
    ({"attention": "plugin"}, "erf", ""),
    ({"conv_projections": False, "quantization": "explicit", "strongly_typed": True}, "erf",
     "--no-conv-projections --quantization explicit --strongly-typed"),
    ({"quantization": "implicit", "strongly_typed": False}, "erf", ""),
    ({"attention": "layers"}, "erf", "--attention layers"),
    ({"strict": True, "fp16_projections": ["qkv"]}, "erf", "-t --fp16-projections qkv"),
    ({"strict": True, "calib_qkv_max": True}, "erf", "-t --calib-qkv-max"),
    ({"varseqlen": True, "gelu_plugin": False}, "tanh", "--varseqlen --no-gelu-plugin tanh GELU"),
    ({"varseqlen": True, "conv_projections": False, "matmul_projections": True}, "erf",
     "--no-conv-projections --varseqlen"),
])
def test_engines_are_told_apart_by_how_they_were_built(options, gelu, label):
    assert load_report_module().build_label(options, {"gelu": gelu}) == label


def report_row(model, build, sequence, batch, mean_ms, cuda_graph=False):
    return {"model": model, "precision": "fp16", "build": build, "sequence": sequence, "batch": batch,
            "cuda_graph": cuda_graph, "mean_ms": mean_ms, "throughput_seq_per_s": batch * 1000 / mean_ms,
            "torch_fp16_ms": 2 * mean_ms, "gpu": "GPU", "tensorrt": "8.6.1"}


def test_plot_draws_variants_of_one_workload_as_bars_and_sweeps_as_lines(tmp_path):
    report = load_report_module()
    variants = [report_row("large", build, 384, 128, ms, graph)
                for build, ms in (("", 68.5), ("--conv-projections", 69.2)) for graph in (False, True)]
    variants.append(report_row("large", "", 128, 1, 1.1))
    assert report.plot(variants, str(tmp_path / "variants.png")) == [
        "large S=128 batch 1: mean ms (CUDA events)", "large S=384 batch 128: mean ms (CUDA events)"]
    sweep = [report_row("base", "", 128, batch, 0.5 * batch) for batch in (1, 8, 32)]
    assert report.plot(sweep, str(tmp_path / "sweep.png")) == ["latency (ms, mean)", "throughput (sequences/s)"]
    assert (tmp_path / "variants.png").stat().st_size > 0 and (tmp_path / "sweep.png").stat().st_size > 0


@pytest.mark.parametrize("name,content,reason", [
    ("missing.json", None, "No such file or directory"),
    ("plain.json.gz", b"{}", "Not a gzipped file"),
    ("cut.json", b'{"rows": [', "Expecting value"),
])
def test_an_unreadable_input_is_named_in_one_line(tmp_path, capsys, name, content, reason):
    report = load_report_module()
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert report.main([str(path), "-o", str(tmp_path / "bench")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"benchmark_report.py: error: cannot read {path}: {reason}") and err.count("\n") == 1
    assert not (tmp_path / "bench.csv").exists()
