"""BERT question answering as TensorRT layers, block for block as helpers/reference.py computes it:

    input_ids, segment_ids, input_mask  (batch, seq) int32
      -> embeddings                      EmbLayerNorm plugin: word + position + token-type
                                         embeddings, LayerNorm, and the mask in the form the
                                         attention plugin wants
      -> encoder_layer x L               fused QKV projection, QKVToContext plugin (or layers),
                                         output projection, SkipLayerNorm plugin,
                                         FFN up-projection, GELU, down-projection, SkipLayerNorm
      -> qa_head                         cls_squad_logits (batch, seq, 2, 1, 1): start, end

Inside the network activations are laid out (seq, batch, hidden, 1, 1), the layout the plugins
were written for. The packed layout (Layout.varseqlen) is the demo's variable-sequence-length
network: the tokens of a batch one sequence after another without padding, input_ids and
segment_ids (tokens,), the offsets of the sequences cu_seqlens (batch + 1,) and max_seqlen, a tensor
whose shape (seq,) is the padded length; version 2 of the plugins, activations (tokens, hidden, 1, 1),
logits (tokens, 2, 1, 1).

Layout says how the network is built (not in which precision: that is the Graph's plan).
"""
from dataclasses import dataclass

import numpy as np

from helpers import names
from helpers.precision import FP16

PLUGIN_VERSION = "1"  # the field layout below is that of version 1 of each BERT plugin
PACKED_PLUGIN_VERSION = "2"  # and of version 2 (variable sequence length) for --varseqlen


@dataclass(frozen=True)
class Layout:
    varseqlen: bool = False          # packed tokens, version 2 of the plugins
    attention_layers: bool = False   # attention from matrix multiplies and a softmax, not the plugin
    fc_plugin: bool = False          # the FFN's down-projection through CustomFCPluginDynamic (-g)
    gelu_plugin: bool = True         # TensorRT's GELU plugin for the tanh form, where registered
    convolutions: bool = False       # projections as 1x1 convolutions (int8 always, packed by default)
    dynamic_sequence: bool = False   # several sequence lengths: the inputs' sequence axis is -1
    max_sequence: int = 128

    @property
    def rank(self):
        return 4 if self.varseqlen else 5

    @property
    def plugin_version(self):
        return PACKED_PLUGIN_VERSION if self.varseqlen else PLUGIN_VERSION


def embedding_fields(g, weights):
    """The LayerNorm and the three embedding tables, as both versions of EmbLayerNorm take them."""
    return [
        g.field_floats("bert_embeddings_layernorm_beta", weights["embeddings.layer_norm.beta"]),
        g.field_floats("bert_embeddings_layernorm_gamma", weights["embeddings.layer_norm.gamma"]),
        g.field_floats("bert_embeddings_word_embeddings", weights["embeddings.word_embeddings"]),
        g.field_floats("bert_embeddings_token_type_embeddings", weights["embeddings.token_type_embeddings"]),
        g.field_floats("bert_embeddings_position_embeddings", weights["embeddings.position_embeddings"]),
    ]


def embeddings(g, weights, input_ids, segment_ids, input_mask):
    """EmbLayerNorm plugin: (embeddings (seq, batch, hidden, 1, 1), mask for attention)."""
    fields = embedding_fields(g, weights) + [
        g.field_int("output_fp16", int(g.plan.half)),
        # The mask output takes the packed form that the attention plugin's fused kernels of
        # that precision read, so both must agree.
        g.field_int("mha_type_id", g.plan.attention_type),
    ]
    layer = g.plugin("CustomEmbLayerNormPluginDynamic", PLUGIN_VERSION, names.EMBEDDINGS, fields,
                     [input_ids, segment_ids, input_mask])
    layer.get_output(1).name = "embeddings_mask"
    return layer.get_output(0), layer.get_output(1)


def packed_embeddings(g, weights, input_ids, segment_ids, cu_seqlens, max_seqlen):
    """EmbLayerNorm plugin, version 2: (embeddings (tokens, hidden, 1, 1), a placeholder).

    Position ids restart at 0 for each sequence of the packed batch. The second output is
    never written; the version-2 attention plugin takes it in its (unused) mask slot.
    """
    fields = embedding_fields(g, weights) + [g.field_int("output_fp16", 1)]
    layer = g.plugin("CustomEmbLayerNormPluginDynamic", PACKED_PLUGIN_VERSION, names.EMBEDDINGS, fields,
                     [input_ids, segment_ids, cu_seqlens, max_seqlen])
    layer.get_output(1).name = "embeddings_placeholder"
    return layer.get_output(0), layer.get_output(1)


def attention(g, layout, config, weights, index, x, mask, sequence_offsets=None):
    """Multi-head self-attention: one QKV projection, then the QKVToContext plugin or layers."""
    heads, head_size, hidden = config.num_attention_heads, config.head_size, config.hidden_size
    prefix = f"layer.{index}"
    kernels = np.stack([weights[f"{prefix}.attention.{p}.kernel"] for p in ("query", "key", "value")])
    biases = np.stack([weights[f"{prefix}.attention.{p}.bias"] for p in ("query", "key", "value")])
    if layout.attention_layers:
        qkv = g.linear(x, np.concatenate(kernels, axis=1), biases.reshape(3 * hidden), names.layer(index, "qkv"),
                       layout.convolutions)
        return attention_from_layers(g, config, qkv, mask, names.layer(index, "qkv_to_context"))
    # The plugin reads each token's projection as [head][q, k, v][head_size].
    qkv_kernel = kernels.reshape(3, hidden, heads, head_size).transpose(1, 2, 0, 3).reshape(hidden, 3 * hidden)
    qkv_bias = biases.reshape(3, heads, head_size).transpose(1, 0, 2).reshape(3 * hidden)
    qkv = g.linear(x, qkv_kernel, qkv_bias, names.layer(index, "qkv"), layout.convolutions)
    type_id = g.plan.attention_type
    fields = [g.field_int("type_id", type_id), g.field_int("hidden_size", hidden),
              g.field_int("num_heads", heads), g.field_int("has_mask", 1)]
    name = names.layer(index, "qkv_to_context")
    qkv = g.in_type(qkv, type_id, name + "_input_cast")
    if layout.varseqlen:
        # Version 2 reads the sequences' offsets and, from max_seqlen's shape, the padded length
        # that picks its kernel; with var_seqlen 0 it computes nothing on these GPUs.
        fields.append(g.field_int("var_seqlen", 1))
        context = g.plugin("CustomQKVToContextPluginDynamic", PACKED_PLUGIN_VERSION, name, fields,
                           [qkv, mask, *sequence_offsets]).get_output(0)
    else:
        context = g.plugin("CustomQKVToContextPluginDynamic", PLUGIN_VERSION, name, fields, [qkv, mask]).get_output(0)
    return g.back_to_activations(context, type_id, name + "_cast")


def attention_from_layers(g, config, qkv, mask_bias, name):
    """softmax(Q K^T / sqrt(d) + mask_bias) V for qkv (seq, batch, [q|k|v][head][d], 1, 1).

    Works on (1, batch, heads, seq, d) tensors; the result is (seq, batch, hidden, 1, 1).
    """
    trt, net = g.trt, g.network
    heads, head_size = config.num_attention_heads, config.head_size
    split = net.add_shuffle(qkv)
    split.reshape_dims = (0, 0, 3, heads, head_size)
    split.second_transpose = (2, 1, 3, 0, 4)  # (3, batch, heads, seq, d)
    split = g.name(split, name + "_split")

    def part(index, label):
        which = g.constant((1,), np.array([index]), f"{name}_{label}_index", dtype=np.int32, name_output=False)
        return g.name(net.add_gather(split, which, 0), f"{name}_{label}")

    # Scaling Q before its product is the form TensorRT's attention fusion looks for.
    query = g.elementwise(part(0, "query"), g.scalar(head_size ** -0.5, name + "_scale"), "PROD",
                          name + "_scaled_query")
    scores = g.name(net.add_matrix_multiply(query, trt.MatrixOperation.NONE, part(1, "key"),
                                            trt.MatrixOperation.TRANSPOSE), name + "_scores")
    scores = g.elementwise(scores, mask_bias, "SUM", name + "_masked")
    softmax = net.add_softmax(scores)
    softmax.axes = 1 << 4  # over the keys
    probabilities = g.name(softmax, name + "_probabilities")
    context = g.name(net.add_matrix_multiply(probabilities, trt.MatrixOperation.NONE, part(2, "value"),
                                             trt.MatrixOperation.NONE), name + "_context")
    merge = net.add_shuffle(context)
    merge.first_transpose = (3, 1, 2, 4, 0)  # (seq, batch, heads, d, 1)
    merge.reshape_dims = (0, 0, config.hidden_size, 1, 1)
    return g.name(merge, name)


def attention_mask_bias(g, input_mask):
    """0 for tokens to attend to and -10000 for padding, as (1, batch, 1, 1, seq), from (seq, batch)."""
    as_float = g.cast(input_mask, g.trt_type, "attention_mask_float")
    shaped = g.network.add_shuffle(as_float)
    shaped.reshape_dims = (0, 0, 1, 1, 1)
    shaped.second_transpose = (2, 1, 3, 4, 0)
    shaped = g.name(shaped, "attention_mask_shaped")
    minus_one = g.elementwise(shaped, g.scalar(-1.0, "attention_mask_one"), "SUM", "attention_mask_minus_one")
    return g.elementwise(minus_one, g.scalar(10000.0, "attention_mask_scale"), "PROD", "attention_mask_bias")


def encoder_layer(g, layout, config, weights, index, x, mask, sequence_offsets=None):
    """One transformer layer: attention and FFN, each closed by residual + LayerNorm."""
    w = lambda name: weights[f"layer.{index}.{name}"]  # noqa: E731
    part = lambda name: names.layer(index, name)  # noqa: E731
    ld = None if layout.varseqlen else config.hidden_size
    context = attention(g, layout, config, weights, index, x, mask, sequence_offsets)
    attention_out = g.linear(context, w("attention.output.kernel"), None, part("attention_output"), layout.convolutions)
    x = g.skip_layer_norm(attention_out, x, w("attention.layer_norm.gamma"), w("attention.layer_norm.beta"),
                          w("attention.output.bias"), part("attention_layer_norm"), layout.plugin_version, ld)
    intermediate = g.linear(x, w("intermediate.kernel"), None, part("intermediate"), layout.convolutions)
    activated = g.gelu(intermediate, w("intermediate.bias"), config.gelu, part("gelu"), layout.gelu_plugin)
    if layout.fc_plugin:
        ffn_out = g.fc_plugin(activated, w("output.kernel"), part("output"))
    else:
        ffn_out = g.linear(activated, w("output.kernel"), None, part("output"), layout.convolutions)
    return g.skip_layer_norm(ffn_out, x, w("output.layer_norm.gamma"), w("output.layer_norm.beta"),
                             w("output.bias"), part("output_layer_norm"), layout.plugin_version, ld)


def qa_head(g, layout, weights, x):
    """Start and end logits per token: (batch, seq, 2, 1, 1), or (tokens, 2, 1, 1) packed."""
    # Two output channels: too small to gain from int8, and the answer scores need the range.
    logits = g.linear(x, weights["qa.kernel"], weights["qa.bias"], names.QA_OUTPUTS, layout.convolutions)
    if layout.varseqlen:
        return logits
    to_batch_major = g.network.add_shuffle(logits)
    to_batch_major.first_transpose = (1, 0, 2, 3, 4)
    return g.name(to_batch_major, names.QA_OUTPUTS + "_transpose")


def bert_qa(g, layout, config, weights):
    """The whole network into g.network; the logits leave it as float32 in every mode."""
    trt, net = g.trt, g.network
    offsets = None
    if layout.varseqlen:
        inputs = [net.add_input(name, trt.int32, (-1,)) for name in names.PACKED_INPUT_NAMES]
        offsets = inputs[2:]
        x, mask = packed_embeddings(g, weights, *inputs)
    else:
        shape = (-1, -1 if layout.dynamic_sequence else layout.max_sequence)
        inputs = []
        for name in names.INPUT_NAMES:
            t = net.add_input(name, trt.int32, shape)
            to_seq_major = net.add_shuffle(t)
            to_seq_major.first_transpose = (1, 0)
            inputs.append(g.name(to_seq_major, name + "_transpose"))
        x, mask = embeddings(g, weights, *inputs)
        if layout.attention_layers:
            mask = attention_mask_bias(g, inputs[names.INPUT_NAMES.index("input_mask")])
    for i in range(config.num_hidden_layers):
        x = encoder_layer(g, layout, config, weights, i, x, mask, offsets)
    logits = qa_head(g, layout, weights, x)
    if g.plan.strong and g.plan.activation_type == FP16:
        logits = g.cast(logits, trt.float32, names.QA_OUTPUTS + "_float")  # a strongly typed network's output type
    logits.name = names.OUTPUT_NAME
    net.mark_output(logits)
    if not g.plan.strong:
        logits.dtype = trt.float32  # weak typing: the output's type is asked for, not computed
    return net
