"""The shell scripts: syntax, usage, argument errors, and the download logic without any network.

Downloads are exercised on a copy of a script in a scratch repository, with a PATH that holds
only the basic tools it needs plus, per test, a local stand-in for ngc or wget that serves files
from disk and logs how it was called.
"""
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))
BASIC_TOOLS = ["bash", "cat", "cp", "dirname", "find", "mkdir", "mktemp", "mv", "python3", "rm"]

FAKE_WGET = """#!/bin/bash
# Stand-in for `wget -q --show-progress -O FILE URL`: serves $SERVE_DIR/<last part of URL>.
while [[ $# -gt 1 ]]; do
    if [[ $1 == -O ]]; then out=$2; fi
    shift
done
echo "$1" >> "$CALL_LOG"
cp "$SERVE_DIR/${1##*/}" "$out"
"""

FAKE_NGC = """#!/bin/bash
# Stand-in for `ngc registry model download-version nvidia/NAME:VERSION --dest DIR`.
echo "$@" >> "$CALL_LOG"
name=${4#nvidia/}
folder="$6/${name%%:*}_v${name##*:}"
mkdir -p "$folder"
echo '{"hidden_size": 768}' > "$folder/bert_config.json"
: > "$folder/model.ckpt.index"
"""


def run(script, *args, env=None):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_every_script_is_found():
    assert {path.name for path in SCRIPTS} >= {"build.sh", "launch.sh", "download_model.sh",
                                               "download_squad.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_syntax(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_strict_mode(script):
    assert "set -euo pipefail" in script.read_text()


@pytest.mark.parametrize("name, expected", [
    ("download_model.sh", "[base|large] [fp16|fp32] [128|384] [v2|v1_1]"),
    ("download_squad.sh", "[v1_1|v2_0]"),
    ("build.sh", "bert-trt:latest"),
    ("launch.sh", "/workspace/bert-trt"),
])
def test_help(name, expected):
    result = run(REPO / "scripts" / name, "-h")
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: scripts/{name}")
    assert expected in result.stdout


@pytest.mark.parametrize("name", ["download_model.sh", "download_squad.sh", "build.sh"])
def test_invalid_argument_is_one_line_error(name):
    result = run(REPO / "scripts" / name, "bogus")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"{name}: error: invalid argument 'bogus'" in result.stderr


@pytest.fixture
def sandbox(tmp_path):
    """A scratch repository holding copies of the download scripts, and an environment whose PATH
    has only the basic tools (no ngc, wget or curl) plus whatever a test adds to `bin`."""
    (tmp_path / "scripts").mkdir()
    for name in ("download_model.sh", "download_squad.sh"):
        shutil.copy(REPO / "scripts" / name, tmp_path / "scripts" / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASIC_TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    serve_dir = tmp_path / "served"
    serve_dir.mkdir()
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "CALL_LOG": str(tmp_path / "calls.log"),
           "SERVE_DIR": str(serve_dir)}
    return tmp_path, env


def add_tool(sandbox_root, name, text):
    path = sandbox_root / "bin" / name
    path.write_text(text)
    path.chmod(0o755)


def calls(sandbox_root):
    return (sandbox_root / "calls.log").read_text().splitlines()


def leftovers(folder):
    return sorted(path.name for path in Path(folder).rglob("*"))


NGC_TARGET = "bert_tf_ckpt_base_qa_squad11_amp_384_v19.03.1"
DEFAULT_URL = ("https://api.ngc.nvidia.com/v2/models/nvidia/bert_tf_ckpt_large_qa_squad2_amp_128/"
               "versions/19.03.1/zip")
DEFAULT_TARGET = "bert_tf_ckpt_large_qa_squad2_amp_128_v19.03.1"


def test_download_model_with_ngc(sandbox):
    root, env = sandbox
    add_tool(root, "ngc", FAKE_NGC)
    result = run(root / "scripts" / "download_model.sh", "base", "fp32", "384", "v1_1", env=env)
    assert result.returncode == 0, result.stderr
    assert "no separate fp32 checkpoint: using the AMP one" in result.stdout
    [call] = calls(root)
    assert call.startswith("registry model download-version nvidia/bert_tf_ckpt_base_qa_squad11_amp_384:19.03.1 "
                           f"--dest {root}/models/fine-tuned/.download.")
    target = root / "models" / "fine-tuned" / NGC_TARGET
    assert (target / "bert_config.json").is_file()
    assert leftovers(root / "models" / "fine-tuned") == sorted([NGC_TARGET, "bert_config.json", "model.ckpt.index"])
    again = run(root / "scripts" / "download_model.sh", "base", "fp32", "384", "v1_1", env=env)
    assert again.returncode == 0 and "skipping" in again.stdout
    assert len(calls(root)) == 1


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_download_model_names_one_amp_checkpoint_for_both_precisions(sandbox, precision):
    root, env = sandbox
    add_tool(root, "ngc", FAKE_NGC)
    result = run(root / "scripts" / "download_model.sh", "large", precision, "128", "v2", env=env)
    assert result.returncode == 0, result.stderr
    assert calls(root)[0].split()[3] == "nvidia/bert_tf_ckpt_large_qa_squad2_amp_128:19.03.1"
    assert ("fp32 checkpoint" in result.stdout) == (precision == "fp32")


def test_download_model_downloads_an_incomplete_folder_again(sandbox):
    """A folder left by an interrupted download (a config but no checkpoint index) is not taken as done."""
    root, env = sandbox
    add_tool(root, "ngc", FAKE_NGC)
    target = root / "models" / "fine-tuned" / NGC_TARGET
    target.mkdir(parents=True)
    (target / "bert_config.json").write_text("{}")
    (target / "model.ckpt.data-00000-of-00001").write_text("partial")
    result = run(root / "scripts" / "download_model.sh", "base", "384", "v1_1", env=env)
    assert result.returncode == 0, result.stderr
    assert "downloading it again" in result.stdout
    assert len(calls(root)) == 1
    assert leftovers(target) == ["bert_config.json", "model.ckpt.index"]


@pytest.mark.parametrize("argument", ["huge", "fp8", "512", "v3"])
def test_download_model_rejects_an_unknown_choice(sandbox, argument):
    root, env = sandbox
    add_tool(root, "ngc", FAKE_NGC)
    result = run(root / "scripts" / "download_model.sh", argument, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"download_model.sh: error: invalid argument '{argument}'" in result.stderr
    assert not (root / "calls.log").exists() and not (root / "models").exists()


def use_unzip(sandbox_root, unpacker):
    """Puts unzip on the sandbox PATH, or leaves it out so that python3's zipfile is used."""
    if unpacker == "unzip":
        if shutil.which("unzip") is None:
            pytest.skip("unzip is not installed here")
        (sandbox_root / "bin" / "unzip").symlink_to(shutil.which("unzip"))


@pytest.mark.parametrize("unpacker", ["unzip", "python3"])
def test_download_model_falls_back_to_wget(sandbox, unpacker):
    root, env = sandbox
    add_tool(root, "wget", FAKE_WGET)
    use_unzip(root, unpacker)
    with zipfile.ZipFile(root / "served" / "zip", "w") as archive:
        archive.writestr("bert_config.json", "{}")
        archive.writestr("model.ckpt-8144.index", "")
    result = run(root / "scripts" / "download_model.sh", env=env)
    assert result.returncode == 0, result.stderr
    assert calls(root) == [DEFAULT_URL]
    target = root / "models" / "fine-tuned" / DEFAULT_TARGET
    assert leftovers(target) == ["bert_config.json", "model.ckpt-8144.index"]
    assert leftovers(root / "models" / "fine-tuned") == sorted([
        DEFAULT_TARGET, "bert_config.json", "model.ckpt-8144.index"])


@pytest.mark.parametrize("unpacker", ["unzip", "python3"])
def test_download_model_rejects_an_archive_without_a_checkpoint_index(sandbox, unpacker):
    root, env = sandbox
    add_tool(root, "wget", FAKE_WGET)
    use_unzip(root, unpacker)
    with zipfile.ZipFile(root / "served" / "zip", "w") as archive:
        archive.writestr("bert_config.json", "{}")
    result = run(root / "scripts" / "download_model.sh", env=env)
    assert result.returncode != 0
    assert result.stderr == ("download_model.sh: error: the download of nvidia/bert_tf_ckpt_large_qa_squad2_amp_128:"
                             "19.03.1 has no bert_config.json or no checkpoint index (*.index); try again\n")
    assert leftovers(root / "models" / "fine-tuned") == []


@pytest.mark.parametrize("unpacker", ["unzip", "python3"])
def test_download_model_rejects_a_bad_archive(sandbox, unpacker):
    root, env = sandbox
    add_tool(root, "wget", FAKE_WGET)
    use_unzip(root, unpacker)
    (root / "served" / "zip").write_text("<html>not found</html>")
    result = run(root / "scripts" / "download_model.sh", env=env)
    assert result.returncode != 0
    assert result.stderr == f"download_model.sh: error: {DEFAULT_URL} is not a valid zip archive; try again\n"
    assert leftovers(root / "models" / "fine-tuned") == []


def test_download_model_without_any_downloader(sandbox):
    root, env = sandbox
    result = run(root / "scripts" / "download_model.sh", "base", env=env)
    assert result.returncode != 0
    assert result.stderr == ("download_model.sh: error: cannot download: neither the ngc CLI nor "
                             "wget nor curl is installed; install one of them\n")
    assert leftovers(root / "models" / "fine-tuned") == []


def test_download_squad(sandbox):
    root, env = sandbox
    add_tool(root, "wget", FAKE_WGET)
    for split in ("train", "dev"):
        (root / "served" / f"{split}-v1.1.json").write_text(
            json.dumps({"version": "1.1", "data": [{"title": split, "paragraphs": []}]}))
    result = run(root / "scripts" / "download_squad.sh", "v1_1", env=env)
    assert result.returncode == 0, result.stderr
    base = "https://rajpurkar.github.io/SQuAD-explorer/dataset/"
    assert calls(root) == [base + "train-v1.1.json", base + "dev-v1.1.json"]
    assert leftovers(root / "squad") == ["dev-v1.1.json", "train-v1.1.json"]
    assert json.loads((root / "squad" / "dev-v1.1.json").read_text())["data"][0]["title"] == "dev"


def test_download_squad_keeps_nothing_that_is_not_squad_json(sandbox):
    root, env = sandbox
    add_tool(root, "wget", FAKE_WGET)
    (root / "served" / "train-v2.0.json").write_text("<html>rate limited</html>")
    result = run(root / "scripts" / "download_squad.sh", "v2_0", env=env)
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1] == (
        "download_squad.sh: error: https://rajpurkar.github.io/SQuAD-explorer/dataset/"
        "train-v2.0.json did not return SQuAD JSON; try again later")
    assert leftovers(root / "squad") == []


def test_download_squad_without_any_downloader(sandbox):
    root, env = sandbox
    result = run(root / "scripts" / "download_squad.sh", env=env)
    assert result.returncode != 0
    assert result.stderr == ("download_squad.sh: error: cannot download: neither wget nor curl "
                             "is installed; install one of them\n")
    assert leftovers(root / "squad") == []


def test_scripts_are_executable():
    for script in SCRIPTS:
        assert os.access(script, os.X_OK), f"{script.name} is not executable"


def logging_sandbox(root, script, stand_ins):
    """A copy of one script under root/scripts and an environment whose PATH has the basic tools plus
    `stand_ins` ({command: bash text}), which log their calls to root/calls.log."""
    (root / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / script, root / "scripts")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for tool in BASIC_TOOLS + ["sed", "basename"]:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for name, text in stand_ins.items():
        add_tool(root, name, text)
    return {"PATH": str(bin_dir), "HOME": str(root), "CALL_LOG": str(root / "calls.log")}


def test_benchmark_sweep_builds_the_profiles_and_times_every_batch(tmp_path):
    """inference_benchmark.sh with a stand-in `python` that logs each command: -P picks the
    profiles that builder.py gets, -b the batch sizes that perf.py and PyTorch time."""
    env = logging_sandbox(tmp_path, "inference_benchmark.sh", {
        "python": '#!/bin/bash\necho "python $*" >> "$CALL_LOG"\n',
        "torchpython": '#!/bin/bash\necho "torch $*" >> "$CALL_LOG"\n'})
    result = run(tmp_path / "scripts" / "inference_benchmark.sh", "-m", "base", "-s", "128", "-p", "fp16",
                 "-b", "1 2 8", "-P", "1 8", "-t", "torchpython", "-g", "-o", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert calls(tmp_path) == [
        f"python -m helpers.weights random base {out}/engines/random-base.npz --fp16",
        f"python builder.py -m {out}/engines/random-base.npz -o {out}/engines/base-fp16-s128.engine -s 128 "
        f"-b 1 -b 8 --timing-cache {out}/engines/base-fp16-s128.engine.timing_cache --fp16",
        f"python perf.py -e {out}/engines/base-fp16-s128.engine -s 128 -b 1 -b 2 -b 8 -i 200 "
        f"--json {out}/base-fp16-s128.perf.json",
        f"python perf.py -e {out}/engines/base-fp16-s128.engine -s 128 -b 1 -b 2 -b 8 -i 200 --cuda-graph "
        f"--json {out}/base-fp16-s128-graph.perf.json",
        f"torch scripts/pytorch_perf.py --model base -s 128 -b 1 -b 2 -b 8 --json {out}/base-s128.torch.json",
        f"python scripts/benchmark_report.py {out}/*.json -o {out}/benchmark",
    ]


def test_benchmark_sweep_names_engines_after_extra_builder_flags(tmp_path):
    """-x passes builder flags through and keeps their engines and results apart from the plain ones."""
    env = logging_sandbox(tmp_path, "inference_benchmark.sh",
                          {"python": '#!/bin/bash\necho "python $*" >> "$CALL_LOG"\n'})
    result = run(tmp_path / "scripts" / "inference_benchmark.sh", "-m", "large", "-s", "384", "-p", "fp16", "-b", "128",
                 "-x", "--conv-projections --gelu tanh", "-o", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    out, name = tmp_path / "out", "large-fp16-conv-projections-gelu-tanh-s384"
    assert calls(tmp_path)[1:3] == [
        f"python builder.py -m {out}/engines/random-large.npz -o {out}/engines/{name}.engine -s 384 -b 128 "
        f"--timing-cache {out}/engines/{name}.engine.timing_cache --fp16 --conv-projections --gelu tanh",
        f"python perf.py -e {out}/engines/{name}.engine -s 384 -b 128 -i 200 --json {out}/{name}.perf.json",
    ]


def test_benchmark_sweep_gives_fp32_the_workspace_its_attention_needs(tmp_path):
    """BERT-Large fp32 at batch 128, sequence 384 did not build on the H200 with the default 2048 MiB."""
    env = logging_sandbox(tmp_path, "inference_benchmark.sh",
                          {"python": '#!/bin/bash\necho "python $*" >> "$CALL_LOG"\n'})
    result = run(tmp_path / "scripts" / "inference_benchmark.sh", "-m", "large", "-s", "384", "-p", "fp32 fp16",
                 "-b", "128", "-o", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    builds = [call.split(".engine.timing_cache ")[1] for call in calls(tmp_path) if call.startswith("python builder.py")]
    assert builds == ["-w 4096", "--fp16"]


@pytest.mark.parametrize("flags,label,builder_tail,cache", [
    (["-t"], "int8-strict", " --strict", "m-s384.calib"),
    (["-x", "-iln -imh"], "int8-iln-imh", " -iln -imh", "m-s384.calib"),
    (["-t", "-x", "--fp16-projections qkv"], "int8-strict-fp16-projections-qkv", " --strict --fp16-projections qkv",
     "m-s384.calib"),
    (["-t", "-x", "--calib-qkv-max"], "int8-strict-calib-qkv-max", " --strict --calib-qkv-max", "m-s384.calib"),
    (["-t", "-x", "--no-calib-qkv-max"], "int8-strict-no-calib-qkv-max", " --strict --no-calib-qkv-max",
     "m-s384-percentile.calib"),
    ([], "int8", "", "m-s384.calib"),
])
def test_squad_accuracy_labels_what_it_built(tmp_path, flags, label, builder_tail, cache):
    """squad_accuracy.sh with a stand-in `python`: builder.py gets --strict (-t) or the -x flags, and
    the engine, predictions and CSV row are labelled with them."""
    env = logging_sandbox(tmp_path, "squad_accuracy.sh", {"python": (
        '#!/bin/bash\necho "python $*" >> "$CALL_LOG"\n'
        'case "$1" in\n'
        '  squad/evaluate-v1.1.py) echo \'{"exact_match": 1.0, "f1": 2.0}\' ;;\n'
        '  -) cat > /dev/null; echo "$4,$5,$6" ;;\n'
        'esac\n')})
    out = tmp_path / "out"
    result = run(tmp_path / "scripts" / "squad_accuracy.sh", "-m", "models/m.npz", "-v", "vocab.txt", "-d", "dev.json",
                 "-c", "train.json", "-p", "int8", "-o", str(out), *flags, env=env)
    assert result.returncode == 0, result.stderr
    build, infer, score, row = calls(tmp_path)
    assert build == (f"python builder.py -m models/m.npz -o {out}/m-{label}-s384.engine -b 32 -s 384 -v vocab.txt "
                     f"--timing-cache {out}/m-{label}-s384.engine.timing_cache --int8 --calib-num 500 "
                     f"--calib-cache {out}/{cache} -j train.json{builder_tail}")
    assert f"-o {out}/m-{label}-s384.predictions.json" in infer
    assert (out / "accuracy.csv").read_text().splitlines() == [
        "model,precision,sequence_length,exact_match,f1,build_seconds,tensorrt", f"m,{label},384"]
