"""The three front ends on the CPU: their answers, and their one-line errors on bad input."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import REPO


def run(script, *args, stdin=None):
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, input=stdin, timeout=900)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tensorrt_importable():
    try:
        import tensorrt  # noqa: F401
        return True
    except ImportError:
        return False


PASSAGE = ("Super Bowl 50 was an American football game to determine the champion of the National "
           "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion "
           "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24-10 "
           "to earn their third Super Bowl title.")


def test_inference_answers_with_the_numpy_model(tf_model):
    result = run("inference.py", "-m", tf_model / "model.ckpt-4149", "-s", 128, "-p", PASSAGE,
                 "-q", "Which NFL team represented the AFC at Super Bowl 50?", "Who did the Broncos defeat?")
    assert result.returncode == 0, result.stderr
    answers = [line for line in result.stdout.splitlines() if line.startswith("Answer:")]
    assert answers == ["Answer: 'Denver Broncos'", "Answer: 'Carolina Panthers'"]


def test_inference_interactive_loop(hf_model):
    result = run("inference.py", "-m", hf_model, "-s", 128, "-p", PASSAGE,
                 stdin="Which NFL team represented the AFC at Super Bowl 50?\nexit\n")
    assert result.returncode == 0, result.stderr
    assert "Answer: 'Denver Broncos'" in result.stdout


@pytest.mark.slow
def test_squad_predictions_agree_with_the_reference_run(tf_model, dev_v11, tmp_path):
    """The first 300 dev questions through inference.py -sq give the answers of the model's own
    PyTorch reference run (../shared/models/.../reference_predictions_fp32.json)."""
    data = json.loads(dev_v11.read_text())
    kept, count = [], 0
    for article in data["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = paragraph["qas"][:max(0, 300 - count)]
            count += len(qas)
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            kept.append({**article, "paragraphs": paragraphs})
    subset = tmp_path / "dev300.json"
    subset.write_text(json.dumps({"version": "1.1", "data": kept}))
    out = tmp_path / "predictions.json"
    result = run("inference.py", "-m", tf_model / "model.ckpt-4149", "-s", 384, "-b", 16, "-sq", subset,
                 "-o", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(out.read_text())
    reference = json.loads((tf_model / "reference_predictions_fp32.json").read_text())
    assert len(predictions) == 300
    same = sum(predictions[q] == reference[q] for q in predictions)
    print(f"{same}/300 answers equal to the reference run")
    assert same >= 297


def test_builder_exports_weights_without_tensorrt(hf_model, tmp_path):
    from helpers.weights import load_weights

    out = tmp_path / "w.npz"
    result = run("builder.py", "-m", hf_model, "-o", out, "--export-weights", "--export-fp16")
    assert result.returncode == 0, result.stderr
    config, weights = load_weights(out)
    _, original = load_weights(hf_model)
    assert config.num_attention_heads == 6
    assert all(np.array_equal(weights[k], original[k]) for k in original)


@pytest.mark.skipif(tensorrt_importable(), reason="checks the message given when TensorRT is missing")
def test_builder_without_tensorrt_says_so(hf_model, tmp_path):
    result = run("builder.py", "-m", hf_model, "-o", tmp_path / "x.engine")
    assert_one_line_error(result, "TensorRT")
    assert not (tmp_path / "x.engine").exists()


def test_builder_bad_input(hf_model, tmp_path):
    assert_one_line_error(run("builder.py", "-m", tmp_path / "missing", "-o", tmp_path / "x.engine"), "missing")
    assert_one_line_error(run("builder.py", "-m", hf_model, "-o", tmp_path / "x.engine", "--int8"),
                          "--int8 needs calibration data")
    assert_one_line_error(run("builder.py", "-m", hf_model, "-o", tmp_path / "x.engine", "-s", 1024),
                          "position embeddings")
    short_vocab = tmp_path / "vocab.txt"
    short_vocab.write_text("\n".join((hf_model / "vocab.txt").read_text().splitlines()[:1000]) + "\n")
    assert_one_line_error(run("builder.py", "-m", hf_model, "-o", tmp_path / "x.engine", "-v", short_vocab),
                          "vocab.txt has 1000 tokens but the model has 30522")
    assert not list(tmp_path.glob("x.engine*"))


def test_inference_bad_input(hf_model, tmp_path):
    out = tmp_path / "p.json"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_error(run("inference.py", "-m", hf_model, "-sq", bad, "-o", out), "bad.json")
    assert not out.exists()
    assert_one_line_error(run("inference.py", "-m", hf_model, "-p", "   ", "-q", "why?"), "passage is empty")
    assert_one_line_error(run("inference.py", "-m", hf_model, "-s", 8, "-p", PASSAGE,
                              "-q", "which team represented the conference at the game?"),
                          "max_seq_length")
    assert_one_line_error(run("inference.py", "-e", tmp_path / "none.engine", "-v", hf_model / "vocab.txt",
                              "-p", PASSAGE, "-q", "who?"))
    short_vocab = tmp_path / "vocab.txt"
    short_vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    assert_one_line_error(run("inference.py", "-m", hf_model, "-v", short_vocab, "-p", PASSAGE, "-q", "who?"),
                          "vocab.txt has 5 tokens")


def test_perf_bad_engine(tmp_path):
    assert_one_line_error(run("perf.py", "-e", tmp_path / "none.engine"))


def test_perf_engine_that_cannot_be_captured_as_a_cuda_graph(monkeypatch):
    """TensorRT 8.6 refuses to run some engines inside a stream capture: say so and what to do."""
    import helpers.cuda_graph
    import perf
    from helpers.trt_common import TensorRTError

    class CapturingGraph:  # what CudaGraph does with the enqueue call, minus the CUDA driver
        def __init__(self, stream, enqueue):
            enqueue()

    class Binding:
        def execute_async(self):
            raise TensorRTError("TensorRT failed to run the engine (execute_async_v3 returned False)")

    monkeypatch.setattr(helpers.cuda_graph, "CudaGraph", CapturingGraph)
    with pytest.raises(TensorRTError) as e:
        perf.graph_replay(types.SimpleNamespace(stream=None), Binding())
    assert "captured as a CUDA graph" in str(e.value) and "without --cuda-graph" in str(e.value)
    assert "\n" not in str(e.value)


def test_notebook_runs_headless_on_the_cpu(tf_model, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "inference.ipynb", as_version=4)
    env_cell = nbformat.v4.new_code_cell(
        "import os\n"
        f"os.environ['BERT_CHECKPOINT'] = {str(tf_model / 'model.ckpt-4149')!r}\n"
        f"os.environ['BERT_VOCAB'] = {str(tf_model / 'vocab.txt')!r}")
    notebook.cells.insert(0, env_cell)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "numpy reference model on the CPU" in printed
    assert printed.count("A: ") == 4
    assert "low latency and" in printed  # "What does TensorRT deliver?"


def test_long_question_is_cut_with_a_one_line_warning(hf_model):
    result = run("inference.py", "-m", hf_model, "-s", 64, "--max-query-length", 8, "-p", PASSAGE,
                 "-q", "which team from the american football conference played in super bowl fifty?")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "inference.py: warning: question question-0 has 13 tokens; using its first 8 (max_query_length)"]
    assert "Answer: '" in result.stdout


def test_prompted_questions_skip_empty_lines_and_end_at_exit_or_end_of_input(monkeypatch):
    from helpers.cli import prompted_questions
    typed = iter(["", "  Who?  ", "What?", "QUIT", "never asked"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(typed))
    assert list(prompted_questions()) == ["Who?", "What?"]

    def end_of_input(prompt):
        raise EOFError
    monkeypatch.setattr("builtins.input", end_of_input)
    assert list(prompted_questions()) == []
