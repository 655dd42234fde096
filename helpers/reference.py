"""BERT question answering in numpy: the golden reference every TensorRT engine is checked against.

The forward pass of Hugging Face's BertForQuestionAnswering (post-LayerNorm BERT, as in the paper),
computed from the canonical weights of helpers/weights.py:

    embeddings -> num_hidden_layers x [self-attention -> add & norm -> GELU MLP -> add & norm]
               -> qa head (start and end logit per token)

It is also the CPU backend of inference.py: `ReferenceModel(config, weights)(ids, segments, mask)`.
"""
import math

import numpy as np

from helpers import names
from helpers.weights import BertConfig, validate
from helpers.errors import BertTrtError

# Added to the attention scores of padding keys. exp(-10000) is exactly 0 in every float type, and
# unlike -inf or float32's minimum it survives float16 and keeps an all-padding row finite. It is
# the value of Google's BERT and of NVIDIA's TensorRT plugins.
MASK_BIAS = -10000.0

# |z| beyond which erf(z) is +-1 to within 3e-17.
ERF_SATURATION = 6.0


class ModelInputError(BertTrtError, ValueError):
    """Token ids, segment ids or mask that the model cannot take; the message names the fix."""


class Observer:
    """What the forward pass shows its caller, and where it lets the caller in: calibration
    records tensor ranges, int8 simulation quantizes what each projection multiplies
    (helpers/quantization.py). This base class observes nothing and changes nothing, which is the
    forward pass without an observer.
    """

    def tensor(self, name, x):
        """Named tensor `name` (helpers/names.py) as computed; the return value is not used.

        The QKV projection's output (names.layer(i, "qkv")) comes as three calls, query, key and
        value, each [B, S, H]; "attention_probs" is the softmax output [B, heads, S, S].
        """

    def projection_input(self, projection, input_name, x):
        """What projection `projection` (names.layer(i, kind), kind in names.PROJECTIONS)
        multiplies: its input x, the tensor named `input_name`, or a replacement of the same shape.
        Only the projection sees the replacement; a residual sum reads the original."""
        return x


_NO_OBSERVER = Observer()


# ---------------------------------------------------------------------------------------------
# GELU: numpy has no erf, so fit one once from math.erfc.


def _fit_erfc_remainder(degree=10, points=200):
    """Coefficients of q with erfc(z) = exp(-z^2) * (1 + w * q(w)), w = z / (2 + z), 0 <= z <= 6.

    exp(z^2) * erfc(z) falls smoothly from 1 to 0.09 over that range and is nearly linear in w, so
    a least-squares Chebyshev fit of degree 10, from math.erfc at Chebyshev nodes, puts erf within
    6e-11 (the tests measure it). Factoring out w makes erf(0) exactly 0 and keeps tiny arguments
    accurate. Returned as power-series coefficients, highest first, in the fit's window variable
    v = offset + scale * w (|v| <= 1), where Horner's rule is well conditioned.
    """
    w_max = ERF_SATURATION / (2 + ERF_SATURATION)
    w = w_max / 2 * (1 + np.polynomial.chebyshev.chebpts1(points))
    z = 2 * w / (1 - w)
    remainder = np.array([math.erfc(v) * math.exp(v * v) - 1 for v in z]) / w
    fit = np.polynomial.Chebyshev.fit(w, remainder, degree, domain=[0, w_max])
    offset, scale = fit.mapparms()
    return np.polynomial.chebyshev.cheb2poly(fit.coef)[::-1].copy(), offset, scale


_ERFC_POLY, _ERFC_OFFSET, _ERFC_SCALE = _fit_erfc_remainder()

# Elementwise float64 work runs on blocks this size so that its temporaries stay in cache; on whole
# [batch, seq, intermediate] arrays the ~25 passes of erf are memory-bound and 1.5x slower.
_BLOCK = 1 << 15


def _erf_float64(z: np.ndarray) -> np.ndarray:
    a = np.minimum(np.abs(z), ERF_SATURATION)
    w = a / (2.0 + a)
    v = w * _ERFC_SCALE
    v += _ERFC_OFFSET
    q = np.full_like(v, _ERFC_POLY[0])
    for c in _ERFC_POLY[1:]:
        q *= v
        q += c
    a *= a
    np.negative(a, out=a)
    gaussian = np.exp(a, out=a)  # exp(-z^2)
    q *= w
    q *= gaussian
    return np.copysign((1.0 - gaussian) - q, z)  # 1 - erfc(|z|), signed


def _blockwise(fn, x: np.ndarray, out_dtype) -> np.ndarray:
    """fn applied to float64 blocks of x, the result stored in out_dtype."""
    flat = np.asarray(x).reshape(-1)
    out = np.empty(flat.shape, out_dtype)
    for start in range(0, flat.size, _BLOCK):
        out[start:start + _BLOCK] = fn(flat[start:start + _BLOCK].astype(np.float64))
    return out.reshape(np.shape(x))


def erf(x) -> np.ndarray:
    """The error function, in float64, within 1e-10 of math.erf."""
    return _blockwise(_erf_float64, x, np.float64)


def gelu(x: np.ndarray, form: str = "erf") -> np.ndarray:
    """GELU(x) = x * Phi(x). "tanh" is Hendrycks & Gimpel's approximation, which TensorRT's
    plugin uses; in float64 the two differ by up to 5e-4."""
    if form == "erf":
        return _blockwise(lambda v: 0.5 * v * (1.0 + _erf_float64(v * (1 / math.sqrt(2)))),
                          x, x.dtype)
    if form == "tanh":
        v = x.astype(_accumulator(x.dtype))
        return (0.5 * v * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
                ).astype(x.dtype)
    raise ValueError(f"GELU form must be 'erf' or 'tanh', got {form!r}")


# ---------------------------------------------------------------------------------------------
# Layers. Activations and weights are in one dtype; sums and statistics run in at least float32
# and are rounded back, which is what a float16 TensorRT engine does.


def _accumulator(dtype) -> np.dtype:
    return np.promote_types(dtype, np.float32)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    acc = _accumulator(a.dtype)
    product = np.matmul(a.astype(acc, copy=False), b.astype(acc, copy=False))
    return product.astype(a.dtype, copy=False)


def linear(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x @ kernel + bias over the last axis, as one matrix product for the whole batch."""
    acc = _accumulator(x.dtype)
    flat = x.reshape(-1, x.shape[-1]).astype(acc, copy=False)
    y = flat @ kernel.astype(acc, copy=False)
    y += bias
    return y.astype(x.dtype, copy=False).reshape(*x.shape[:-1], kernel.shape[1])


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    v = x.astype(_accumulator(x.dtype))
    mean = v.mean(axis=-1, keepdims=True)
    centered = v - mean
    variance = np.mean(centered * centered, axis=-1, keepdims=True)
    return (centered / np.sqrt(variance + eps) * gamma + beta).astype(x.dtype)


def softmax(x: np.ndarray) -> np.ndarray:
    v = x.astype(_accumulator(x.dtype))  # a fresh copy, worked on in place
    v -= v.max(axis=-1, keepdims=True)
    np.exp(v, out=v)
    v /= v.sum(axis=-1, keepdims=True)
    return v.astype(x.dtype, copy=False)


def embeddings(config: BertConfig, weights: dict, input_ids, segment_ids,
               observer: Observer = _NO_OBSERVER) -> np.ndarray:
    """Word + position + token-type embeddings, layer-normalised: [B, S, H]."""
    seq_len = input_ids.shape[1]
    acc = _accumulator(weights["embeddings.word_embeddings"].dtype)
    summed = (weights["embeddings.word_embeddings"][input_ids].astype(acc)
              + weights["embeddings.position_embeddings"][:seq_len]
              + weights["embeddings.token_type_embeddings"][segment_ids])
    dtype = weights["embeddings.word_embeddings"].dtype
    normalized = layer_norm(summed.astype(dtype), weights["embeddings.layer_norm.gamma"],
                            weights["embeddings.layer_norm.beta"], config.layer_norm_eps)
    observer.tensor(names.EMBEDDINGS, normalized)
    return normalized


def self_attention(config: BertConfig, weights: dict, layer: int, hidden: np.ndarray,
                   mask_bias: np.ndarray, observer: Observer = _NO_OBSERVER) -> np.ndarray:
    """Masked multi-head scaled dot-product attention: the context [B, S, H], before the output
    projection. mask_bias [B, S] is added to the scores of every query against each key."""
    batch, seq_len, hidden_size = hidden.shape
    heads, head_size = config.num_attention_heads, config.head_size
    qkv = names.layer(layer, "qkv")
    x = observer.projection_input(qkv, names.projection_input(layer, "qkv"), hidden)

    def project_heads(name, axes):
        projected = linear(x, weights[f"layer.{layer}.attention.{name}.kernel"],
                           weights[f"layer.{layer}.attention.{name}.bias"])
        observer.tensor(qkv, projected)
        # Contiguous per-head matrices let numpy hand each product to BLAS directly.
        return np.ascontiguousarray(
            projected.reshape(batch, seq_len, heads, head_size).transpose(axes))

    query = project_heads("query", (0, 2, 1, 3))  # [B, heads, S, head_size]
    key_t = project_heads("key", (0, 2, 3, 1))  # [B, heads, head_size, S]
    value = project_heads("value", (0, 2, 1, 3))
    scores = matmul(query, key_t)
    scores = scores * np.asarray(1 / math.sqrt(head_size), scores.dtype)
    scores += mask_bias[:, None, None, :].astype(scores.dtype)
    probs = softmax(scores)
    observer.tensor(names.layer(layer, "attention_probs"), probs)
    context = matmul(probs, value)
    context = context.transpose(0, 2, 1, 3).reshape(batch, seq_len, hidden_size)
    observer.tensor(names.layer(layer, "qkv_to_context"), context)
    return context


def encoder_layer(config: BertConfig, weights: dict, layer: int, hidden: np.ndarray,
                  mask_bias: np.ndarray, observer: Observer = _NO_OBSERVER) -> np.ndarray:
    """One transformer layer; LayerNorm after each residual sum, as in BERT. The observer sees
    each part named in names.LAYER_PARTS (projection outputs with their bias added)."""
    prefix = f"layer.{layer}."
    own = {name[len(prefix):]: weight for name, weight in weights.items()
           if name.startswith(prefix)}
    eps = config.layer_norm_eps

    def project(kind, x, weight):
        """Projection `kind` of this layer on x, shown to the observer on both sides."""
        name = names.layer(layer, kind)
        x = observer.projection_input(name, names.projection_input(layer, kind), x)
        y = linear(x, own[f"{weight}.kernel"], own[f"{weight}.bias"])
        observer.tensor(name, y)
        return y

    def seen(part, x):
        observer.tensor(names.layer(layer, part), x)
        return x

    context = self_attention(config, weights, layer, hidden, mask_bias, observer)
    attended = project("attention_output", context, "attention.output")
    hidden = seen("attention_layer_norm",
                  layer_norm(attended + hidden, own["attention.layer_norm.gamma"],
                             own["attention.layer_norm.beta"], eps))
    intermediate = project("intermediate", hidden, "intermediate")
    activated = seen("gelu", gelu(intermediate, config.gelu))
    output = project("output", activated, "output")
    return seen("output_layer_norm",
                layer_norm(output + hidden, own["output.layer_norm.gamma"],
                           own["output.layer_norm.beta"], eps))


def qa_head(weights: dict, hidden: np.ndarray) -> tuple:
    """Start and end logits [B, S] from the last hidden states."""
    logits = linear(hidden, weights["qa.kernel"], weights["qa.bias"])
    return logits[..., 0], logits[..., 1]


# ---------------------------------------------------------------------------------------------
# The whole model


def check_inputs(config: BertConfig, input_ids, segment_ids, input_mask) -> tuple:
    """The three inputs as int arrays [B, S]; ModelInputError for anything the model cannot take."""
    arrays = tuple(np.asarray(a) for a in (input_ids, segment_ids, input_mask))
    input_ids, segment_ids, input_mask = arrays
    if input_ids.ndim != 2 or segment_ids.shape != input_ids.shape or \
            input_mask.shape != input_ids.shape:
        raise ModelInputError(f"input_ids, segment_ids and input_mask must all be [batch, seq]; "
                              f"got {input_ids.shape}, {segment_ids.shape}, {input_mask.shape}")
    if not all(np.issubdtype(a.dtype, np.integer) for a in arrays):
        raise ModelInputError("input_ids, segment_ids and input_mask must be integer arrays")
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ModelInputError(f"sequence length {input_ids.shape[1]} is longer than the model's "
                              f"{config.max_position_embeddings} positions; use a shorter "
                              f"max_seq_length")
    for name, values, limit in (("input_ids", input_ids, config.vocab_size),
                                ("segment_ids", segment_ids, config.type_vocab_size),
                                ("input_mask", input_mask, 2)):
        if values.size and (values.min() < 0 or values.max() >= limit):
            raise ModelInputError(f"{name} must lie in [0, {limit}), found "
                                  f"[{values.min()}, {values.max()}]; check the vocab file and "
                                  f"the feature conversion")
    return arrays


def bert_qa_logits(config: BertConfig, weights: dict, input_ids, segment_ids, input_mask,
                   dtype=np.float32, observer: Observer | None = None) -> tuple:
    """(start_logits, end_logits), each [B, S], of BERT-QA on the given features.

    dtype is the precision of weights and activations: float32 (the reference), float64 (to
    measure float32's own rounding), or float16 (rounded like a float16 engine, accumulating in
    float32). The logits come back in float32, or float64 for float64.

    observer (an Observer) sees the named tensors and may replace what each projection of the
    encoder layers multiplies; None observes nothing.
    """
    observer = observer or _NO_OBSERVER
    validate(config, weights)
    weights = {name: weight.astype(dtype, copy=False) for name, weight in weights.items()}
    input_ids, segment_ids, input_mask = check_inputs(config, input_ids, segment_ids, input_mask)
    acc = _accumulator(dtype)
    mask_bias = (1 - input_mask.astype(acc)) * MASK_BIAS
    hidden = embeddings(config, weights, input_ids, segment_ids, observer)
    for layer in range(config.num_hidden_layers):
        hidden = encoder_layer(config, weights, layer, hidden, mask_bias, observer)
    start, end = qa_head(weights, hidden)
    return start.astype(acc), end.astype(acc)


class ReferenceModel:
    """Callable BERT-QA in numpy: model(input_ids, segment_ids, input_mask) -> (start, end)."""

    def __init__(self, config: BertConfig, weights: dict, dtype=np.float32):
        self.config = config
        self.dtype = np.dtype(dtype)
        # Cast once here, not on every call.
        self.weights = {name: np.ascontiguousarray(weight, dtype=self.dtype)
                        for name, weight in weights.items()}

    def __call__(self, input_ids, segment_ids, input_mask, observer=None) -> tuple:
        return bert_qa_logits(self.config, self.weights, input_ids, segment_ids, input_mask,
                              self.dtype, observer)
