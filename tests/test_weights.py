"""Checkpoint loading (helpers/weights.py) against TensorFlow and safetensors themselves."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from helpers import weights as W
from helpers.weights import BertConfig, WeightsError
from helpers.files import OutputError

TINY = BertConfig(num_hidden_layers=2, hidden_size=8, num_attention_heads=2, intermediate_size=16,
                  vocab_size=20, max_position_embeddings=16)

# Where each canonical per-layer tensor lives in a Google BERT checkpoint, spelled out here
# independently of the loader's own table.
GOOGLE_LAYER_NAMES = {
    "attention.query.kernel": "attention/self/query/kernel",
    "attention.query.bias": "attention/self/query/bias",
    "attention.key.kernel": "attention/self/key/kernel",
    "attention.key.bias": "attention/self/key/bias",
    "attention.value.kernel": "attention/self/value/kernel",
    "attention.value.bias": "attention/self/value/bias",
    "attention.output.kernel": "attention/output/dense/kernel",
    "attention.output.bias": "attention/output/dense/bias",
    "attention.layer_norm.gamma": "attention/output/LayerNorm/gamma",
    "attention.layer_norm.beta": "attention/output/LayerNorm/beta",
    "intermediate.kernel": "intermediate/dense/kernel",
    "intermediate.bias": "intermediate/dense/bias",
    "output.kernel": "output/dense/kernel",
    "output.bias": "output/dense/bias",
    "output.layer_norm.gamma": "output/LayerNorm/gamma",
    "output.layer_norm.beta": "output/LayerNorm/beta",
}
GOOGLE_OTHER_NAMES = {
    "embeddings.word_embeddings": "bert/embeddings/word_embeddings",
    "embeddings.position_embeddings": "bert/embeddings/position_embeddings",
    "embeddings.token_type_embeddings": "bert/embeddings/token_type_embeddings",
    "embeddings.layer_norm.gamma": "bert/embeddings/LayerNorm/gamma",
    "embeddings.layer_norm.beta": "bert/embeddings/LayerNorm/beta",
    "qa.kernel": "cls/squad/output_weights",
    "qa.bias": "cls/squad/output_bias",
}


def google_name(canonical: str) -> str:
    if canonical in GOOGLE_OTHER_NAMES:
        return GOOGLE_OTHER_NAMES[canonical]
    _, index, rest = canonical.split(".", 2)
    return f"bert/encoder/layer_{index}/{GOOGLE_LAYER_NAMES[rest]}"


def google_tensor(canonical: str, weight: np.ndarray) -> np.ndarray:
    """The checkpoint stores the QA kernel as [2, hidden]; everything else as canonical."""
    return weight.T if canonical == "qa.kernel" else weight


def tiny_weights(seed=0):
    """TINY weights with every value distinct, so a swapped or transposed tensor shows."""
    weights = W.random_weights(TINY, seed)
    rng = np.random.default_rng(seed + 1)
    return {name: (w + rng.standard_normal(w.shape)).astype(np.float32)
            for name, w in weights.items()}


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("tensorflow")


def write_tf_checkpoint(tf, prefix, tensors: dict):
    """A name-based (Google BERT style) checkpoint holding exactly `tensors` (name -> tf.Tensor)."""
    names = list(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tensors[name] for name in names])


def tiny_checkpoint(tf, directory, weights, dtype=None, drop=(), extra=None, name="model.ckpt-7"):
    dtype = dtype or tf.float32
    tensors = {google_name(n): tf.cast(tf.constant(google_tensor(n, w)), dtype)
               for n, w in weights.items() if n not in drop}
    tensors.update(extra or {})
    directory.mkdir(exist_ok=True)
    write_tf_checkpoint(tf, directory / name, tensors)
    (directory / "bert_config.json").write_text(json.dumps(
        {**TINY.to_dict(), "hidden_act": "gelu"}))
    return directory / name


# --- BertConfig ---------------------------------------------------------------------------------


def test_config_from_both_test_models(tf_model, hf_model):
    google = BertConfig.from_json(tf_model / "bert_config.json")
    hugging = BertConfig.from_json(hf_model / "config.json")
    assert (google.num_attention_heads, google.head_size) == (12, 32)
    assert (hugging.num_attention_heads, hugging.head_size) == (6, 64)
    for config in (google, hugging):
        assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size,
                config.vocab_size, config.gelu) == (6, 384, 1536, 30522, "erf")
        assert BertConfig.from_json(config.to_dict()) == config


@pytest.mark.parametrize("hidden_act, form", [("gelu", "erf"), ("gelu_new", "tanh"),
                                              ("gelu_fast", "tanh"), ("gelu_pytorch_tanh", "tanh")])
def test_config_gelu_form(hidden_act, form):
    fields = {**TINY.to_dict(), "hidden_act": hidden_act}
    del fields["gelu"]
    assert BertConfig.from_json(fields).gelu == form


def test_config_presets():
    assert (W.BERT_BASE.head_size, W.BERT_LARGE.head_size) == (64, 64)
    # The published sizes of BertModel (109,482,240 and 335,141,888) include the pooler, which
    # SQuAD models do not use, and exclude the QA head.
    for config, published in ((W.BERT_BASE, 109_482_240), (W.BERT_LARGE, 335_141_888)):
        H = config.hidden_size
        counted = sum(int(np.prod(shape)) for shape in W.expected_shapes(config).values())
        assert counted == published - (H * H + H) + (2 * H + 2)


@pytest.mark.parametrize("change, words", [
    ({"hidden_act": "relu"}, ["hidden_act 'relu'", "gelu_new"]),
    ({"num_attention_heads": 3}, ["not divisible", "num_attention_heads 3"]),
    ({"hidden_size": 0}, ["hidden_size must be a positive integer"]),
    ({"position_embedding_type": "relative_key"}, ["relative_key"]),
])
def test_config_rejects(change, words):
    fields = {**TINY.to_dict(), **change}
    del fields["gelu"]
    with pytest.raises(WeightsError) as error:
        BertConfig.from_json(fields)
    assert all(word in str(error.value) for word in words)


def test_config_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="config file not found"):
        BertConfig.from_json(tmp_path / "bert_config.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(WeightsError, match="cannot read config"):
        BertConfig.from_json(tmp_path / "broken.json")
    (tmp_path / "partial.json").write_text(json.dumps({"hidden_size": 8, "num_hidden_layers": 2}))
    with pytest.raises(WeightsError, match="no num_attention_heads, intermediate_size, vocab_size"):
        BertConfig.from_json(tmp_path / "partial.json")


# --- TensorFlow checkpoints ---------------------------------------------------------------------


def test_tf_loader_equals_tensorflow(tf, tf_model):
    config, weights = W.load_weights(tf_model / "model.ckpt-4149")
    reader = tf.train.load_checkpoint(str(tf_model / "model.ckpt-4149"))
    assert set(weights) == set(W.expected_shapes(config))
    for name, weight in weights.items():
        assert weight.dtype == np.float32 and weight.flags.c_contiguous
        stored = reader.get_tensor(google_name(name))
        np.testing.assert_array_equal(weight, google_tensor(name, stored))
    used = {google_name(name) for name in weights}
    ignored = set(reader.get_variable_to_shape_map()) - used
    assert ignored == {"global_step", "bert/pooler/dense/kernel", "bert/pooler/dense/bias"}


def test_tf_loader_reads_any_float_and_ignores_training_state(tf, tmp_path):
    weights = tiny_weights()
    extra = {"global_step": tf.constant(4149, tf.int64),
             "loss_scale": tf.constant(32768.0),
             "bert/pooler/dense/kernel": tf.zeros([8, 8]),
             "bert/encoder/layer_0/attention/self/query/kernel/adam_m": tf.zeros([8, 8]),
             "bert/encoder/layer_0/attention/self/query/kernel/adam_v": tf.zeros([8, 8]),
             "bert/encoder/layer_1/output/dense/bias/Momentum": tf.zeros([8])}
    for dtype in (tf.float32, tf.float16, tf.bfloat16):
        prefix = tiny_checkpoint(tf, tmp_path / dtype.name, weights, dtype=dtype, extra=extra)
        loaded = W.load_tf_checkpoint(prefix, TINY)
        assert set(loaded) == set(weights)
        for name, weight in weights.items():
            rounded = tf.cast(tf.cast(weight, dtype), tf.float32).numpy()
            assert loaded[name].dtype == np.float32
            np.testing.assert_array_equal(loaded[name], rounded, err_msg=name)


def test_tf_checkpoint_named_every_way(tf, tmp_path):
    weights = tiny_weights()
    prefix = tiny_checkpoint(tf, tmp_path / "ckpt", weights)
    data_file = tmp_path / "ckpt" / "model.ckpt-7.data-00000-of-00001"
    for name in (prefix, str(prefix) + ".index", data_file, tmp_path / "ckpt"):
        config, loaded = W.load_weights(name)
        assert config == TINY
        np.testing.assert_array_equal(loaded["layer.1.output.kernel"],
                                      weights["layer.1.output.kernel"])
    # The `checkpoint` file of a training run names the checkpoint by its path on that machine.
    tiny_checkpoint(tf, tmp_path / "ckpt", tiny_weights(seed=5), name="model.ckpt-9")
    with pytest.raises(WeightsError, match="holds 2 checkpoints"):
        W.load_weights(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "checkpoint").write_text(
        'model_checkpoint_path: "/somewhere/else/model.ckpt-9"\n'
        'all_model_checkpoint_paths: "/somewhere/else/model.ckpt-7"\n')
    _, loaded = W.load_weights(tmp_path / "ckpt")
    np.testing.assert_array_equal(loaded["qa.bias"], tiny_weights(seed=5)["qa.bias"])


def test_tf_checkpoint_errors(tf, tmp_path):
    weights = tiny_weights()
    prefix = tiny_checkpoint(tf, tmp_path / "a", weights,
                             drop={"layer.1.attention.value.kernel"})
    with pytest.raises(WeightsError) as error:
        W.load_weights(prefix)
    message = str(error.value)
    assert ("layer.1.attention.value.kernel (bert/encoder/layer_1/attention/self/value/kernel) "
            "is missing (expected shape [8, 8])") in message and "\n" not in message

    prefix = tiny_checkpoint(tf, tmp_path / "b", weights, drop={"qa.kernel", "qa.bias"})
    with pytest.raises(WeightsError, match="no SQuAD output layer"):
        W.load_weights(prefix)

    wrong = {**weights, "layer.0.intermediate.kernel": np.zeros((8, 12), np.float32)}
    prefix = tiny_checkpoint(tf, tmp_path / "c", wrong)
    with pytest.raises(WeightsError, match=r"layer.0.intermediate.kernel \(bert/encoder/layer_0/"
                                           r"intermediate/dense/kernel\) has shape \[8, 12\], "
                                           r"expected \[8, 16\]"):
        W.load_weights(prefix)

    prefix = tiny_checkpoint(tf, tmp_path / "d", weights)
    with pytest.raises(WeightsError, match="has 2 layers but the config says 1"):
        W.load_tf_checkpoint(prefix, dataclasses.replace(TINY, num_hidden_layers=1))
    with pytest.raises(WeightsError, match=r"layer.2.attention.query.kernel .* is missing"):
        W.load_tf_checkpoint(prefix, dataclasses.replace(TINY, num_hidden_layers=3))

    (tmp_path / "d" / "bert_config.json").unlink()
    with pytest.raises(WeightsError, match="no bert_config.json next to .*; pass the model's"):
        W.load_weights(prefix)
    config, _ = W.load_weights(prefix, config_path=tmp_path / "a" / "bert_config.json")
    assert config == TINY

    (tmp_path / "e").mkdir()
    with pytest.raises(WeightsError, match=r"no TensorFlow checkpoint \(\*.index\) or "
                                           r"model.safetensors in"):
        W.load_weights(tmp_path / "e")
    with pytest.raises(WeightsError, match="no such file or directory"):
        W.load_weights(tmp_path / "e" / "model.ckpt-1")
    (tmp_path / "e" / "model.ckpt-1.index").write_bytes(b"not a checkpoint")
    (tmp_path / "e" / "bert_config.json").write_text(json.dumps(TINY.to_dict()))
    with pytest.raises(WeightsError, match="no model.ckpt-1.data-00000-of-00001 beside"):
        W.load_weights(tmp_path / "e" / "model.ckpt-1")
    (tmp_path / "e" / "model.ckpt-1.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(WeightsError, match="cannot read TensorFlow checkpoint"):
        W.load_weights(tmp_path / "e" / "model.ckpt-1")


def write_config(directory, **changes):
    path = directory / "changed_config.json"
    path.write_text(json.dumps({**TINY.to_dict(), **changes}))
    return path


# --- Hugging Face folders -----------------------------------------------------------------------


def test_hf_loader_equals_safetensors(hf_model):
    from safetensors import safe_open

    config, weights = W.load_weights(hf_model)
    assert config.num_attention_heads == 6
    with safe_open(str(hf_model / "model.safetensors"), framework="np") as f:
        stored = {key: f.get_tensor(key).astype(np.float32) for key in f.keys()}
    np.testing.assert_array_equal(weights["embeddings.word_embeddings"],
                                  stored["bert.embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(weights["layer.5.attention.key.kernel"],
                                  stored["bert.encoder.layer.5.attention.self.key.weight"].T)
    np.testing.assert_array_equal(weights["layer.2.intermediate.kernel"],
                                  stored["bert.encoder.layer.2.intermediate.dense.weight"].T)
    np.testing.assert_array_equal(weights["layer.3.output.layer_norm.beta"],
                                  stored["bert.encoder.layer.3.output.LayerNorm.bias"])
    np.testing.assert_array_equal(weights["qa.kernel"], stored["qa_outputs.weight"].T)
    total = sum(np.size(v) for key, v in stored.items() if "position_ids" not in key)
    assert W.parameter_count(weights) == total  # every stored tensor used, none twice


def write_hf_folder(directory, weights, prefix="bert.", dtype=None, drop=()):
    """A BertForQuestionAnswering folder written with torch, as transformers would."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from test_reference import to_hf_state_dict

    state = {key: value for key, value in to_hf_state_dict(weights).items() if key not in drop}
    if prefix != "bert.":
        state = {key.replace("bert.", prefix, 1): value for key, value in state.items()}
    state = {key: value.to(dtype or torch.float32).contiguous() for key, value in state.items()}
    directory.mkdir()
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(
        {"model_type": "bert", "hidden_act": "gelu", **{k: v for k, v in TINY.to_dict().items()
                                                         if k != "gelu"}}))


def test_hf_folder_without_prefix_and_in_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("ml_dtypes")
    weights = tiny_weights()
    write_hf_folder(tmp_path / "bare", weights, prefix="")
    _, loaded = W.load_weights(tmp_path / "bare")
    for name in weights:
        np.testing.assert_array_equal(loaded[name], weights[name], err_msg=name)
    write_hf_folder(tmp_path / "bf16", weights, dtype=torch.bfloat16)
    _, loaded = W.load_weights(tmp_path / "bf16" / "model.safetensors")
    rounded = torch.tensor(weights["layer.0.intermediate.kernel"]).bfloat16().float().numpy()
    np.testing.assert_array_equal(loaded["layer.0.intermediate.kernel"], rounded)


def test_hf_folder_errors(tmp_path):
    weights = tiny_weights()
    write_hf_folder(tmp_path / "noqa", weights, drop={"qa_outputs.weight", "qa_outputs.bias"})
    with pytest.raises(WeightsError, match=r"qa.kernel \(qa_outputs.weight\) is missing .*"
                                           r"no SQuAD output layer"):
        W.load_weights(tmp_path / "noqa")
    with pytest.raises(WeightsError, match="has 2 layers but the config says 1"):
        W.load_weights(tmp_path / "noqa", config_path=write_config(tmp_path, num_hidden_layers=1))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text(json.dumps(TINY.to_dict()))
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(WeightsError, match="no model.safetensors in .*save_pretrained"):
        W.load_weights(tmp_path / "bin")
    (tmp_path / "bin" / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError, match="cannot read .*model.safetensors"):
        W.load_weights(tmp_path / "bin")


# --- canonical .npz -----------------------------------------------------------------------------


def test_npz_round_trip_float32_exact(tf, tf_model, tmp_path):
    config, weights = W.load_weights(tf_model)
    W.save_weights(tmp_path / "tf.npz", config, weights)
    config_back, weights_back = W.load_weights(tmp_path / "tf.npz")
    assert config_back == config and set(weights_back) == set(weights)
    for name in weights:
        np.testing.assert_array_equal(weights_back[name], weights[name])


def test_npz_float16_exact_for_float16_model_and_half_size(hf_model, tmp_path):
    config, weights = W.load_weights(hf_model)
    W.save_weights(tmp_path / "half.npz", config, weights, dtype=np.float16)
    W.save_weights(tmp_path / "full.npz", config, weights)
    _, weights_back = W.load_weights(tmp_path / "half.npz", config_path=hf_model / "config.json")
    for name in weights:
        assert weights_back[name].dtype == np.float32
        np.testing.assert_array_equal(weights_back[name], weights[name])
    half, full = (os.path.getsize(tmp_path / f) for f in ("half.npz", "full.npz"))
    assert half < 0.51 * full and half < 64 * 2**20


def test_save_is_atomic_and_validated(tmp_path, monkeypatch):
    weights = tiny_weights()
    target = tmp_path / "model.npz"
    W.save_weights(target, TINY, weights)
    before = target.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        W.save_weights(target, TINY, tiny_weights(seed=3))
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]

    incomplete = {k: v for k, v in weights.items() if k != "layer.0.output.bias"}
    with pytest.raises(WeightsError,
                       match=r"layer.0.output.bias is missing \(expected shape \[8\]\)"):
        W.save_weights(tmp_path / "other.npz", TINY, incomplete)
    extra = {**weights, "layer.2.output.bias": np.zeros(8, np.float32)}
    with pytest.raises(WeightsError, match="unexpected tensor layer.2.output.bias"):
        W.save_weights(tmp_path / "other.npz", TINY, extra)
    huge = {**weights, "qa.bias": np.array([1e6, 0], np.float32)}
    with pytest.raises(WeightsError, match="qa.bias has values beyond the float16 range"):
        W.save_weights(tmp_path / "other.npz", TINY, huge, dtype=np.float16)
    with pytest.raises(OutputError, match="does not exist"):
        W.save_weights(tmp_path / "missing" / "other.npz", TINY, weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(WeightsError, match="not a bert-trt weights file"):
        W.load_weights(tmp_path / "foreign.npz")
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="garbage.npz"):
        W.load_weights(tmp_path / "garbage.npz")
    with pytest.raises(WeightsError, match="no such file"):
        W.load_weights(tmp_path / "absent.npz")
    W.save_weights(tmp_path / "tiny.npz", TINY, tiny_weights())
    other = write_config(tmp_path, num_hidden_layers=3)
    with pytest.raises(WeightsError, match="does not describe the model"):
        W.load_weights(tmp_path / "tiny.npz", config_path=other)


def test_random_weights_are_bert_like():
    weights = W.random_weights(TINY, seed=1)
    W.validate(TINY, weights)
    kernel = W.random_weights(W.BERT_BASE)["layer.0.intermediate.kernel"]
    assert abs(kernel.std() - 0.02) < 2e-4 and abs(kernel.mean()) < 2e-4
    assert np.all(weights["layer.1.output.layer_norm.gamma"] == 1)
    assert np.all(weights["layer.1.output.layer_norm.beta"] == 0)
    assert np.all(weights["qa.bias"] == 0)
    again = W.random_weights(TINY, seed=1)
    assert all(np.array_equal(weights[n], again[n]) for n in weights)
    assert not np.array_equal(W.random_weights(TINY, seed=2)["qa.kernel"], weights["qa.kernel"])


def test_check_vocab(tf_model):
    config = BertConfig.from_json(tf_model / "bert_config.json")
    lines = (tf_model / "vocab.txt").read_text(encoding="utf-8").splitlines()
    W.check_vocab(config, len(lines))
    with pytest.raises(WeightsError, match="vocab.txt has 28996 tokens but the model has 30522; "
                                           "pass the vocab file that came with the checkpoint"):
        W.check_vocab(config, 28996)


# --- command line -------------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "helpers.weights", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_convert_and_random(hf_model, tmp_path):
    done = run_cli("convert", hf_model, tmp_path / "hf.npz", "--fp16")
    assert done.returncode == 0, done.stderr
    assert "6 heads of 64" in done.stdout and "float16" in done.stdout
    config, weights = W.load_weights(tmp_path / "hf.npz")
    assert config == BertConfig.from_json(hf_model / "config.json")

    fields = {**TINY.to_dict(), "hidden_act": "gelu_new"}
    del fields["gelu"]
    (tmp_path / "tiny.json").write_text(json.dumps(fields))
    done = run_cli("random", tmp_path / "tiny.json", tmp_path / "tiny.npz", "--seed", 4)
    assert done.returncode == 0, done.stderr
    config, weights = W.load_weights(tmp_path / "tiny.npz")
    expected = W.random_weights(dataclasses.replace(TINY, gelu="tanh"), seed=4)
    assert config.gelu == "tanh"
    assert all(np.array_equal(weights[n], expected[n]) for n in expected)


@pytest.mark.parametrize("args, message", [
    (("convert", "no/such/model", "out.npz"), "python -m helpers.weights: error: no such file or directory: no/such/model"),
    (("convert", "OUT_DIR", "out.txt"), "python -m helpers.weights: error: output file out.txt must end in .npz"),
    (("random", "huge", "out.npz"), "python -m helpers.weights: error: config file not found: huge"),
])
def test_cli_errors_are_one_line(args, message, tmp_path):
    args = [str(tmp_path) if a == "OUT_DIR" else a for a in args]
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps(TINY.to_dict()))
    done = run_cli(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message), done.stderr
    assert not os.path.exists(REPO / "out.npz") and not os.path.exists(REPO / "out.txt")


def test_tensorflow_is_needed_only_for_tf_checkpoints(hf_model, tmp_path, monkeypatch):
    code = ("import sys; from helpers.weights import load_weights; load_weights(sys.argv[1]); "
            "print('tensorflow' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(hf_model)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr
    W.save_weights(tmp_path / "tiny.npz", TINY, tiny_weights())
    (tmp_path / "model.ckpt-1.index").write_bytes(b"")
    (tmp_path / "model.ckpt-1.data-00000-of-00001").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import now fails as if not installed
    with pytest.raises(WeightsError, match="needs TensorFlow: pip install tensorflow-cpu, or "
                                           "convert it to .npz"):
        W.load_tf_checkpoint(tmp_path / "model.ckpt-1", TINY)
