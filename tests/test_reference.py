"""The numpy reference BERT-QA (helpers/reference.py) against transformers' BertForQuestionAnswering
(PyTorch on CPU, float32, eager attention), on real SQuAD dev questions."""
import dataclasses
import json
import math

import numpy as np
import pytest

from conftest import HF_MODEL, SQUAD_DIR, require
from helpers import reference as R
from helpers.weights import BERT_BASE, load_weights, random_weights

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-4  # max |logit difference| allowed against transformers in float32

# transformers' names for the canonical per-layer tensors, spelled out independently of the loader.
HF_LINEAR = {"attention.self.query": "attention.query", "attention.self.key": "attention.key",
             "attention.self.value": "attention.value",
             "attention.output.dense": "attention.output",
             "intermediate.dense": "intermediate", "output.dense": "output"}
HF_LAYER_NORM = {"attention.output.LayerNorm": "attention.layer_norm",
                 "output.LayerNorm": "output.layer_norm"}


def to_hf_state_dict(weights: dict) -> dict:
    """Canonical weights -> BertForQuestionAnswering state dict; torch's Linear weights are
    (out, in)."""
    def tensor(array):
        return torch.from_numpy(np.ascontiguousarray(array))

    state = {f"bert.embeddings.{name}.weight": tensor(weights[f"embeddings.{name}"])
             for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")}
    state["bert.embeddings.LayerNorm.weight"] = tensor(weights["embeddings.layer_norm.gamma"])
    state["bert.embeddings.LayerNorm.bias"] = tensor(weights["embeddings.layer_norm.beta"])
    layers = sum(name.endswith(".attention.query.kernel") for name in weights)
    for i in range(layers):
        theirs_at, ours_at = f"bert.encoder.layer.{i}", f"layer.{i}"
        for theirs, ours in HF_LINEAR.items():
            state[f"{theirs_at}.{theirs}.weight"] = tensor(weights[f"{ours_at}.{ours}.kernel"].T)
            state[f"{theirs_at}.{theirs}.bias"] = tensor(weights[f"{ours_at}.{ours}.bias"])
        for theirs, ours in HF_LAYER_NORM.items():
            state[f"{theirs_at}.{theirs}.weight"] = tensor(weights[f"{ours_at}.{ours}.gamma"])
            state[f"{theirs_at}.{theirs}.bias"] = tensor(weights[f"{ours_at}.{ours}.beta"])
    state["qa_outputs.weight"] = tensor(weights["qa.kernel"].T)
    state["qa_outputs.bias"] = tensor(weights["qa.bias"])
    return state


def hf_model_from(config, weights):
    hf_config = transformers.BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act={"erf": "gelu", "tanh": "gelu_new"}[config.gelu],
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps,
        attn_implementation="eager")
    model = transformers.BertForQuestionAnswering(hf_config).eval()
    model.load_state_dict(to_hf_state_dict(weights), strict=True)
    return model


def hf_logits(model, features):
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(features["input_ids"]),
                    token_type_ids=torch.from_numpy(features["segment_ids"]),
                    attention_mask=torch.from_numpy(features["input_mask"]))
    return out.start_logits.numpy(), out.end_logits.numpy()


def max_difference(ours, theirs, where=Ellipsis):
    return max(float(np.abs(a - b)[where].max()) for a, b in zip(ours, theirs))


def compare(label, ours, theirs, features):
    """Max |logit difference| on real tokens, which answers are read from, and on all positions.

    Padding positions see only real keys too, but their logits are never read and float32
    rounding alone moves them by ~1e-4 (both models against float64), so they get a looser bound.
    """
    real = features["input_mask"] == 1
    on_real, everywhere = max_difference(ours, theirs, real), max_difference(ours, theirs)
    print(f"{label}: max |logit difference| {on_real:.1e} on real tokens, {everywhere:.1e} on all")
    assert on_real < TOLERANCE and everywhere < 4 * TOLERANCE


@pytest.fixture(scope="module")
def squad_questions():
    """(question, context) of four dev-v1.1 articles; at 128 tokens one of them is padded, at 384
    three are, and one is cut."""
    data = json.loads(require(SQUAD_DIR / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    paragraphs = [data[article]["paragraphs"][0] for article in (0, 7, 19, 33)]
    return [(p["qas"][0]["question"], p["context"]) for p in paragraphs]


def tokenize(squad_questions, seq_len):
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(require(HF_MODEL / "vocab.txt")),
                                               do_lower_case=True)
    questions, contexts = zip(*squad_questions)
    encoded = tokenizer(list(questions), list(contexts), max_length=seq_len, padding="max_length",
                        truncation="only_second", return_tensors="np")
    features = {"input_ids": encoded["input_ids"], "segment_ids": encoded["token_type_ids"],
                "input_mask": encoded["attention_mask"]}
    features = {name: array.astype(np.int64) for name, array in features.items()}
    assert 0 < features["input_mask"].sum() < features["input_mask"].size  # some padding
    return features


def run_reference(model, features):
    return model(features["input_ids"], features["segment_ids"], features["input_mask"])


@pytest.mark.parametrize("seq_len", [128, 384])
def test_hf_model_matches_transformers(hf_model, squad_questions, seq_len):
    features = tokenize(squad_questions, seq_len)
    config, weights = load_weights(hf_model)
    theirs = transformers.BertForQuestionAnswering.from_pretrained(
        hf_model, dtype=torch.float32, attn_implementation="eager").eval()
    ours = run_reference(R.ReferenceModel(config, weights), features)
    assert ours[0].shape == ours[1].shape == (4, seq_len) and ours[0].dtype == np.float32
    compare(f"6-head HF model, 4 x {seq_len}", ours, hf_logits(theirs, features), features)


def test_tf_checkpoint_matches_transformers(tf_model, squad_questions):
    pytest.importorskip("tensorflow")
    features = tokenize(squad_questions, 384)
    config, weights = load_weights(tf_model)
    assert config.num_attention_heads == 12
    theirs = hf_model_from(config, weights)
    ours = run_reference(R.ReferenceModel(config, weights), features)
    compare("12-head TF checkpoint, 4 x 384", ours, hf_logits(theirs, features), features)
    # In float64 the two agree to rounding: no difference in the math, only in float32 noise.
    ours = run_reference(R.ReferenceModel(config, weights, np.float64), features)
    difference = max_difference(ours, hf_logits(theirs.double(), features))
    print(f"12-head TF checkpoint, float64 on both sides: max |logit difference| {difference:.1e}")
    assert difference < 1e-7


@pytest.mark.parametrize("gelu", ["erf", "tanh"])
def test_random_bert_base_matches_transformers(gelu):
    config = dataclasses.replace(BERT_BASE, gelu=gelu)
    weights = random_weights(config, seed=1)
    # Non-trivial biases and LayerNorm parameters, so that a misplaced one shows.
    rng = np.random.default_rng(2)
    for name, weight in weights.items():
        if name.endswith((".bias", ".beta")):
            weight += rng.normal(0, 0.1, weight.shape).astype(np.float32)
        elif name.endswith(".gamma"):
            weight += rng.normal(0, 0.2, weight.shape).astype(np.float32)
    input_ids = rng.integers(0, config.vocab_size, (2, 32))
    segment_ids = (np.arange(32) >= 12).astype(np.int64) * np.ones((2, 1), np.int64)
    input_mask = np.ones((2, 32), np.int64)
    input_mask[1, 20:] = 0
    features = {"input_ids": input_ids, "segment_ids": segment_ids, "input_mask": input_mask}
    ours = run_reference(R.ReferenceModel(config, weights), features)
    theirs = hf_logits(hf_model_from(config, weights), features)
    compare(f"random BERT-Base, {gelu} GELU, 2 x 32", ours, theirs, features)


def test_precisions(hf_model, squad_questions):
    features = tokenize(squad_questions, 128)
    config, weights = load_weights(hf_model)
    exact = run_reference(R.ReferenceModel(config, weights, np.float64), features)
    single = run_reference(R.ReferenceModel(config, weights), features)
    half = run_reference(R.ReferenceModel(config, weights, np.float16), features)
    assert exact[0].dtype == np.float64 and half[0].dtype == np.float32
    single_error, half_error = max_difference(single, exact), max_difference(half, exact)
    print(f"max |logit error| against float64: float32 {single_error:.2e}, "
          f"float16 {half_error:.2e}")
    assert single_error < 1e-4
    assert 10 * single_error < half_error < 0.1
    np.testing.assert_array_equal(np.argmax(half[0], axis=1), np.argmax(exact[0], axis=1))


def test_padding_does_not_change_real_tokens(hf_model, squad_questions):
    features = tokenize(squad_questions, 128)
    config, weights = load_weights(hf_model)
    model = R.ReferenceModel(config, weights)
    padded = features["input_mask"] == 0
    other = dict(features, input_ids=np.where(padded, 1996, features["input_ids"]),
                 segment_ids=np.where(padded, 1, features["segment_ids"]))
    before, after = run_reference(model, features), run_reference(model, other)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a[~padded], b[~padded], rtol=0, atol=1e-6)
        assert not np.allclose(a[padded], b[padded])


def test_erf_accuracy():
    z = np.concatenate([np.linspace(-8, 8, 160_001), [1e-300, -1e-12, 5.9999, 6.0001, 30.0]])
    exact = np.array([math.erf(v) for v in z])
    error = float(np.abs(R.erf(z) - exact).max())
    print(f"erf: max |error| {error:.1e} against math.erf")
    assert error < 1e-10
    special = R.erf(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]))
    np.testing.assert_array_equal(special, [0.0, -0.0, 1.0, -1.0, np.nan])
    tiny = np.array([1e-300, -1e-12, 3e-8])
    np.testing.assert_allclose(R.erf(tiny), 2 / math.sqrt(math.pi) * tiny, rtol=1e-9)
    assert R.erf(np.zeros((3, 0, 2))).shape == (3, 0, 2)


@pytest.mark.parametrize("form, approximate", [("erf", "none"), ("tanh", "tanh")])
def test_gelu_matches_torch(form, approximate):
    x = np.linspace(-12, 12, 100_001).reshape(11, -1, 1)
    theirs = torch.nn.functional.gelu(torch.from_numpy(x), approximate=approximate).numpy()
    ours = R.gelu(x, form)
    assert ours.shape == x.shape and ours.dtype == np.float64
    assert np.abs(ours - theirs).max() < 1e-9
    assert R.gelu(x.astype(np.float32), form).dtype == np.float32


def test_layer_norm_and_softmax_match_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, (4, 5, 16)).astype(np.float32)
    gamma = rng.normal(1, 0.2, 16).astype(np.float32)
    beta = rng.normal(0, 0.2, 16).astype(np.float32)
    theirs = torch.nn.functional.layer_norm(torch.from_numpy(x), (16,), torch.from_numpy(gamma),
                                            torch.from_numpy(beta), eps=1e-12).numpy()
    np.testing.assert_allclose(R.layer_norm(x, gamma, beta, 1e-12), theirs, rtol=0, atol=2e-6)
    scores = x * 10
    exact = torch.softmax(torch.from_numpy(scores).double(), -1).numpy()
    np.testing.assert_allclose(R.softmax(scores), exact, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("change, message", [
    (lambda f: {name: np.zeros((1, 513), np.int64) for name in f}, "sequence length 513 is"),
    (lambda f: dict(f, input_ids=f["input_ids"] + 30522), r"input_ids must lie in \[0, 30522\)"),
    (lambda f: dict(f, segment_ids=f["segment_ids"] + 2), r"segment_ids must lie in \[0, 2\)"),
    (lambda f: dict(f, input_mask=f["input_mask"][:, :5]), "must all be \\[batch, seq\\]"),
    (lambda f: dict(f, input_ids=f["input_ids"][0]), "must all be \\[batch, seq\\]"),
    (lambda f: dict(f, input_mask=f["input_mask"].astype(np.float32)), "must be integer arrays"),
], ids=["too long", "unknown id", "bad segment", "shapes differ", "not 2-D", "float mask"])
def test_bad_inputs(change, message):
    config = dataclasses.replace(BERT_BASE, num_hidden_layers=1)
    model = R.ReferenceModel(config, random_weights(config))
    features = {"input_ids": np.full((2, 8), 7), "segment_ids": np.zeros((2, 8), np.int64),
                "input_mask": np.ones((2, 8), np.int64)}
    run_reference(model, features)
    with pytest.raises(R.ModelInputError, match=message):
        run_reference(model, change(features))
