"""Bad input through the real command lines: one line on stderr naming the file or field, exit 2,
no traceback and no output file; warnings one line each; Ctrl-C exit 130 with nothing partial.

Every corrupt file is made here, in tmp_path, from the shared test models and SQuAD.
results/bad-input.md lists every input tried and how it ends.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import HF_MODEL, REPO, SQUAD_DIR, TF_MODEL, require

PY = sys.executable


def run(*args, stdin=None, timeout=300):
    return subprocess.run([PY, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          input=stdin, timeout=timeout)


def one_line(result, *fragments, status=2):
    """The single stderr line of a run that ended with `status`, checked to hold each fragment."""
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if os.environ.get("BAD_INPUT_LOG"):  # collects the lines listed in results/bad-input.md
        with open(os.environ["BAD_INPUT_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", ""),
                                  "args": [str(a) for a in result.args], "status": status,
                                  "line": lines[0]}) + "\n")
    return lines[0]


def no_files_but(folder, *names):
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def squad_slice(tmp_path, articles=1, paragraphs=2, questions=3, name="slice.json"):
    """The first questions of SQuAD v1.1 dev, as a small file to corrupt."""
    data = json.loads(require(SQUAD_DIR / "dev-v1.1.json").read_text(encoding="utf-8"))
    kept = [{**article, "paragraphs": [{**paragraph, "qas": paragraph["qas"][:questions]}
                                       for paragraph in article["paragraphs"][:paragraphs]]}
            for article in data["data"][:articles]]
    dataset = {"version": "1.1", "data": kept}
    path = tmp_path / name
    path.write_text(json.dumps(dataset), encoding="utf-8")
    return path, dataset


def hf_copy(tmp_path, name="hf"):
    folder = tmp_path / name
    shutil.copytree(require(HF_MODEL), folder)
    return folder


# ---------------------------------------------------------------- checkpoints and configs


CONFIG_TYPE_CASES = [
    ({"hidden_size": "384"}, "hidden_size must be a positive integer, got '384'"),
    ({"num_hidden_layers": 6.0}, "num_hidden_layers must be a positive integer, got 6.0"),
    ({"num_attention_heads": True}, "num_attention_heads must be a positive integer, got True"),
    ({"vocab_size": None}, "vocab_size must be a positive integer, got None"),
    ({"max_position_embeddings": -512}, "max_position_embeddings must be a positive integer"),
    ({"type_vocab_size": [2]}, "type_vocab_size must be a positive integer, got [2]"),
    ({"intermediate_size": 0}, "intermediate_size must be a positive integer, got 0"),
    ({"layer_norm_eps": "1e-12"}, "layer_norm_eps must be a positive number, got '1e-12'"),
    ({"layer_norm_eps": 0}, "layer_norm_eps must be a positive number, got 0"),
    ({"hidden_act": 5}, "hidden_act must be a string, got 5"),
    ({"position_embedding_type": ["absolute"]}, "position_embedding_type must be a string"),
]


@pytest.mark.parametrize("change, message", CONFIG_TYPE_CASES)
def test_config_field_of_the_wrong_type(tmp_path, change, message):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(require(HF_MODEL) / "model.safetensors")
    config = json.loads((HF_MODEL / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    result = run("-m", "helpers.weights", "convert", folder, tmp_path / "out.npz")
    one_line(result, "python -m helpers.weights: error:", str(folder / "config.json"), message)
    assert not (tmp_path / "out.npz").exists()


def corrupt_safetensors(folder, how):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "header":
        path.write_bytes(b"\xff" * 16 + data[16:])
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "header", "empty"])
def test_corrupt_safetensors(tmp_path, how):
    folder = hf_copy(tmp_path)
    corrupt_safetensors(folder, how)
    result = run("-m", "helpers.weights", "convert", folder, tmp_path / "out.npz")
    one_line(result, f"cannot read {folder / 'model.safetensors'}")
    assert not (tmp_path / "out.npz").exists()


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path):
    from safetensors.numpy import load_file, save_file
    folder = hf_copy(tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    name = "bert.encoder.layer.3.attention.self.key.weight"
    tensors[name][5, 7] = np.nan
    tensors[name][0, 0] = np.inf
    save_file(tensors, str(folder / "model.safetensors"))
    result = run("-m", "helpers.weights", "convert", folder, tmp_path / "out.npz")
    one_line(result, f"layer.3.attention.key.kernel ({name}) holds 2 non-finite values")
    # the numpy model of inference.py refuses them the same way, instead of answering "nan%"
    result = run("inference.py", "-m", folder, "-p", "The cat is black.", "-q", "What color?")
    one_line(result, "inference.py: error:", "holds 2 non-finite values")


def test_sharded_safetensors_with_a_missing_shard(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    shutil.copy(HF_MODEL / "config.json", folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"bert.embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors"}}))
    result = run("-m", "helpers.weights", "convert", folder, tmp_path / "out.npz")
    one_line(result, "names model-00001-of-00002.safetensors, which is not in")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": ["a"]}))
    result = run("-m", "helpers.weights", "convert", folder, tmp_path / "out.npz")
    one_line(result, "weight_map must be an object")


@pytest.fixture(scope="module")
def good_npz(tmp_path_factory):
    out = tmp_path_factory.mktemp("npz") / "model.npz"
    result = run("-m", "helpers.weights", "convert", require(HF_MODEL), out, "--fp16")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("how, message", [
    ("truncated", "the file is truncated or not a .npz"),
    ("truncated-member", "truncated or corrupt"),
    ("nan", "holds 1 non-finite values"),
    ("int-tensor", "expected a floating-point type"),
    ("bad-config", "__config__ is not a config object"),
])
def test_corrupt_npz(tmp_path, good_npz, how, message):
    path = tmp_path / "bad.npz"
    if how == "truncated":
        path.write_bytes(good_npz.read_bytes()[:1000])
    elif how == "truncated-member":
        # keep the zip directory but spoil the bytes of the first member's data
        data = bytearray(good_npz.read_bytes())
        data[200:400] = b"\0" * 200
        path.write_bytes(bytes(data))
    else:
        with np.load(good_npz) as archive:
            arrays = {name: archive[name] for name in archive.files}
        if how == "nan":
            arrays["qa.bias"] = np.array([0.0, np.nan], np.float16)
        elif how == "int-tensor":
            arrays["qa.bias"] = np.array([0, 1], np.int32)
        else:
            arrays["__config__"] = np.array('"not an object"')
        np.savez(path, **arrays)
    result = run("-m", "helpers.weights", "convert", path, tmp_path / "out.npz")
    one_line(result, "python -m helpers.weights: error:", message)
    assert not (tmp_path / "out.npz").exists()


def test_tf_checkpoint_faults(tmp_path, capsys):
    """TF cases in one process (TensorFlow takes seconds to import), through weights.main."""
    tf = pytest.importorskip("tensorflow")
    from helpers import weights
    from test_weights import tiny_checkpoint, tiny_weights
    source = require(TF_MODEL)

    def copy(name, data_bytes=None, index_bytes=None, with_data=True):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(source / "bert_config.json", folder)
        index = (source / "model.ckpt-4149.index").read_bytes()
        (folder / "model.ckpt-4149.index").write_bytes(index if index_bytes is None else index_bytes(index))
        if with_data:
            data = source / "model.ckpt-4149.data-00000-of-00001"
            target = folder / data.name
            if data_bytes is None:
                target.symlink_to(data)
            else:
                target.write_bytes(data_bytes(data.read_bytes()))
        return folder / "model.ckpt-4149"

    def flip(data):
        data = bytearray(data)
        data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
        return bytes(data)

    nan_weights = tiny_weights()
    nan_weights["layer.1.output.kernel"][3, 2] = np.nan
    cases = [
        (tiny_checkpoint(tf, tmp_path / "nan", nan_weights),
         "tensor layer.1.output.kernel (bert/encoder/layer_1/output/dense/kernel) holds 1 non-finite"),
        (copy("short-data", data_bytes=lambda d: d[:len(d) // 3]), "cannot read tensor"),
        (copy("flipped-data", data_bytes=flip), "cannot read tensor"),
        (copy("no-data", with_data=False), "no model.ckpt-4149.data-00000-of-00001 beside"),
        (copy("short-index", index_bytes=lambda i: i[:len(i) // 2]), "cannot read TensorFlow checkpoint"),
        (copy("empty-index", index_bytes=lambda i: b""), "cannot read TensorFlow checkpoint"),
    ]
    capsys.readouterr()
    for prefix, message in cases:
        status = weights.main(["convert", str(prefix), str(tmp_path / "out.npz")])
        stderr = capsys.readouterr().err
        assert status == 2 and stderr.count("\n") == 1, (prefix, stderr)
        assert stderr.startswith("python -m helpers.weights: error:") and message in stderr, stderr
        assert not (tmp_path / "out.npz").exists()
    # and one of them through the real command line, for its stderr
    result = run("-m", "helpers.weights", "convert", cases[1][0], tmp_path / "out.npz")
    one_line(result, "cannot read tensor", "model.ckpt-4149", "truncated or corrupt")


def test_tf_config_that_contradicts_the_one_beside_it_warns(tmp_path):
    """issue 16: 6 heads instead of 12 loads (same shapes) and loses 63 F1 points: warn, naming
    both files and the field."""
    other = tmp_path / "six_heads.json"
    config = json.loads((require(TF_MODEL) / "bert_config.json").read_text())
    other.write_text(json.dumps({**config, "num_attention_heads": 6}))
    out = tmp_path / "out.npz"
    result = run("-m", "helpers.weights", "convert", TF_MODEL / "model.ckpt-4149", out, "--config", other)
    line = one_line(result, "python -m helpers.weights: warning:", str(other),
                    str(TF_MODEL / "bert_config.json"), "num_attention_heads 6 vs 12", status=0)
    assert "wrote" in result.stdout and out.exists(), line


def test_hf_config_that_contradicts_the_one_beside_it_warns(tmp_path):
    other = tmp_path / "eps.json"
    config = json.loads((require(HF_MODEL) / "config.json").read_text())
    other.write_text(json.dumps({**config, "layer_norm_eps": 1e-5}))
    result = run("-m", "helpers.weights", "convert", HF_MODEL, tmp_path / "out.npz", "--config", other)
    one_line(result, "warning:", "layer_norm_eps 1e-05 vs 1e-12", str(HF_MODEL / "config.json"), status=0)


@pytest.mark.parametrize("args, message", [
    (("random", "base", "{tmp}/missing/out.npz"), "folder {tmp}/missing does not exist"),
    (("random", "base", "{tmp}"), "must end in .npz"),
    (("random", "base", "{tmp}/dir.npz"), "is a folder"),
    (("random", "base", "{tmp}/out.npz", "--seed", "-1"), "--seed must be 0 or more, got -1"),
    (("random", "{tmp}/absent.json", "{tmp}/out.npz"), "config file not found"),
    (("random", "{tmp}/dir.npz", "{tmp}/out.npz"), "cannot read config"),
    (("convert", "{tmp}/absent", "{tmp}/out.npz"), "no such file or directory"),
    (("convert", "{tmp}/dir.npz", "{tmp}/out.npz"), "no such file"),
])
def test_weights_cli_file_system_and_ranges(tmp_path, args, message):
    (tmp_path / "dir.npz").mkdir()
    args = [a.format(tmp=tmp_path) for a in args]
    result = run("-m", "helpers.weights", *args)
    one_line(result, message.format(tmp=tmp_path))
    no_files_but(tmp_path, "dir.npz")


def test_weights_cli_disk_full_names_the_file(tmp_path):
    result = run("-m", "helpers.weights", "random", "base", "/dev/full", timeout=600)
    # /dev/full is not .npz: refused before any work; a .npz link to it is written through
    one_line(result, "must end in .npz")
    (tmp_path / "full.npz").symlink_to("/dev/full")
    result = run("-m", "helpers.weights", "random", str(tmp_path / "tiny.json"), tmp_path / "full.npz")
    one_line(result, "config file not found")
    config = {"num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 2,
              "intermediate_size": 16, "vocab_size": 30}
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    result = run("-m", "helpers.weights", "random", tmp_path / "tiny.json", tmp_path / "full.npz")
    one_line(result, f"cannot write {tmp_path / 'full.npz'}: No space left on device")


# ---------------------------------------------------------------- vocabularies


@pytest.mark.parametrize("how, message", [
    ("duplicate", "line 2001 repeats the token"),
    ("empty", "is empty"),
    ("latin1", "is not UTF-8 text"),
    ("no-unk", "has no [UNK] token"),
    ("missing", "cannot read vocab file"),
    ("short", "vocab.txt has 30521 tokens but the model has 30522"),
])
def test_bad_vocabulary(tmp_path, how, message):
    lines = (require(HF_MODEL) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    vocab = tmp_path / "vocab.txt"
    if how == "duplicate":
        lines[2000] = lines[1500]
        vocab.write_text("\n".join(lines), encoding="utf-8")
    elif how == "empty":
        vocab.write_bytes(b"")
    elif how == "latin1":
        vocab.write_bytes("\n".join(lines).encode("utf-8") + "\ncaf\xe9\n".encode("latin-1"))
    elif how == "no-unk":
        vocab.write_text("\n".join(line for line in lines if line != "[UNK]"), encoding="utf-8")
    elif how == "short":
        vocab.write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")
    result = run("inference.py", "-m", HF_MODEL, "-v", vocab, "-p", "The cat is black.", "-q", "What?")
    one_line(result, "inference.py: error:", message)


# ---------------------------------------------------------------- SQuAD files


def corrupt(dataset, path_in_json, value):
    """dataset with the field at a path such as data[0].paragraphs[1].qas[2].id set to value."""
    dataset = json.loads(json.dumps(dataset))
    node = dataset
    steps = path_in_json.replace("]", "").replace("[", ".").split(".")
    for step in steps[:-1]:
        node = node[int(step)] if step.isdigit() else node[step]
    last = steps[-1]
    node[int(last) if last.isdigit() else last] = value
    return dataset


SQUAD_TYPE_CASES = [
    ("data[0].paragraphs[1].qas[2].answers[0].answer_start", "5", "must be an integer, got str"),
    ("data[0].paragraphs[1].qas[2].answers[0].answer_start", True, "must be an integer, got bool"),
    ("data[0].paragraphs[1].qas[2].answers[0].answer_start", 10**6, "is 1000000, outside its context"),
    ("data[0].paragraphs[1].qas[2].answers[0].text", 7, "must be a string, got int"),
    ("data[0].paragraphs[1].qas[2].answers[0]", "Denver", "must be an object, got str"),
    ("data[0].paragraphs[1].qas[2].answers", {"text": "x"}, "must be a list, got dict"),
    ("data[0].paragraphs[1].qas[2].question", ["why"], "must be a string, got list"),
    ("data[0].paragraphs[1].qas[2].id", None, "must be a string, got NoneType"),
    ("data[0].paragraphs[1].qas[2]", 3, "must be an object, got int"),
    ("data[0].paragraphs[1].qas", {"id": "x"}, "must be a list, got dict"),
    ("data[0].paragraphs[1].context", 42, "must be a string, got int"),
    ("data[0].paragraphs[1]", [], "must be an object, got list"),
    ("data[0].paragraphs", "text", "must be a list, got str"),
    ("data[0]", "article", "must be an object, got str"),
    ("data", {"a": 1}, "must be a list, got dict"),
]


@pytest.mark.parametrize("where, value, message", SQUAD_TYPE_CASES)
def test_squad_field_of_the_wrong_type_names_its_json_path(tmp_path, where, value, message):
    path, dataset = squad_slice(tmp_path)
    path.write_text(json.dumps(corrupt(dataset, where, value)), encoding="utf-8")
    out = tmp_path / "predictions.json"
    result = run("inference.py", "-m", HF_MODEL, "-sq", path, "-o", out)
    shown = where if "outside" not in message else where.rsplit(".", 1)[0]
    one_line(result, "inference.py: error:", str(path), shown, message)
    assert not out.exists()


@pytest.mark.parametrize("how, message", [
    ("truncated", "is not valid JSON"),
    ("utf16", "is not UTF-8"),
    ("no-questions", "has no questions"),
    ("is_impossible", "data[0].paragraphs[0].qas[0].is_impossible must be true or false"),
    ("duplicate-id", "appears twice"),
    ("missing", "SQuAD file not found"),
])
def test_bad_squad_file(tmp_path, how, message):
    path, dataset = squad_slice(tmp_path)
    extra = []
    if how == "truncated":
        text = path.read_text(encoding="utf-8")
        path.write_text(text[:len(text) // 2], encoding="utf-8")
    elif how == "utf16":
        path.write_text(json.dumps(dataset), encoding="utf-16")
    elif how == "no-questions":
        path.write_text(json.dumps(corrupt(dataset, "data", [])), encoding="utf-8")
    elif how == "is_impossible":
        path.write_text(json.dumps(corrupt(dataset, "data[0].paragraphs[0].qas[0].is_impossible", "no")))
        extra = ["--version-2-with-negative"]
    elif how == "duplicate-id":
        qas = dataset["data"][0]["paragraphs"][0]["qas"]
        path.write_text(json.dumps(corrupt(dataset, "data[0].paragraphs[1].qas[0].id", qas[0]["id"])))
    else:
        path = tmp_path / "absent.json"
    result = run("inference.py", "-m", HF_MODEL, "-sq", path, "-o", tmp_path / "p.json", *extra)
    one_line(result, "inference.py: error:", message)
    assert not (tmp_path / "p.json").exists()


# ---------------------------------------------------------------- evaluators

EVALUATE_V1 = REPO / "squad" / "evaluate-v1.1.py"
EVALUATE_V2 = REPO / "squad" / "evaluate-v2.0.py"


@pytest.fixture
def scored(tmp_path):
    """A SQuAD slice, and predictions that give every question its first gold answer."""
    path, dataset = squad_slice(tmp_path, paragraphs=3)
    predictions = {qa["id"]: qa["answers"][0]["text"] for article in dataset["data"]
                   for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(predictions))
    return path, dataset, pred, predictions


@pytest.mark.parametrize("script", [EVALUATE_V1, EVALUATE_V2])
@pytest.mark.parametrize("how, message", [
    ("zero-questions", "has no questions"),
    ("no-paragraphs", "has no questions"),
    ("text-type", "data[0].paragraphs[2].qas[1].answers[0].text must be a string, got int"),
    ("id-type", "data[0].paragraphs[0].qas[0].id must be a string, got int"),
    ("answers-missing", "data[0].paragraphs[1].qas[0] has no \"answers\""),
    ("other-dataset", "answers none of the 9 questions"),
    ("empty-predictions", "answers none of the 9 questions"),
    ("prediction-type", "mapping question ids to answer strings"),
])
def test_evaluator_bad_input(tmp_path, scored, script, how, message):
    path, dataset, pred, predictions = scored
    if how == "zero-questions":
        dataset = corrupt(dataset, "data", [])
    elif how == "no-paragraphs":
        dataset = corrupt(dataset, "data[0].paragraphs", [])
    elif how == "text-type":
        dataset = corrupt(dataset, "data[0].paragraphs[2].qas[1].answers[0].text", 1)
    elif how == "id-type":
        dataset = corrupt(dataset, "data[0].paragraphs[0].qas[0].id", 12)
    elif how == "answers-missing":
        del dataset["data"][0]["paragraphs"][1]["qas"][0]["answers"]
    elif how == "other-dataset":
        pred.write_text(json.dumps({f"other-{key}": value for key, value in predictions.items()}))
    elif how == "empty-predictions":
        pred.write_text("{}")
    elif how == "prediction-type":
        pred.write_text(json.dumps({key: [value] for key, value in predictions.items()}))
    path.write_text(json.dumps(dataset))
    one_line(run(script, path, pred), f"{script.name}: error:", message)


@pytest.mark.parametrize("expected, status, message", [
    ("nan", 2, "expected F1 nan is outside (0, 100]"),
    ("0.9", 2, "did you mean 90?"),
    ("0", 2, "outside (0, 100]"),
    ("-5", 2, "outside (0, 100]"),
    ("150", 2, "outside (0, 100]"),
    ("inf", 2, "outside (0, 100]"),
])
def test_expected_f1_out_of_range(scored, expected, status, message):
    path, _, pred, _ = scored
    one_line(run(EVALUATE_V1, path, pred, expected), message, status=status)


def test_expected_f1_in_range_still_decides(scored):
    path, _, pred, _ = scored
    assert run(EVALUATE_V1, path, pred, "100").returncode == 0
    assert run(EVALUATE_V1, path, pred, "99.5").returncode == 0


def test_predictions_for_unknown_questions_warn(scored):
    path, _, pred, predictions = scored
    pred.write_text(json.dumps({**predictions, "not-a-question": "x"}))
    for script in (EVALUATE_V1, EVALUATE_V2):
        result = run(script, path, pred)
        one_line(result, "1 predictions match no question of the dataset", "not-a-question", status=0)


def test_v2_output_options(tmp_path, scored):
    path, dataset, pred, predictions = scored
    (tmp_path / "a-file").write_text("x")
    cases = [
        (["--out-file", tmp_path / "missing" / "eval.json"], "folder", "does not exist"),
        (["--out-file", tmp_path], "is a folder", ""),
        (["--na-prob-thresh", "nan"], "--na-prob-thresh must be a finite number", ""),
    ]
    na = tmp_path / "na.json"
    na.write_text(json.dumps({key: float("nan") for key in predictions}))
    cases.append((["--na-prob-file", na], "gives question", "the value nan"))
    na_ok = tmp_path / "na_ok.json"
    na_ok.write_text(json.dumps({key: 0.5 for key in predictions}))
    cases.append((["--na-prob-file", na_ok, "--out-image-dir", tmp_path / "a-file"], "is a file", ""))
    for extra, *fragments in cases:
        one_line(run(EVALUATE_V2, path, pred, *extra), "evaluate-v2.0.py: error:", *fragments)
    no_files_but(tmp_path, "a-file", "na.json", "na_ok.json", "pred.json", "slice.json")
    # a flag without effect: one warning line, and the scores on stdout
    result = run(EVALUATE_V2, path, pred, "--out-image-dir", tmp_path / "images")
    one_line(result, "--out-image-dir has no effect without --na-prob-file", status=0)
    assert json.loads(result.stdout)["exact"] == 100.0


def test_v2_out_file_is_written_through_a_symlink(tmp_path, scored):
    path, _, pred, _ = scored
    real = tmp_path / "results" / "eval.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "eval-link.json"
    link.symlink_to(real)
    result = run(EVALUATE_V2, path, pred, "--out-file", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and json.loads(real.read_text())["exact"] == 100.0
    assert sorted(p.name for p in real.parent.iterdir()) == ["eval.json"]  # no temp file left


def test_v2_out_file_fifo_and_dev_stdout(tmp_path, scored):
    path, _, pred, _ = scored
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    result = run(EVALUATE_V2, path, pred, "--out-file", fifo)
    assert result.returncode == 0, result.stderr
    assert json.loads(reader.communicate(timeout=60)[0])["exact"] == 100.0
    assert not fifo.is_file() and fifo.exists()  # still a FIFO
    result = run(EVALUATE_V2, path, pred, "--out-file", "/dev/stdout")
    assert result.returncode == 0 and json.loads(result.stdout)["exact"] == 100.0


# ---------------------------------------------------------------- ENGINE.json


def test_engine_json_faults(tmp_path, recwarn):
    from helpers.trt_common import EngineInfo, TensorRTError
    engine = tmp_path / "bert.engine"
    sidecar = tmp_path / "bert.engine.json"
    good = {"tensorrt_version": "10.11.0", "precision": "fp16", "batch_sizes": [1, 8],
            "sequence_lengths": [128], "model": {}, "build_options": {}}
    sidecar.write_text(json.dumps({**good, "a_newer_field": 1}))
    info = EngineInfo.load(engine)
    assert info.batch_sizes == [1, 8]
    assert any("ignoring a_newer_field" in str(w.message) for w in recwarn)
    for recorded, message in (
            ({k: v for k, v in good.items() if k != "sequence_lengths"},
             "lacks sequence_lengths: it was written by an older builder.py; rebuild"),
            ({**good, "batch_sizes": [0]}, "batch_sizes is [0], not a list"),
            ({**good, "precision": 16}, "precision is 16, not a str"),
            ({**good, "model": []}, "model is [], not a dict"),
            ([good], "is not a JSON object")):
        sidecar.write_text(json.dumps(recorded))
        with pytest.raises(TensorRTError, match=message.replace("[", r"\[").replace("]", r"\]")):
            EngineInfo.load(engine)
    sidecar.write_text('{"tensorrt_version": ')
    with pytest.raises(TensorRTError, match="cannot read .*bert.engine.json"):
        EngineInfo.load(engine)


# ---------------------------------------------------------------- outputs


def test_atomic_writer_special_targets(tmp_path):
    from helpers.files import OutputError, check_writable, write_atomically
    target = tmp_path / "real" / "out.json"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomically(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert oct(os.stat(target).st_mode & 0o777) == "0o640"  # the replaced file's mode is kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "new.json")
    write_atomically(dangling, "made")
    assert (tmp_path / "real" / "new.json").read_text() == "made" and dangling.is_symlink()
    with pytest.raises(OutputError, match="/dev/full: No space left on device"):
        write_atomically("/dev/full", "x")
    with pytest.raises(OutputError, match="folder .*missing does not exist"):
        check_writable(tmp_path / "missing" / "x.json")
    with pytest.raises(OutputError, match="folder .*missing does not exist"):
        write_atomically(tmp_path / "missing" / "x.json", "x")
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path / "real")


def test_interrupted_write_leaves_the_old_file(tmp_path):
    from helpers.files import atomic_output
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as file:
            file.write(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


# ---------------------------------------------------------------- inference.py, perf.py, builder.py


@pytest.mark.parametrize("args, message", [
    (["-s", "0"], "-s/--sequence-length must be 1 or more, got 0"),
    (["-b", "0"], "-b/--batch-size must be 1 or more, got 0"),
    (["-b", "-3"], "-b/--batch-size must be 1 or more, got -3"),
    (["--n-best-size", "0"], "--n-best-size must be 1 or more, got 0"),
    (["--max-answer-length", "0"], "--max-answer-length must be 1 or more, got 0"),
    (["--max-query-length", "0"], "--max-query-length must be 1 or more, got 0"),
    (["--doc-stride", "0"], "--doc-stride must be 1 or more, got 0"),
    (["--null-score-diff-threshold", "nan"], "must be a finite number, got nan"),
    (["--null-score-diff-threshold", "inf"], "must be a finite number, got inf"),
])
def test_inference_numeric_options_as_given(args, message):
    result = run("inference.py", "-m", HF_MODEL, "-p", "The cat is black.", "-q", "What color?", *args)
    one_line(result, "inference.py: error:", message)


def test_inference_input_files(tmp_path):
    nul = tmp_path / "utf16.txt"
    nul.write_text("The cat is black.", encoding="utf-16-le")
    one_line(run("inference.py", "-m", HF_MODEL, "-pf", nul, "-q", "What?"), "holds NUL bytes", str(nul))
    one_line(run("inference.py", "-m", HF_MODEL, "-p", "Cats.", "-qf", nul), "holds NUL bytes")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    one_line(run("inference.py", "-m", HF_MODEL, "-p", "Cats.", "-qf", empty, stdin="What?\n"),
             f"the question file {empty} has no questions")
    one_line(run("inference.py", "-m", HF_MODEL, "-p", "Cats.", "-q", "", "  "),
             "every question given with -q is empty")
    one_line(run("inference.py", "-m", HF_MODEL, "-pf", tmp_path / "absent.txt", "-q", "x"),
             "cannot read the passage file")
    one_line(run("inference.py", "-m", tmp_path / "absent", "-p", "x", "-q", "y"),
             "no such file or directory", str(tmp_path / "absent"))


def test_inference_bom_empty_questions_and_flags_without_effect(tmp_path):
    """One numpy-model run: a BOM does not reach the question, the empty -q is dropped with a
    warning, -o and --no-progress without -sq are warned about; every warning is one line."""
    questions = tmp_path / "questions.txt"
    questions.write_bytes("\ufeffWhat color is the cat?\n\n".encode("utf-8"))
    passage = tmp_path / "passage.txt"
    passage.write_bytes("\ufeffThe cat is black.".encode("utf-8"))
    result = run("inference.py", "-m", HF_MODEL, "-s", "64", "-pf", passage, "-qf", questions, "-q", "",
                 "-o", tmp_path / "p.json", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "Passage: The cat is black." in result.stdout
    assert "Question: What color is the cat?" in result.stdout and "\ufeff" not in result.stdout
    assert "Answer: 'black'" in result.stdout
    assert result.stderr.splitlines() == [
        "inference.py: warning: -o, --no-progress have no effect without -sq",
        "inference.py: warning: 1 empty question(s) of -q left out"]
    assert not (tmp_path / "p.json").exists()


def test_inference_checks_the_output_before_the_model(tmp_path):
    path, _ = squad_slice(tmp_path)
    out = tmp_path / "missing" / "predictions.json"
    started = time.monotonic()
    result = run("inference.py", "-m", TF_MODEL / "model.ckpt-4149", "-sq", path, "-o", out)
    one_line(result, f"cannot write the prediction file {out}", "does not exist")
    assert "tensorflow" not in result.stderr.lower()
    assert time.monotonic() - started < 60  # not after a TF import and a run over the questions
    before = path.read_bytes()
    one_line(run("inference.py", "-m", HF_MODEL, "-sq", path, "-o", path), "is the SQuAD file itself")
    assert path.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["-b", "0"], "-b/--batch-size must be 1 or more, got 0"),
    (["-s", "128", "-s", "0"], "-s/--sequence-length must be 1 or more, got 0"),
    (["-i", "0"], "-i/--iterations must be 1 or more, got 0"),
    (["-w", "-1"], "-w/--warm-up-runs must be 0 or more, got -1"),
    (["-d", "nan"], "-d/--duration must be a finite number"),
    (["-r", "-1"], "-r/--random-seed must be 0 or more"),
    (["--json", "/nonexistent-folder/perf.json"], "folder /nonexistent-folder does not exist"),
])
def test_perf_options_before_tensorrt(args, message):
    one_line(run("perf.py", "-e", "absent.engine", *args), "perf.py: error:", message)


def test_builder_checks_its_output_before_loading(tmp_path):
    one_line(run("builder.py", "-m", tmp_path / "absent.npz", "-o", tmp_path / "missing" / "bert.engine"),
             "builder.py: error:", "folder", "does not exist")


# ---------------------------------------------------------------- Ctrl-C


def interrupt_when(process, ready, timeout=120):
    """Send SIGINT once ready() holds (polled), then wait for the process."""
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert process.poll() is None, "the process ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=120)


def test_ctrl_c_at_the_interactive_prompt(tmp_path):
    log = tmp_path / "stdout.txt"
    with open(log, "w") as out:
        process = subprocess.Popen([PY, "inference.py", "-m", str(HF_MODEL), "-p", "The cat is black."],
                                   cwd=REPO, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE,
                                   text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _, stderr = interrupt_when(process, lambda: "Question (or 'exit')" in log.read_text())
    assert process.returncode == 130, stderr
    assert stderr.strip() == "inference.py: interrupted"


def test_ctrl_c_during_squad_leaves_no_predictions(tmp_path):
    path, _ = squad_slice(tmp_path, paragraphs=10, questions=10)
    out = tmp_path / "predictions.json"
    process = subprocess.Popen([PY, "inference.py", "-m", str(HF_MODEL), "-sq", str(path), "-o", str(out)],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # the numpy model needs minutes for these 100 questions
    _, stderr = interrupt_when(process, lambda: True)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "inference.py: interrupted" and "Traceback" not in stderr
    no_files_but(tmp_path, "slice.json")


def test_run_main_maps_interrupts_and_errors():
    """The wrapper every front end ends with (helpers/errors.run_main)."""
    code = ("import sys\nfrom helpers.errors import BertTrtError, run_main\n"
            "def main(argv):\n    raise {}\n"
            "run_main('evaluate-v1.1.py', main)\n")
    result = run("-c", code.format("KeyboardInterrupt"))
    assert result.returncode == 130 and result.stderr == "evaluate-v1.1.py: interrupted\n"
    result = run("-c", code.format("BertTrtError('the file x is bad; fix it')"))
    assert result.returncode == 2 and result.stderr == "evaluate-v1.1.py: error: the file x is bad; fix it\n"
    # what the system said of a file, in one line with its name
    result = run("-c", code.format("OSError(28, 'No space left on device', 'out.engine')"))
    assert result.returncode == 2 and result.stderr == "evaluate-v1.1.py: error: out.engine: No space left on device\n"
    result = run("-c", code.format("ValueError('a bug')"))  # anything else is a bug: its traceback stays
    assert result.returncode == 1 and "Traceback" in result.stderr and "ValueError: a bug" in result.stderr


# ---------------------------------------------------------------- scripts


@pytest.mark.parametrize("script, args, message", [
    ("squad_accuracy.sh", ["-z"], "unknown option -z"),
    ("squad_accuracy.sh", ["-s"], "option -s needs a value"),
    ("squad_accuracy.sh", ["-m", "m", "-v", "v", "-d", "d", "-s", "0"], "-s must be a positive integer, got '0'"),
    ("squad_accuracy.sh", ["-m", "m", "-v", "v", "-d", "d", "-b", "x"], "-b must be a positive integer"),
    ("squad_accuracy.sh", ["-m", "m", "-v", "v", "-d", "d", "-p", "fp8"], "unknown precision fp8"),
    ("squad_accuracy.sh", ["-m", "m", "-v", "v", "-d", "d", "extra"], "invalid argument 'extra'"),
    ("squad_accuracy.sh", [], "-m CHECKPOINT, -v VOCAB and -d DEV_JSON are required"),
    ("inference_benchmark.sh", ["-z"], "unknown option -z"),
    ("inference_benchmark.sh", ["-b", "1 0"], "-b takes positive integers, got '0'"),
    ("inference_benchmark.sh", ["-s", "128x"], "-s takes positive integers, got '128x'"),
    ("inference_benchmark.sh", ["-m", "huge"], "unknown model huge"),
    ("inference_benchmark.sh", ["-p", "bf16"], "unknown precision bf16"),
    ("inference_benchmark.sh", ["stray"], "invalid argument 'stray'"),
    ("build.sh", ["bogus"], "invalid argument 'bogus'"),
    ("download_squad.sh", ["v3"], "invalid argument 'v3'"),
])
def test_script_bad_arguments(tmp_path, script, args, message):
    result = subprocess.run(["bash", str(REPO / "scripts" / script), *args], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    one_line(result, f"{script}: error:", message)
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script, args, message", [
    ("scripts/benchmark_report.py", ["absent.json", "-o", "/nonexistent-folder/bench"], "does not exist"),
])
def test_python_script_bad_arguments(script, args, message):
    one_line(run(script, *args), message)


def test_inference_flags_without_effect_warn_one_line_each(tmp_path):
    passage = tmp_path / "passage.txt"
    passage.write_text("Cats.")
    # an absent vocabulary stops the run right after the warnings, before any model work
    result = run("inference.py", "-m", HF_MODEL, "-v", tmp_path / "absent.txt", "-p", "Dogs.", "-pf", passage,
                 "-q", "What?", "--null-score-diff-threshold", "1.5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[:2] == [
        "inference.py: warning: -pf has no effect beside -p",
        "inference.py: warning: --null-score-diff-threshold has no effect without --version-2-with-negative"]
    assert result.stderr.splitlines()[2].startswith("inference.py: error: cannot read vocab file")
    path, _ = squad_slice(tmp_path)
    result = run("inference.py", "-m", HF_MODEL, "-v", tmp_path / "absent.txt", "-sq", path, "-q", "What?",
                 "-o", tmp_path / "p.json")
    assert result.stderr.splitlines()[0] == "inference.py: warning: -q has no effect with -sq"
