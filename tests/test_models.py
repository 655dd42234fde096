"""Models named by Hugging Face Hub id, read offline from a Hub cache made by hand, and casing.

The cache has the layout huggingface_hub documents (models--ORG--NAME/{blobs,snapshots/REV,refs})
and holds the Hugging Face test model of ../shared/models. huggingface_hub reads HF_HUB_OFFLINE and
HF_HUB_CACHE when it is imported, so every run that resolves a Hub id is a subprocess that gets
them in its environment from the start.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.models import ModelError, choose_casing, model_casing, parse_hub_id, resolve_model, vocab_is_cased
from helpers.trt_common import EngineInfo
from tests.conftest import REPO, write_cased_vocab

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_ID = "test-org/minilm-squad"
PASSAGE = ("Super Bowl 50 was an American football game to determine the champion of the National "
           "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion "
           "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24-10 "
           "to earn their third Super Bowl title.")
QUESTIONS = ["Which NFL team represented the AFC at Super Bowl 50?", "Who did the Broncos defeat?"]


def add_to_hub_cache(cache, repo_id, files, commit=COMMIT, refs=("main",)):
    """Puts `files` (name -> source path) into a Hub cache as a snapshot of `commit`, the way
    huggingface_hub stores downloads: content in blobs/, named by hash; symlinks in snapshots/."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for folder in (repo / "blobs", snapshot, repo / "refs"):
        folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        data = Path(source).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, hf_model):
    cache = tmp_path / "hub"
    add_to_hub_cache(cache, HUB_ID, {name: hf_model / name for name in ("config.json", "model.safetensors",
                                                                        "vocab.txt")})
    return cache


def offline_env(cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent / "hf-home")}


def run(args, env, cwd=REPO):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def answers(stdout):
    """The answer and probability lines (the timings differ from run to run)."""
    return [line.split(" (time:")[0] for line in stdout.splitlines() if line.startswith(("Answer:", "With"))]


def assert_one_line_error(result, prog, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# Hub ids, offline.

def test_a_hub_id_answers_exactly_as_the_same_model_given_as_a_folder(hub_cache, hf_model):
    env = offline_env(hub_cache)
    question_args = ["-s", 128, "-p", PASSAGE, "-q", *QUESTIONS]
    by_folder = run(["inference.py", "-m", hf_model, *question_args], env)
    assert by_folder.returncode == 0, by_folder.stderr
    expected = answers(by_folder.stdout)
    assert expected[0] == "Answer: 'Denver Broncos'" and len(expected) == 4
    for named in (HUB_ID, f"{HUB_ID}@main", f"{HUB_ID}@{COMMIT}"):
        by_id = run(["inference.py", "-m", named, *question_args], env)
        assert by_id.returncode == 0, by_id.stderr
        assert answers(by_id.stdout) == expected, named


def test_export_weights_from_a_hub_id_equals_the_folders(hub_cache, hf_model, tmp_path):
    env = offline_env(hub_cache)
    for source, output in ((HUB_ID, tmp_path / "by_id.npz"), (hf_model, tmp_path / "by_folder.npz")):
        result = run(["builder.py", "-m", source, "-o", output, "--export-weights"], env)
        assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "by_id.npz") as by_id, np.load(tmp_path / "by_folder.npz") as by_folder:
        assert sorted(by_id.files) == sorted(by_folder.files)
        for name in by_folder.files:
            np.testing.assert_array_equal(by_id[name], by_folder[name])


def test_download_script_hf_form_prints_the_cached_folder(hub_cache):
    result = subprocess.run(["bash", str(REPO / "scripts" / "download_model.sh"), "hf", HUB_ID],
                            capture_output=True, text=True, env=offline_env(hub_cache), timeout=120)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder == hub_cache / "models--test-org--minilm-squad" / "snapshots" / COMMIT
    assert "uncased" in result.stderr


def test_a_hub_id_not_cached_while_offline_is_one_line(hub_cache, tmp_path):
    output = tmp_path / "out.npz"
    result = run(["builder.py", "-m", "test-org/not-cached", "-o", output, "--export-weights"],
                 offline_env(hub_cache))
    assert_one_line_error(result, "builder.py", "test-org/not-cached is not in the Hugging Face Hub cache",
                          "HF_HUB_OFFLINE=1", "scripts/download_model.sh hf test-org/not-cached")
    assert not output.exists()
    result = run(["inference.py", "-m", "test-org/not-cached", "-p", PASSAGE, "-q", QUESTIONS[0]],
                 offline_env(hub_cache))
    assert_one_line_error(result, "inference.py", "not in the Hugging Face Hub cache")
    result = subprocess.run(["bash", str(REPO / "scripts" / "download_model.sh"), "hf", "test-org/not-cached"],
                            capture_output=True, text=True, env=offline_env(hub_cache), timeout=120)
    assert_one_line_error(result, "python -m helpers.models", "not in the Hugging Face Hub cache")
    assert result.stdout == ""


def test_a_hub_model_without_safetensors_is_one_line(tmp_path, hf_model):
    cache = tmp_path / "hub"
    add_to_hub_cache(cache, "test-org/bin-only", {"config.json": hf_model / "config.json",
                                                  "vocab.txt": hf_model / "vocab.txt"})
    result = run(["inference.py", "-m", "test-org/bin-only", "-p", PASSAGE, "-q", QUESTIONS[0]], offline_env(cache))
    assert_one_line_error(result, "inference.py", "test-org/bin-only has no model.safetensors")


@pytest.mark.parametrize("named", ["test org/name", "org/name@", "org/na--me", "org/name-", "org/name@a@b"])
def test_a_malformed_hub_id_is_one_line(hub_cache, tmp_path, named):
    output = tmp_path / "out.npz"
    result = run(["builder.py", "-m", named, "-o", output, "--export-weights"], offline_env(hub_cache))
    assert_one_line_error(result, "builder.py", "is neither a local path nor a Hugging Face Hub id",
                          "ORG/NAME[@REVISION]")
    assert not output.exists()


@pytest.mark.parametrize("named", ["./no-such-model", "/no/such/model.ckpt-1", "model.ckpt-404", "x.npz"])
def test_a_missing_local_path_is_named_as_such(hub_cache, named):
    result = run(["inference.py", "-m", named, "-p", PASSAGE, "-q", QUESTIONS[0]], offline_env(hub_cache))
    assert_one_line_error(result, "inference.py", f"no such file or directory: {named}")


def test_resolve_model_takes_local_paths_as_they_are(tf_model, hf_model):
    assert resolve_model(hf_model) == str(hf_model)
    prefix = str(tf_model / "model.ckpt-4149")  # a TF prefix is no file itself
    assert resolve_model(prefix) == prefix


def test_parse_hub_id():
    assert parse_hub_id("deepset/bert-base-cased-squad2") == ("deepset/bert-base-cased-squad2", None)
    assert parse_hub_id("csarron/bert-base-uncased-squad-v1@v1.0") == ("csarron/bert-base-uncased-squad-v1", "v1.0")
    with pytest.raises(ModelError):
        parse_hub_id("deepset/bert..squad")


# Casing.

@pytest.fixture
def cased_model(tmp_path, hf_model):
    """A folder holding a cased vocabulary made from the HF test model's."""
    folder = tmp_path / "cased"
    folder.mkdir()
    write_cased_vocab(hf_model / "vocab.txt", folder / "vocab.txt")
    return folder


def test_vocab_casing():
    assert not vocab_is_cased({"[CLS]": 0, "[unused0]": 1, "hello": 2, "##lo": 3})
    assert vocab_is_cased({"[CLS]": 0, "hello": 1, "Hello": 2})


def test_model_casing_prefers_tokenizer_config(cased_model, hf_model, tmp_path):
    assert model_casing(hf_model) == (True, f"{hf_model / 'vocab.txt'} (uncased word pieces)")
    assert model_casing(cased_model)[0] is False
    (cased_model / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert model_casing(cased_model) == (False, str(cased_model / "tokenizer_config.json"))
    (cased_model / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    with pytest.raises(ModelError, match="says do_lower_case true, but the vocabulary .* has upper-case"):
        model_casing(cased_model)
    bare = tmp_path / "bare"
    bare.mkdir()
    assert model_casing(bare)[0] is True


def test_choose_casing_warns_only_on_a_contradiction():
    said = []
    assert choose_casing(True, None, said.append) is True
    assert choose_casing(False, False, said.append) is False
    assert said == []
    assert choose_casing(True, False, said.append) is False
    assert len(said) == 1 and said[0].startswith("--no-do-lower-case contradicts the model, which is uncased")


def test_engines_from_before_the_casing_was_recorded_are_uncased(tmp_path):
    info = dict(tensorrt_version="10.16", precision="fp16", batch_sizes=[1], sequence_lengths=[128])
    (tmp_path / "old.engine.json").write_text(json.dumps(info))
    (tmp_path / "cased.engine.json").write_text(json.dumps({**info, "do_lower_case": False}))
    assert EngineInfo.load(tmp_path / "old.engine").lower_case() is True
    assert EngineInfo.load(tmp_path / "cased.engine").lower_case() is False


def test_inference_warns_in_one_line_when_the_command_line_contradicts_the_model(hf_model, hub_cache):
    result = run(["inference.py", "-m", hf_model, "-s", 128, "--no-do-lower-case", "-p", PASSAGE, "-q", QUESTIONS[0]],
                 offline_env(hub_cache))
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "inference.py: warning: --no-do-lower-case contradicts the model, which is uncased; its answers may be "
        "wrong. Using --no-do-lower-case as asked"]


def test_a_vocabulary_contradicting_tokenizer_config_is_one_line(tmp_path, hf_model, cased_model, hub_cache):
    model = tmp_path / "model"
    shutil.copytree(hf_model, model)
    (model / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    result = run(["inference.py", "-m", model, "-v", cased_model / "vocab.txt", "-p", PASSAGE, "-q", QUESTIONS[0]],
                 offline_env(hub_cache))
    assert_one_line_error(result, "inference.py", "says do_lower_case true, but the vocabulary",
                          "has upper-case word pieces")
    output = tmp_path / "out.npz"
    result = run(["builder.py", "-m", model, "-v", cased_model / "vocab.txt", "-o", output, "--export-weights"],
                 offline_env(hub_cache))
    assert_one_line_error(result, "builder.py", "says do_lower_case true")
    assert not output.exists()
    chosen = run(["inference.py", "-m", model, "-v", cased_model / "vocab.txt", "--no-do-lower-case",
                  "-p", PASSAGE, "-q", QUESTIONS[0]], offline_env(hub_cache))
    assert_one_line_error(chosen, "inference.py", "vocab.txt has")  # the casing settled, the size is wrong


def test_engine_info_records_the_casing(tmp_path):
    engine = tmp_path / "cased.engine"
    EngineInfo(tensorrt_version="10.16", precision="fp16", batch_sizes=[1], sequence_lengths=[128],
               do_lower_case=False).save(engine)
    assert json.loads((tmp_path / "cased.engine.json").read_text())["do_lower_case"] is False
    assert EngineInfo.load(engine).lower_case() is False
