"""scripts/triton_repository.py: the configs it writes, checked against the engines' ENGINE.json by
parsing them with Triton's own model-config schema (tritonclient's model_config_pb2), and its
refusals. No TensorRT backend runs on the CPU, so the engines here are ENGINE.json files made with
helpers/trt_common.EngineInfo beside stand-in plan bytes."""
import json
import subprocess
import sys

import pytest

from conftest import REPO, require
from helpers.names import INPUT_NAMES, OUTPUT_NAME, PACKED_INPUT_NAMES
from helpers.trt_common import EngineInfo

TRT = "10.11.0.33"


def run(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "triton_repository.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def one_line_error(result):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def parse_config(path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def make_engine(folder, name, batch_sizes, sequence_lengths, varseqlen=False, version=TRT):
    engine = folder / name
    engine.write_bytes(b"stand-in plan " + name.encode())
    EngineInfo(tensorrt_version=version, precision="fp16", batch_sizes=batch_sizes,
               sequence_lengths=sequence_lengths, model={"hidden_size": 384},
               build_options={"varseqlen": varseqlen}).save(engine)
    return engine


@pytest.fixture
def vocab():
    return require(REPO.parent / "shared" / "models" / "minilm-l6-h384-squad11-tf" / "vocab.txt")


def dims(tensor):
    return list(tensor.dims)


def test_padded_engine_config_follows_its_engine_json(tmp_path, vocab):
    from tritonclient.grpc import model_config_pb2 as pb
    engine = make_engine(tmp_path, "padded.engine", [1, 4, 16], [128, 384])
    result = run("-e", engine, "-v", vocab, "-o", tmp_path / "repo", "--tensorrt-version", "10.11.0",
                 "--gpus", "0,1", "--instances-per-gpu", 2)
    assert result.returncode == 0, result.stderr
    info = EngineInfo.load(engine)
    config = parse_config(tmp_path / "repo" / "bert_qa_engine" / "config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert config.max_batch_size == max(info.batch_sizes)
    assert [i.name for i in config.input] == list(INPUT_NAMES)
    assert all(i.data_type == pb.TYPE_INT32 and dims(i) == [-1] and not i.allow_ragged_batch for i in config.input)
    assert [(o.name, o.data_type, dims(o)) for o in config.output] == [(OUTPUT_NAME, pb.TYPE_FP32, [-1, 2, 1, 1])]
    assert list(config.dynamic_batching.preferred_batch_size) == info.batch_sizes
    assert [(g.kind, g.count, list(g.gpus)) for g in config.instance_group] == [(pb.ModelInstanceGroup.KIND_GPU, 2, [0, 1])]
    assert config.parameters["tensorrt_version"].string_value == info.tensorrt_version
    assert config.parameters["plugin_library"].string_value == "libnvinfer_plugin.so"
    assert not config.batch_input and not config.batch_output
    version_dir = tmp_path / "repo" / "bert_qa_engine" / "1"
    assert (version_dir / "model.plan").read_bytes() == engine.read_bytes()
    assert json.loads((version_dir / "ENGINE.json").read_text())["batch_sizes"] == [1, 4, 16]
    setup = json.loads((tmp_path / "repo" / "bert_qa" / "1" / "bert_qa.json").read_text())
    assert setup["engine_max_batch"] == 16 and setup["packed"] is False
    assert setup["options"]["max_seq_length"] == 384  # the engine's longest by default


def test_single_sequence_length_gives_fixed_dims(tmp_path, vocab):
    engine = make_engine(tmp_path, "fixed.engine", [8], [256])
    result = run("-e", engine, "-v", vocab, "-o", tmp_path / "repo", "--tensorrt-version", TRT)
    assert result.returncode == 0, result.stderr
    config = parse_config(tmp_path / "repo" / "bert_qa_engine" / "config.pbtxt")
    assert [dims(i) for i in config.input] == [[256]] * 3
    assert dims(config.output[0]) == [256, 2, 1, 1]
    assert [(g.count, list(g.gpus)) for g in config.instance_group] == [(1, [])]  # every GPU, one instance


def test_packed_engine_config_uses_ragged_batching(tmp_path, vocab):
    from tritonclient.grpc import model_config_pb2 as pb
    engine = make_engine(tmp_path, "packed.engine", [1, 8, 32], [384], varseqlen=True)
    result = run("-e", engine, "-v", vocab, "-o", tmp_path / "repo", "--tensorrt-version", TRT)
    assert result.returncode == 0, result.stderr
    config = parse_config(tmp_path / "repo" / "bert_qa_engine" / "config.pbtxt")
    assert config.max_batch_size == 32
    assert [(i.name, dims(i), i.allow_ragged_batch) for i in config.input] == [
        (name, [-1], True) for name in PACKED_INPUT_NAMES[:2]]
    assert [(b.kind, list(b.target_name), b.data_type, list(b.source_input)) for b in config.batch_input] == [
        (pb.BatchInput.BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO, ["cu_seqlens"], pb.TYPE_INT32, ["input_ids"]),
        (pb.BatchInput.BATCH_MAX_ELEMENT_COUNT_AS_SHAPE, ["max_seqlen"], pb.TYPE_INT32, ["input_ids"])]
    assert [(b.kind, list(b.target_name), list(b.source_input)) for b in config.batch_output] == [
        (pb.BatchOutput.BATCH_SCATTER_WITH_INPUT_SHAPE, [OUTPUT_NAME], ["input_ids"])]
    assert dims(config.output[0]) == [-1, 2, 1, 1]
    assert config.parameters["packed"].string_value == "true"
    setup = json.loads((tmp_path / "repo" / "bert_qa" / "1" / "bert_qa.json").read_text())
    assert setup["packed"] is True


def test_bert_qa_config_and_its_copy_of_helpers(tmp_path, vocab):
    from tritonclient.grpc import model_config_pb2 as pb
    engine = make_engine(tmp_path, "padded.engine", [8], [384])
    result = run("-e", engine, "-v", vocab, "-o", tmp_path / "repo", "--tensorrt-version", TRT,
                 "--max-questions", 16, "--qa-instances", 3)
    assert result.returncode == 0, result.stderr
    config = parse_config(tmp_path / "repo" / "bert_qa" / "config.pbtxt")
    assert config.backend == "python" and config.max_batch_size == 16
    assert [(i.name, i.data_type) for i in config.input] == [("passage", pb.TYPE_STRING), ("question", pb.TYPE_STRING)]
    assert [o.name for o in config.output] == ["answer", "probability", "nbest"]
    assert [(g.kind, g.count) for g in config.instance_group] == [(pb.ModelInstanceGroup.KIND_CPU, 3)]
    version_dir = tmp_path / "repo" / "bert_qa" / "1"
    assert (version_dir / "model.py").read_text() == (REPO / "scripts" / "triton_models" / "bert_qa.py").read_text()
    assert (version_dir / "helpers" / "serving.py").read_text() == (REPO / "helpers" / "serving.py").read_text()
    assert (version_dir / "vocab.txt").read_bytes() == vocab.read_bytes()
    assert not list(version_dir.rglob("__pycache__"))


def test_engine_of_another_tensorrt_version_is_refused(tmp_path, vocab):
    engine = make_engine(tmp_path, "old.engine", [8], [384], version="10.8.0.43")
    line = one_line_error(run("-e", engine, "-v", vocab, "-o", tmp_path / "repo", "--tensorrt-version", "10.11.0.33"))
    assert "built with TensorRT 10.8.0.43" in line and "for TensorRT 10.11.0.33" in line
    assert not (tmp_path / "repo").exists()


def test_tensorrt_version_is_required_without_tensorrt(tmp_path, vocab):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is importable here: its version is the default")
    except ImportError:
        pass
    engine = make_engine(tmp_path, "padded.engine", [8], [384])
    assert "--tensorrt-version" in one_line_error(run("-e", engine, "-v", vocab, "-o", tmp_path / "repo"))


def test_existing_repository_is_kept_unless_forced(tmp_path, vocab):
    engine = make_engine(tmp_path, "padded.engine", [8], [384])
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "keep.txt").write_text("mine")
    line = one_line_error(run("-e", engine, "-v", vocab, "-o", repo, "--tensorrt-version", TRT))
    assert f"{repo} already exists; pass --force" in line
    assert (repo / "keep.txt").read_text() == "mine"
    result = run("-e", engine, "-v", vocab, "-o", repo, "--tensorrt-version", TRT, "--force")
    assert result.returncode == 0, result.stderr
    assert not (repo / "keep.txt").exists() and (repo / "bert_qa_engine" / "config.pbtxt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_other_bad_input(tmp_path, vocab):
    engine = make_engine(tmp_path, "padded.engine", [8], [384])
    bare = tmp_path / "bare.engine"
    bare.write_bytes(b"plan without ENGINE.json")
    assert "ENGINE.json" in one_line_error(run("-e", bare, "-v", vocab, "-o", tmp_path / "r1", "--tensorrt-version", TRT))
    assert "sequence lengths [384], not 128" in one_line_error(
        run("-e", engine, "-v", vocab, "-o", tmp_path / "r2", "--tensorrt-version", TRT, "-s", 128))
    assert "--gpus" in one_line_error(run("-e", engine, "-v", vocab, "-o", tmp_path / "r3", "--tensorrt-version", TRT,
                                          "--gpus", "first"))
    assert "no such vocabulary file" in one_line_error(
        run("-e", engine, "-v", tmp_path / "none.txt", "-o", tmp_path / "r4", "--tensorrt-version", TRT))
    assert "--instances-per-gpu must be at least 1" in one_line_error(
        run("-e", engine, "-v", vocab, "-o", tmp_path / "r5", "--tensorrt-version", TRT, "--instances-per-gpu", 0))
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 6))
