#!/usr/bin/env python3
"""Build a TensorRT engine for BERT question answering from a fine-tuned checkpoint.

The network is written layer by layer with TensorRT's network API and its BERT plugins, as in
NVIDIA's demo:

    input_ids, segment_ids, input_mask  (batch, seq) int32
      -> EmbLayerNorm plugin             word + position + token-type embeddings, LayerNorm,
                                         and the mask in the form the attention plugin wants
      -> encoder layer x L               fused QKV projection, QKVToContext plugin,
                                         output projection, SkipLayerNorm plugin,
                                         FFN up-projection, GELU, down-projection, SkipLayerNorm
      -> QA head                         cls_squad_logits (batch, seq, 2, 1, 1): start, end

Inside the network activations are laid out (seq, batch, hidden, 1, 1), the layout the
plugins were written for.

--varseqlen builds the demo's variable-sequence-length network instead: the tokens of a batch
packed one sequence after another without padding, input_ids and segment_ids (tokens,), the
offsets of the sequences cu_seqlens (batch + 1,) and max_seqlen, a tensor whose shape (seq,) is the
padded length; version 2 of the plugins, activations (tokens, hidden, 1, 1), logits (tokens, 2, 1, 1).
"""
import argparse
import os
import sys
import time

import numpy as np

from helpers.calibrator import make_calibrator, with_scales_from
from helpers.cli import HelpFormatter
from helpers.errors import BertTrtError
from helpers.files import write_atomically
from helpers.models import decide_casing, find_vocab, resolve_model
from helpers.trt_common import (INPUT_NAMES, PACKED_INPUT_NAMES, EngineInfo, TensorRTError, build_failure,
                                import_pycuda, import_tensorrt, input_shapes, make_build_logger)
from helpers.weights import check_vocab, load_weights, save_weights

PLUGIN_VERSION = "1"  # the field layout below is that of version 1 of each BERT plugin
PACKED_PLUGIN_VERSION = "2"  # and of version 2 (variable sequence length) for --varseqlen
OUTPUT_NAME = "cls_squad_logits"
PACKED_MAX_SEQUENCE = 384  # TensorRT 8.6's packed embedding kernel writes no token past 384
PROJECTIONS = ("qkv", "attention_output", "intermediate", "output")  # of every encoder layer


class NetworkBuilder:
    """Adds BERT layers to one TensorRT network.

    Every numpy array handed to TensorRT (plugin fields, weights) is kept in self.arrays: the
    Python bindings keep only raw pointers to them, and TensorRT reads weights until the engine
    is built.
    """

    def __init__(self, trt, network, config, precision, half_plugins, use_fc_plugin=False, calibration=False,
                 strict=False, int8_skipln=False, int8_multihead=False, conv_projections=None, gelu_plugin=True,
                 attention_layers=False, fp16_projections=(), varseqlen=False):
        self.trt = trt
        self.network = network
        self.config = config
        self.precision = precision
        self.half = half_plugins  # fp16 and int8 engines run the plugins in fp16 (unless -iln/-imh)
        int8_plugins = precision == "int8" and not calibration
        # Plugin precisions as the plugins encode them: 0 fp32, 1 fp16, 2 int8. The fused fp16
        # attention kernels exist for heads of 64 only; other head sizes run the attention plugin in
        # fp32 (its mask input then counts valid tokens instead). int8 plugins are opt-in, as in
        # the demo (-imh, -iln): they quantize the attention and the residual stream too.
        if int8_plugins and int8_multihead:
            self.attention_type = 2
        else:
            self.attention_type = int(self.half and config.head_size == 64)
        self.layer_norm_type = 2 if int8_plugins and int8_skipln else int(self.half)
        self.use_fc_plugin = use_fc_plugin
        # TensorRT only records ranges of tensors that calibration materializes; one that it fuses
        # away (a projection's output inside a fused GELU) gets no scale, and the layers around it
        # fall back from int8. The calibration network makes every projection output a network
        # output so that each one is observed.
        self.calibration = calibration
        # --strict: the projections must run in the requested precision. Otherwise TensorRT keeps
        # a higher one wherever that is faster (at small sizes int8 may not be used at all).
        self.strict = strict
        # --fp16-projections: kinds of projection (PROJECTIONS) pinned to fp16 in an int8 engine. The
        # QKV projection's input, a LayerNorm output with a few large channels, lost 1.9-2.6 F1 of
        # the small test models when quantized (a CPU simulation of their int8 engines agreed).
        self.fp16_projections = set(fp16_projections)
        # int8 engines always run their projections as 1x1 convolutions (what TensorRT quantizes);
        # the others may too (--conv-projections): TensorRT 8.6 fused the GELU into the convolution
        # of int8 engines but ran it as a kernel of its own after the matrix multiply of fp16 ones.
        # conv_projections None: the network's default, convolutions when packed (as measured).
        if conv_projections is None:
            conv_projections = varseqlen
        self.conv_projections = conv_projections or precision == "int8"
        # --varseqlen: packed tokens, (tokens, hidden, 1, 1) activations and version 2 of the plugins,
        # whose Hopper attention kernels (HGMMA, IGMMA) version 1 lacks. fp16 and int8.
        self.varseqlen = varseqlen
        self.rank = 4 if varseqlen else 5
        self.sequence_offsets = None  # (cu_seqlens, max_seqlen) of a packed network
        self.gelu_plugin = gelu_plugin
        # --attention layers: softmax(Q K^T / sqrt(d) + mask) V from matrix multiplies and a softmax,
        # a pattern TensorRT may fuse into one attention kernel of its own, instead of the plugin.
        self.attention_layers = attention_layers
        self.arrays = []
        self.plugins = []
        self.registry = trt.get_plugin_registry()

    def keep(self, array):
        self.arrays.append(array)
        return array

    def weights(self, array, dtype=np.float32):
        return self.trt.Weights(self.keep(np.ascontiguousarray(array, dtype)))

    def lookup(self, name, version=PLUGIN_VERSION):
        """The registered creator of a plugin's version, or None (8.6/10.x and 11.x spellings)."""
        get = getattr(self.registry, "get_plugin_creator", None) or self.registry.get_creator
        return get(name, version, "")

    def plugin_creator(self, name, version):
        creator = self.lookup(name, version)
        if creator is None:
            creators = getattr(self.registry, "plugin_creator_list", None) or self.registry.all_creators
            found = sorted(c.plugin_version for c in creators if c.name == name)
            raise TensorRTError(
                f"TensorRT plugin {name} version {version} is not registered "
                f"(versions found: {', '.join(found) or 'none'}); use a TensorRT with its BERT "
                "plugins (libnvinfer_plugin)")
        return creator

    def has_plugin(self, name):
        return self.lookup(name) is not None

    def field_int(self, name, value):
        return self.trt.PluginField(name, self.keep(np.array([value], np.int32)), self.trt.PluginFieldType.INT32)

    def field_floats(self, name, array, half=False):
        if half:
            return self.trt.PluginField(name, self.keep(np.ascontiguousarray(array, np.float16)),
                                        self.trt.PluginFieldType.FLOAT16)
        return self.trt.PluginField(name, self.keep(np.ascontiguousarray(array, np.float32)),
                                    self.trt.PluginFieldType.FLOAT32)

    def add_plugin(self, name, layer_name, fields, inputs, version=PLUGIN_VERSION):
        creator = self.plugin_creator(name, version)
        plugin = creator.create_plugin(layer_name, self.trt.PluginFieldCollection(fields))
        if plugin is None:
            raise TensorRTError(f"TensorRT plugin {name} refused the fields of layer {layer_name}")
        self.plugins.append(plugin)  # the network refers to it until the network is destroyed
        layer = self.network.add_plugin_v2(inputs, plugin)
        layer.name = layer_name
        layer.get_output(0).name = layer_name
        return layer

    def name(self, layer, name):
        """Name a layer and its output (calibration caches refer to tensors by name)."""
        layer.name = name
        output = layer.get_output(0)
        output.name = name
        return output

    # --- building blocks --------------------------------------------------------------------
    def linear(self, x, kernel, bias, name, pin=True):
        """y = x @ kernel + bias on (seq, batch, in, 1, 1) -> (seq, batch, out, 1, 1), or packed
        (tokens, in, 1, 1) -> (tokens, out, 1, 1).

        A 1x1 convolution (int8 engines: TensorRT quantizes it with the calibrator) or a matrix
        multiply that TensorRT fuses with the bias and the reshapes. With --strict or
        --fp16-projections, `pin` lets its precision be fixed.
        """
        trt, net = self.trt, self.network
        n_in, n_out = kernel.shape
        kind = name.split("_", 1)[1] if name.startswith("layer.") else None  # "layer.3_qkv" -> "qkv"
        pinned = None
        if pin and kind in self.fp16_projections:
            pinned = trt.float16
        elif pin and self.strict:
            pinned = {"int8": trt.int8, "fp16": trt.float16}.get(self.precision)
        if self.conv_projections:
            conv = net.add_convolution_nd(x, n_out, (1, 1), self.weights(kernel.T),
                                          self.weights(bias) if bias is not None else trt.Weights())
            if pinned is not None:
                conv.precision = pinned
            y = self.name(conv, name)
            if self.calibration:
                net.mark_output(y)
            return y
        leading = self.rank - 3  # the token axes: (seq, batch), or (tokens,) packed
        flat = net.add_shuffle(x)
        flat.reshape_dims = (0,) * leading + (n_in,)
        flat.name = name + "_flatten"
        w = net.add_constant((1,) * (leading - 1) + (n_in, n_out), self.weights(kernel))
        w.name = name + "_kernel"
        product = net.add_matrix_multiply(flat.get_output(0), trt.MatrixOperation.NONE,
                                          w.get_output(0), trt.MatrixOperation.NONE)
        if pinned is not None:
            product.precision = pinned
        y = self.name(product, name)
        if bias is not None:
            b = net.add_constant((1,) * leading + (n_out,), self.weights(bias))
            b.name = name + "_bias"
            y = self.name(net.add_elementwise(y, b.get_output(0), trt.ElementWiseOperation.SUM), name + "_add_bias")
        back = net.add_shuffle(y)
        back.reshape_dims = (0,) * leading + (n_out, 1, 1)
        return self.name(back, name + "_unflatten")

    def fc_plugin(self, x, kernel, name):
        """y = x @ kernel through the CustomFCPluginDynamic GEMM (the demo's --force-fc2-gemm)."""
        fields = [self.field_int("out_dims", kernel.shape[1]), self.field_int("type_id", int(self.half)),
                  self.field_floats("W", kernel)]
        return self.add_plugin("CustomFCPluginDynamic", name, fields, [x]).get_output(0)

    def skip_layer_norm(self, x, skip, gamma, beta, bias, name):
        """LayerNorm(x + bias + skip) in one plugin (version 2, packed: no `ld`, any rank)."""
        fields = [] if self.varseqlen else [self.field_int("ld", self.config.hidden_size)]
        fields += [self.field_int("type_id", self.layer_norm_type),
                   self.field_floats("beta", beta), self.field_floats("gamma", gamma)]
        if bias is not None:
            fields.append(self.field_floats("bias", bias))
        version = PACKED_PLUGIN_VERSION if self.varseqlen else PLUGIN_VERSION
        return self.add_plugin("CustomSkipLayerNormPluginDynamic", name, fields, [x, skip], version).get_output(0)

    def constant(self, value, name):
        c = self.network.add_constant((1,) * self.rank, self.weights(np.array([value])))
        return self.name(c, name)

    def gelu(self, x, bias, name):
        """GELU(x + bias), in the form the model was trained with.

        tanh: TensorRT's GELU plugin (it implements the tanh form) where registered, unless
              --no-gelu-plugin; otherwise elementwise layers, as the erf form.
        erf:  0.5 x (1 + erf(x / sqrt 2)) from elementwise layers, which TensorRT fuses with
              each other and, after a convolution, into it.
        """
        trt, net = self.trt, self.network
        if self.config.gelu == "tanh" and self.gelu_plugin and self.has_plugin("CustomGeluPluginDynamic"):
            # The plugin copies its bias byte for byte in its own precision.
            fields = [self.field_int("type_id", int(self.half)), self.field_floats("bias", bias, half=self.half)]
            return self.add_plugin("CustomGeluPluginDynamic", name, fields, [x]).get_output(0)
        b = net.add_constant((1,) * (self.rank - 3) + (bias.shape[0], 1, 1), self.weights(bias))
        b.name = name + "_bias"
        x = self.name(net.add_elementwise(x, b.get_output(0), trt.ElementWiseOperation.SUM), name + "_add_bias")
        prod, add = trt.ElementWiseOperation.PROD, trt.ElementWiseOperation.SUM
        if self.config.gelu == "erf":
            scaled = self.name(net.add_elementwise(x, self.constant(1 / np.sqrt(2), name + "_c1"), prod), name + "_scale")
            inner = self.name(net.add_unary(scaled, trt.UnaryOperation.ERF), name + "_erf")
        else:
            cube = self.name(net.add_elementwise(
                self.name(net.add_elementwise(x, x, prod), name + "_sq"), x, prod), name + "_cube")
            poly = self.name(net.add_elementwise(
                x, self.name(net.add_elementwise(cube, self.constant(0.044715, name + "_c0"), prod), name + "_c0x3"),
                add), name + "_poly")
            scaled = self.name(net.add_elementwise(poly, self.constant(np.sqrt(2 / np.pi), name + "_c1"), prod),
                               name + "_scale")
            inner = self.name(net.add_activation(scaled, trt.ActivationType.TANH), name + "_tanh")
        one_plus = self.name(net.add_elementwise(inner, self.constant(1.0, name + "_one"), add), name + "_1p")
        half_x = self.name(net.add_elementwise(x, self.constant(0.5, name + "_half"), prod), name + "_halfx")
        return self.name(net.add_elementwise(half_x, one_plus, prod), name)

    # --- BERT ---------------------------------------------------------------------------------
    def embedding_fields(self, weights):
        """The LayerNorm and the three embedding tables, as both versions of EmbLayerNorm take them."""
        return [
            self.field_floats("bert_embeddings_layernorm_beta", weights["embeddings.layer_norm.beta"]),
            self.field_floats("bert_embeddings_layernorm_gamma", weights["embeddings.layer_norm.gamma"]),
            self.field_floats("bert_embeddings_word_embeddings", weights["embeddings.word_embeddings"]),
            self.field_floats("bert_embeddings_token_type_embeddings", weights["embeddings.token_type_embeddings"]),
            self.field_floats("bert_embeddings_position_embeddings", weights["embeddings.position_embeddings"]),
        ]

    def embeddings(self, weights, input_ids, segment_ids, input_mask):
        """EmbLayerNorm plugin: (embeddings (seq, batch, hidden, 1, 1), mask for attention)."""
        fields = self.embedding_fields(weights) + [
            self.field_int("output_fp16", int(self.half)),
            # The mask output takes the packed form that the attention plugin's fused kernels of
            # that precision read, so both must agree.
            self.field_int("mha_type_id", self.attention_type),
        ]
        layer = self.add_plugin("CustomEmbLayerNormPluginDynamic", "embeddings",
                                fields, [input_ids, segment_ids, input_mask])
        layer.get_output(1).name = "embeddings_mask"
        return layer.get_output(0), layer.get_output(1)

    def packed_embeddings(self, weights, input_ids, segment_ids, cu_seqlens, max_seqlen):
        """EmbLayerNorm plugin, version 2: (embeddings (tokens, hidden, 1, 1), a placeholder).

        Position ids restart at 0 for each sequence of the packed batch. The second output is
        never written; the version-2 attention plugin takes it in its (unused) mask slot.
        """
        fields = self.embedding_fields(weights) + [self.field_int("output_fp16", 1)]
        layer = self.add_plugin("CustomEmbLayerNormPluginDynamic", "embeddings", fields,
                                [input_ids, segment_ids, cu_seqlens, max_seqlen], PACKED_PLUGIN_VERSION)
        layer.get_output(1).name = "embeddings_placeholder"
        return layer.get_output(0), layer.get_output(1)

    def attention(self, weights, prefix, x, mask):
        """Multi-head self-attention: one QKV projection, then the QKVToContext plugin or layers."""
        cfg = self.config
        heads, head_size, hidden = cfg.num_attention_heads, cfg.head_size, cfg.hidden_size
        kernels = np.stack([weights[f"{prefix}.attention.{p}.kernel"] for p in ("query", "key", "value")])
        biases = np.stack([weights[f"{prefix}.attention.{p}.bias"] for p in ("query", "key", "value")])
        if self.attention_layers:
            qkv_kernel = np.concatenate(kernels, axis=1)
            qkv = self.linear(x, qkv_kernel, biases.reshape(3 * hidden), prefix + "_qkv")
            return self.attention_from_layers(qkv, mask, prefix + "_qkv_to_context")
        # The plugin reads each token's projection as [head][q, k, v][head_size].
        qkv_kernel = kernels.reshape(3, hidden, heads, head_size).transpose(1, 2, 0, 3).reshape(hidden, 3 * hidden)
        qkv_bias = biases.reshape(3, heads, head_size).transpose(1, 0, 2).reshape(3 * hidden)
        qkv = self.linear(x, qkv_kernel, qkv_bias, prefix + "_qkv")
        fields = [self.field_int("type_id", self.attention_type), self.field_int("hidden_size", hidden),
                  self.field_int("num_heads", heads), self.field_int("has_mask", 1)]
        if self.varseqlen:
            # Version 2 reads the sequences' offsets and, from max_seqlen's shape, the padded length
            # that picks its kernel; with var_seqlen 0 it computes nothing on these GPUs.
            fields.append(self.field_int("var_seqlen", 1))
            return self.add_plugin("CustomQKVToContextPluginDynamic", prefix + "_qkv_to_context", fields,
                                   [qkv, mask, *self.sequence_offsets], PACKED_PLUGIN_VERSION).get_output(0)
        return self.add_plugin("CustomQKVToContextPluginDynamic", prefix + "_qkv_to_context",
                               fields, [qkv, mask]).get_output(0)

    def attention_from_layers(self, qkv, mask_bias, name):
        """softmax(Q K^T / sqrt(d) + mask_bias) V for qkv (seq, batch, [q|k|v][head][d], 1, 1).

        Works on (1, batch, heads, seq, d) tensors; the result is (seq, batch, hidden, 1, 1).
        """
        trt, net = self.trt, self.network
        heads, head_size = self.config.num_attention_heads, self.config.head_size
        split = net.add_shuffle(qkv)
        split.reshape_dims = (0, 0, 3, heads, head_size)
        split.second_transpose = (2, 1, 3, 0, 4)  # (3, batch, heads, seq, d)
        split = self.name(split, name + "_split")

        def part(index, label):
            which = net.add_constant((1,), self.weights(np.array([index]), np.int32))
            which.name = f"{name}_{label}_index"
            return self.name(net.add_gather(split, which.get_output(0), 0), f"{name}_{label}")

        # Scaling Q before its product is the form TensorRT's attention fusion looks for.
        query = self.name(net.add_elementwise(part(0, "query"), self.constant(head_size ** -0.5, name + "_scale"),
                                              trt.ElementWiseOperation.PROD), name + "_scaled_query")
        scores = self.name(net.add_matrix_multiply(query, trt.MatrixOperation.NONE,
                                                   part(1, "key"), trt.MatrixOperation.TRANSPOSE), name + "_scores")
        scores = self.name(net.add_elementwise(scores, mask_bias, trt.ElementWiseOperation.SUM), name + "_masked")
        softmax = net.add_softmax(scores)
        softmax.axes = 1 << 4  # over the keys
        probabilities = self.name(softmax, name + "_probabilities")
        context = self.name(net.add_matrix_multiply(probabilities, trt.MatrixOperation.NONE,
                                                    part(2, "value"), trt.MatrixOperation.NONE), name + "_context")
        merge = net.add_shuffle(context)
        merge.first_transpose = (3, 1, 2, 4, 0)  # (seq, batch, heads, d, 1)
        merge.reshape_dims = (0, 0, self.config.hidden_size, 1, 1)
        return self.name(merge, name)

    def attention_mask_bias(self, input_mask):
        """0 for tokens to attend to and -10000 for padding, as (1, batch, 1, 1, seq), from (seq, batch)."""
        trt, net = self.trt, self.network
        as_float = self.name(net.add_cast(input_mask, trt.float32), "attention_mask_float")
        shaped = net.add_shuffle(as_float)
        shaped.reshape_dims = (0, 0, 1, 1, 1)
        shaped.second_transpose = (2, 1, 3, 4, 0)
        shaped = self.name(shaped, "attention_mask_shaped")
        minus_one = self.name(net.add_elementwise(shaped, self.constant(-1.0, "attention_mask_one"),
                                                  trt.ElementWiseOperation.SUM), "attention_mask_minus_one")
        return self.name(net.add_elementwise(minus_one, self.constant(10000.0, "attention_mask_scale"),
                                             trt.ElementWiseOperation.PROD), "attention_mask_bias")

    def encoder_layer(self, weights, index, x, mask):
        """One transformer layer: attention and FFN, each closed by residual + LayerNorm."""
        p = f"layer.{index}"
        w = lambda name: weights[f"{p}.{name}"]  # noqa: E731
        context = self.attention(weights, p, x, mask)
        attention_out = self.linear(context, w("attention.output.kernel"), None, p + "_attention_output")
        x = self.skip_layer_norm(attention_out, x, w("attention.layer_norm.gamma"), w("attention.layer_norm.beta"),
                                 w("attention.output.bias"), p + "_attention_layer_norm")
        intermediate = self.linear(x, w("intermediate.kernel"), None, p + "_intermediate")
        activated = self.gelu(intermediate, w("intermediate.bias"), p + "_gelu")
        if self.use_fc_plugin:
            ffn_out = self.fc_plugin(activated, w("output.kernel"), p + "_output")
        else:
            ffn_out = self.linear(activated, w("output.kernel"), None, p + "_output")
        return self.skip_layer_norm(ffn_out, x, w("output.layer_norm.gamma"), w("output.layer_norm.beta"),
                                    w("output.bias"), p + "_output_layer_norm")

    def squad_output(self, weights, x):
        """Start and end logits per token: (batch, seq, 2, 1, 1), or (tokens, 2, 1, 1) packed."""
        # Two output channels: too small to gain from int8, and the answer scores need the range.
        logits = self.linear(x, weights["qa.kernel"], weights["qa.bias"], "qa_outputs", pin=False)
        if self.varseqlen:
            return logits
        to_batch_major = self.network.add_shuffle(logits)
        to_batch_major.first_transpose = (1, 0, 2, 3, 4)
        return self.name(to_batch_major, "qa_outputs_transpose")

    def bert_qa(self, weights, max_sequence_length, dynamic_sequence):
        trt, net = self.trt, self.network
        if self.varseqlen:
            inputs = [net.add_input(name, trt.int32, (-1,)) for name in PACKED_INPUT_NAMES]
            self.sequence_offsets = inputs[2:]
            x, mask = self.packed_embeddings(weights, *inputs)
        else:
            shape = (-1, -1 if dynamic_sequence else max_sequence_length)
            inputs = []
            for name in INPUT_NAMES:
                t = net.add_input(name, trt.int32, shape)
                to_seq_major = net.add_shuffle(t)
                to_seq_major.first_transpose = (1, 0)
                inputs.append(self.name(to_seq_major, name + "_transpose"))
            x, mask = self.embeddings(weights, *inputs)
            if self.attention_layers:
                mask = self.attention_mask_bias(inputs[INPUT_NAMES.index("input_mask")])
        for i in range(self.config.num_hidden_layers):
            x = self.encoder_layer(weights, i, x, mask)
        logits = self.squad_output(weights, x)
        logits.name = OUTPUT_NAME
        net.mark_output(logits)
        logits.dtype = trt.float32
        return net


def create_network(trt, builder):
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # the default, and gone, after 8.x
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return builder.create_network(flags)


def add_profiles(trt, builder, build_config, batch_sizes, sequence_lengths, varseqlen=False):
    """One optimization profile per (batch size, sequence length): batch 1..B at sequence S, tuned for B.

    Packed (--varseqlen): 1..B x S tokens, 1..B sequences (B + 1 offsets), max_seqlen of shape (S,).
    """
    for seq in sorted(sequence_lengths):
        for batch in sorted(batch_sizes):
            profile = builder.create_optimization_profile()
            low, high = input_shapes(1, seq, varseqlen, tokens=1), input_shapes(batch, seq, varseqlen)
            for name in high:
                profile.set_shape(name, low[name], high[name], high[name])
            build_config.add_optimization_profile(profile)


def calibration_profile(builder, seq, varseqlen=False):
    """One window of `seq` tokens: what the calibrator feeds (a packed network reads a cache only)."""
    profile = builder.create_optimization_profile()
    for name, shape in input_shapes(1, seq, varseqlen).items():
        profile.set_shape(name, shape, shape, shape)
    return profile


def builder_flag(trt, name):
    """A precision flag of weakly typed networks, which TensorRT 11 removed."""
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise TensorRTError(f"TensorRT {trt.__version__} has no BuilderFlag.{name} (TensorRT 11 removed weak "
                            "typing); build fp16/int8 engines with TensorRT 8.6 or 10.x")
    return flag


LIBRARY_TACTICS = ("CUBLAS", "CUBLAS_LT", "CUDNN")


def comma_separated(text, choices, what):
    """The items of a comma-separated option value, each one of `choices`."""
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    unknown = [item for item in items if item not in choices]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(choices)}")
    return items


def parse_projections(text):
    """--fp16-projections: comma-separated kinds of projection, e.g. "qkv" or "qkv,output"."""
    return comma_separated(text, PROJECTIONS, "projection")


def parse_tactic_sources(text):
    """--tactic-sources: comma-separated library names to allow, e.g. "cublas_lt" or "cublas,cublas_lt"."""
    allowed = comma_separated((text or "").lower(), [n.lower() for n in LIBRARY_TACTICS], "tactic source")
    return [name.upper() for name in allowed]


def set_tactic_sources(trt, build_config, allowed=()):
    """TensorRT's own kernels, plus the libraries in `allowed` (none by default, as the demo)."""
    sources = build_config.get_tactic_sources()
    for name in LIBRARY_TACTICS:
        source = getattr(trt.TacticSource, name, None)
        if source is None:
            if name in allowed:
                raise TensorRTError(f"TensorRT {trt.__version__} has no {name.lower()} tactics")
            continue
        if name in allowed:
            sources |= 1 << int(source)
        else:
            sources &= ~(1 << int(source))
    build_config.set_tactic_sources(sources)


def read_timing_cache(build_config, path):
    data = b""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    cache = build_config.create_timing_cache(data)
    build_config.set_timing_cache(cache, ignore_mismatch=False)


def serialize_network(trt, logger, args, config, weights, precision, half_plugins, calibration=False,
                      calibration_algorithm="percentile"):
    """Build one network into a serialized engine: (engine bytes, build seconds)."""
    builder = trt.Builder(logger)
    network = create_network(trt, builder)
    build_config = builder.create_builder_config()
    build_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, args.workspace_size << 20)
    set_tactic_sources(trt, build_config, args.tactic_sources)
    if hasattr(trt, "ProfilingVerbosity"):  # layer formats for the engine inspector (perf.py --layer-profile)
        build_config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        build_config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32 arithmetic, as the reference
    if half_plugins:
        build_config.set_flag(builder_flag(trt, "FP16"))
    if args.strict or args.fp16_projections:
        build_config.set_flag(builder_flag(trt, "OBEY_PRECISION_CONSTRAINTS"))
    read_timing_cache(build_config, args.timing_cache)
    if args.optimization_level is not None:
        if not hasattr(build_config, "builder_optimization_level"):
            raise TensorRTError(f"TensorRT {trt.__version__} has no builder optimization levels (8.6 and later)")
        build_config.builder_optimization_level = args.optimization_level

    net = NetworkBuilder(trt, network, config, precision, half_plugins, use_fc_plugin=args.force_fc2_gemm,
                         calibration=calibration, strict=args.strict and not calibration,
                         int8_skipln=args.force_int8_skipln, int8_multihead=args.force_int8_multihead,
                         conv_projections=args.conv_projections, gelu_plugin=not args.no_gelu_plugin,
                         attention_layers=args.attention == "layers",
                         fp16_projections=() if calibration else args.fp16_projections,
                         varseqlen=args.varseqlen)
    net.bert_qa(weights, max(args.sequence_length), dynamic_sequence=len(args.sequence_length) > 1)
    add_profiles(trt, builder, build_config, args.batch_size, args.sequence_length, args.varseqlen)

    calibrator = None
    if precision == "int8":
        build_config.set_flag(builder_flag(trt, "INT8"))
        seq = max(args.sequence_length)
        calibrator = make_calibrator(args.calib_cache, args.squad_json, args.vocab_file, seq,
                                     args.calib_num, args.max_query_length, args.doc_stride,
                                     calibration_algorithm, do_lower_case=args.do_lower_case)
        build_config.int8_calibrator = calibrator
        build_config.set_calibration_profile(calibration_profile(builder, seq, args.varseqlen))

    errors_before = len(logger.errors)
    start = time.time()
    serialized = builder.build_serialized_network(network, build_config)
    build_seconds = time.time() - start
    if serialized is None:
        raise TensorRTError(build_failure(logger.errors[errors_before:], args.workspace_size))
    if args.timing_cache:
        write_atomically(args.timing_cache, bytes(build_config.get_timing_cache().serialize()))
    engine = bytes(serialized)
    # TensorRT objects go in the reverse order of their creation: the network still points at
    # the plugins and weight arrays that NetworkBuilder holds, so it must go first.
    del serialized
    net.network = network = None
    del net, calibrator, build_config, builder
    return engine, build_seconds


def qkv_inputs(config):
    """Names of the tensors that the QKV projections read: the embeddings, then each layer's output."""
    return ["embeddings"] + [f"layer.{i}_output_layer_norm" for i in range(config.num_hidden_layers - 1)]


def calibrate(trt, logger, args, config, weights, cache_path, algorithm):
    """Calibrate into `cache_path`; return the seconds it took.

    Calibration runs the network in fp32, where plugins fixed to fp16 find no formats ("could not
    find any supported formats"). So an fp32-plugin twin of the network, with the same layers and
    tensor names, is calibrated; only its cache is kept (its timing cache would not fit the real
    network). Its engine is thrown away, so it gets one batch-1 profile and the fastest search.
    A packed (--varseqlen) network's twin is the padded one: the packed plugins have no fp32, and
    the two networks name their tensors alike, so the cache fits both.
    """
    twin_args = argparse.Namespace(**{**vars(args), "calib_cache": cache_path, "timing_cache": None,
                                      "batch_size": [1], "optimization_level": 0, "varseqlen": False})
    _, seconds = serialize_network(trt, logger, twin_args, config, weights, "int8", half_plugins=False,
                                   calibration=True, calibration_algorithm=algorithm)
    return seconds


def build_engine(args, config, weights):
    """(engine bytes, precision, build seconds, TensorRT version)."""
    trt = import_tensorrt()
    logger = make_build_logger(trt, args.verbose)
    precision = "int8" if args.int8 else "fp16" if args.fp16 else "fp32"
    seconds = 0.0
    if precision == "int8":
        # The calibrator copies features with pycuda: its CUDA context must be current before
        # TensorRT creates its streams, or calibration fails with "invalid resource handle".
        import_pycuda()
        if not os.path.exists(args.calib_cache):
            seconds += calibrate(trt, logger, args, config, weights, args.calib_cache, "percentile")
            if args.calib_qkv_max:
                maxima = args.calib_cache + ".max"
                seconds += calibrate(trt, logger, args, config, weights, maxima, "max")
                with open(args.calib_cache, "rb") as f, open(maxima, "rb") as g:
                    merged = with_scales_from(f.read(), g.read(), qkv_inputs(config))
                write_atomically(args.calib_cache, merged)
    engine, build_seconds = serialize_network(trt, logger, args, config, weights, precision,
                                              half_plugins=precision != "fp32")
    return engine, precision, seconds + build_seconds, trt.__version__


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("-m", "--ckpt", required=True,
                   help="the checkpoint: a TF checkpoint prefix (model.ckpt-N), a Hugging Face model "
                        "directory, a weights file written by --export-weights (.npz), or a Hugging Face "
                        "Hub id ORG/NAME[@REVISION] (fetched into the Hub cache; HF_HUB_OFFLINE=1 reads it only)")
    p.add_argument("-o", "--output", required=True,
                   help="the engine file to write (or the .npz file with --export-weights)")
    p.add_argument("-b", "--batch-size", type=int, action="append",
                   help="batch size; repeat for several optimization profiles (default 1)")
    p.add_argument("-s", "--sequence-length", type=int, action="append",
                   help="sequence length; repeatable (default 128)")
    p.add_argument("-c", "--config-dir",
                   help="directory holding bert_config.json (default: beside the checkpoint)")
    p.add_argument("-f", "--fp16", action="store_true", help="fp16 precision")
    p.add_argument("-i", "--int8", action="store_true", help="int8 precision (fp16 where int8 is not supported)")
    p.add_argument("-t", "--strict", action="store_true",
                   help="pin every projection to the requested precision (fp16 or int8) and make TensorRT obey it; "
                        "otherwise it keeps a higher precision wherever that is faster")
    p.add_argument("-w", "--workspace-size", type=int, default=2048, help="workspace memory pool in MiB")
    p.add_argument("-j", "--squad-json", help="SQuAD JSON whose features calibrate int8 (use train, not dev)")
    p.add_argument("-v", "--vocab-file", help="vocab.txt of the model (for int8 calibration and the casing, and "
                                              "checked against the model's vocabulary size; default: beside -m)")
    p.add_argument("--do-lower-case", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case text before WordPiece, recorded in ENGINE.json (default: the model's: "
                        "tokenizer_config.json, else cased if the vocabulary has upper-case word pieces)")
    p.add_argument("-n", "--calib-num", type=int, default=100, help="number of features to calibrate on")
    p.add_argument("-g", "--force-fc2-gemm", action="store_true",
                   help="run each FFN's second projection through the CustomFCPluginDynamic GEMM")
    p.add_argument("-iln", "--force-int8-skipln", action="store_true",
                   help="with -i: run the skip-LayerNorm plugins in int8 (fp16 by default; needs hidden 768 or 1024)")
    p.add_argument("-imh", "--force-int8-multihead", action="store_true",
                   help="with -i: run the attention plugins in int8 (fp16 by default; needs heads of 64)")
    p.add_argument("--fp16-projections", type=parse_projections, default=[],
                   help="with -i: projections of every layer to run in fp16 rather than int8, comma-separated: "
                        f"{', '.join(PROJECTIONS)} (e.g. qkv: its LayerNorm input quantizes poorly)")
    p.add_argument("--calib-qkv-max", action=argparse.BooleanOptionalAction, default=None,
                   help="with -i (on by default there): give the inputs of the QKV projections (embeddings, output "
                        "LayerNorms) the maximum of their range from a second, min-max calibration pass, instead "
                        "of the 99.99th percentile, which clips their rare large values; --no-calib-qkv-max "
                        "calibrates every tensor by the percentile only")
    p.add_argument("--calib-cache", help="int8 calibration cache, read if present, written otherwise "
                                         "(default: OUTPUT.calib)")
    p.add_argument("--optimization-level", type=int, choices=range(6), metavar="{0..5}",
                   help="TensorRT's builder optimization level: lower builds faster, higher searches "
                        "more kernels (TensorRT's default: 3)")
    p.add_argument("--tactic-sources", type=parse_tactic_sources, default=[],
                   help="libraries whose kernels TensorRT may also time, comma-separated: cublas, "
                        "cublas_lt, cudnn (default: none, TensorRT's own kernels only)")
    p.add_argument("--timing-cache", help="TensorRT timing cache file, read if present and updated")
    p.add_argument("--max-query-length", type=int, default=64, help="for calibration features")
    p.add_argument("--doc-stride", type=int, default=128, help="for calibration features")
    p.add_argument("--gelu", choices=("erf", "tanh"),
                   help="override the GELU form given by the model config (hidden_act)")
    p.add_argument("--no-gelu-plugin", action="store_true",
                   help="build the tanh GELU from elementwise layers, which TensorRT can fuse into the "
                        "projection before it, instead of TensorRT's GELU plugin")
    p.add_argument("--attention", choices=("plugin", "layers"), default="plugin",
                   help="self-attention through TensorRT's QKVToContext plugin (default) or built from matrix "
                        "multiplies and a softmax, which TensorRT may fuse into an attention kernel of its own")
    p.add_argument("--conv-projections", action=argparse.BooleanOptionalAction, default=None,
                   help="fp16/fp32: run the projections as 1x1 convolutions, as int8 engines do "
                        "(TensorRT fuses a GELU into a convolution; default: matrix multiplies, but "
                        "convolutions with --varseqlen, where --no-conv-projections asks for matrix multiplies)")
    p.add_argument("--varseqlen", action="store_true",
                   help="fp16 or int8: pack each batch's tokens without padding (NVIDIA's variable-sequence-"
                        "length network, version 2 of the plugins, whose attention has Hopper kernels); needs "
                        f"heads of 64 and sequences up to {PACKED_MAX_SEQUENCE}; int8 is calibrated through the "
                        "padded network")
    p.add_argument("--export-weights", action="store_true",
                   help="write the checkpoint as one framework-free .npz file and stop (no TensorRT needed)")
    p.add_argument("--export-fp16", action="store_true", help="with --export-weights: store fp16 (half the size)")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    args = p.parse_args(argv)
    args.batch_size = args.batch_size or [1]
    args.sequence_length = args.sequence_length or [128]
    if args.calib_cache is None:
        args.calib_cache = args.output + ".calib"
    if args.calib_qkv_max is None:  # on with int8: the percentile clips the QKV inputs' rare large values
        args.calib_qkv_max = args.int8
    return args


def check_varseqlen(args, config):
    """What TensorRT 8.6's version-2 plugins support: fp16 or int8, heads of 64 (on Hopper), up to 384 tokens."""
    if not (args.fp16 or args.int8):
        raise ValueError("--varseqlen builds fp16 and int8 engines only (the packed plugins have no fp32); "
                         "add -f/--fp16 or -i/--int8")
    if config.head_size != 64:
        raise ValueError(f"--varseqlen needs heads of 64 (the packed attention plugin's kernels); this model's "
                         f"heads are {config.head_size}")
    if max(args.sequence_length) > PACKED_MAX_SEQUENCE:
        raise ValueError(f"--varseqlen serves sequences of up to {PACKED_MAX_SEQUENCE} tokens (TensorRT's packed "
                         f"embedding plugin); use -s {PACKED_MAX_SEQUENCE} or less")
    conflicts = [flag for flag, given in (("--attention layers", args.attention == "layers"),
                                          ("-g/--force-fc2-gemm", args.force_fc2_gemm)) if given]
    if conflicts:
        raise ValueError(f"--varseqlen does not go with {conflicts[0]}")


def check_arguments(args, config):
    if args.varseqlen:
        check_varseqlen(args, config)
    if min(args.batch_size) < 1 or min(args.sequence_length) < 1:
        raise ValueError("batch sizes and sequence lengths must be positive")
    if max(args.sequence_length) > config.max_position_embeddings:
        raise ValueError(f"sequence length {max(args.sequence_length)} exceeds the model's "
                         f"{config.max_position_embeddings} position embeddings")
    if args.conv_projections is False and args.int8:
        raise ValueError("--no-conv-projections: int8 engines run their projections as 1x1 convolutions "
                         "(what TensorRT quantizes); drop the flag")
    if (args.force_int8_skipln or args.force_int8_multihead) and not args.int8:
        raise ValueError("-iln/--force-int8-skipln and -imh/--force-int8-multihead need -i/--int8")
    if args.fp16_projections and not args.int8:
        raise ValueError("--fp16-projections keeps projections of an int8 engine in fp16; it needs -i/--int8")
    if args.force_int8_multihead and config.head_size != 64:
        raise ValueError(f"-imh/--force-int8-multihead needs heads of 64 (TensorRT's fused int8 attention); "
                         f"this model's heads are {config.head_size}")
    if args.force_int8_multihead and args.attention == "layers":
        raise ValueError("-imh/--force-int8-multihead runs the attention plugin in int8; it does not go with "
                         "--attention layers")
    if args.force_int8_skipln and config.hidden_size not in (768, 1024):
        raise ValueError(f"-iln/--force-int8-skipln needs a hidden size of 768 or 1024 (TensorRT's int8 "
                         f"skip-LayerNorm kernels); this model's is {config.hidden_size}")
    if args.calib_qkv_max and not args.int8:
        raise ValueError("--calib-qkv-max is an int8 calibration option; it needs -i/--int8")
    if args.int8 and os.path.exists(args.calib_cache):
        merged = os.path.exists(args.calib_cache + ".max")
        if args.calib_qkv_max and not merged:
            raise ValueError(f"the calibration cache {args.calib_cache} has percentile scales only (no .max beside "
                             f"it); delete it to calibrate again, or pass --no-calib-qkv-max to use it")
        if not args.calib_qkv_max and merged:
            raise ValueError(f"the calibration cache {args.calib_cache} has the QKV inputs' maxima merged in; "
                             f"delete it and {args.calib_cache}.max to calibrate again, or drop --no-calib-qkv-max")
    if args.int8 and not os.path.exists(args.calib_cache) and not (args.squad_json and args.vocab_file):
        raise ValueError(f"--int8 needs calibration data: -j SQUAD_JSON and -v VOCAB_FILE, or an existing "
                         f"calibration cache ({args.calib_cache})")


def main(argv=None):
    args = parse_args(argv)
    try:
        model_named = args.ckpt
        args.ckpt = resolve_model(args.ckpt)  # a Hub id becomes its snapshot folder in the Hub cache
        args.vocab_file = args.vocab_file or find_vocab(args.ckpt)
        args.do_lower_case = decide_casing(args.ckpt, args.vocab_file, args.do_lower_case,
                                           lambda message: print(f"builder.py: warning: {message}", file=sys.stderr))
        config_path = None
        if args.config_dir:
            config_path = next((os.path.join(args.config_dir, n) for n in ("bert_config.json", "config.json")
                                if os.path.exists(os.path.join(args.config_dir, n))),
                               os.path.join(args.config_dir, "bert_config.json"))
        config, weights = load_weights(args.ckpt, config_path)
        if args.gelu:
            config = type(config)(**{**config.to_dict(), "gelu": args.gelu})
        if args.vocab_file:
            from helpers.tokenization import load_vocab
            check_vocab(config, len(load_vocab(args.vocab_file)))
        if args.export_weights:
            save_weights(args.output, config, weights, np.float16 if args.export_fp16 else np.float32)
            print(f"wrote {args.output}")
            return 0
        check_arguments(args, config)
        engine, precision, seconds, version = build_engine(args, config, weights)
        write_atomically(args.output, engine)
        EngineInfo(tensorrt_version=version, precision=precision, batch_sizes=sorted(args.batch_size),
                   sequence_lengths=sorted(args.sequence_length), model=config.to_dict(), gelu=config.gelu,
                   source=model_named if model_named != args.ckpt else os.path.basename(os.path.normpath(args.ckpt)),
                   build_seconds=round(seconds, 1), do_lower_case=args.do_lower_case,
                   build_options={"tactic_sources": [n.lower() for n in args.tactic_sources],
                                  "optimization_level": args.optimization_level,
                                  "force_fc2_gemm": args.force_fc2_gemm, "strict": args.strict,
                                  "int8_skipln": args.force_int8_skipln,
                                  "int8_multihead": args.force_int8_multihead,
                                  "conv_projections": bool(args.conv_projections),
                                  "matmul_projections": args.conv_projections is False,
                                  "gelu_plugin": not args.no_gelu_plugin,
                                  "attention": args.attention,
                                  "fp16_projections": args.fp16_projections,
                                  "calib_qkv_max": args.calib_qkv_max,
                                  "varseqlen": args.varseqlen}).save(args.output)
        print(f"built {args.output}: {precision}, batch {sorted(args.batch_size)}, "
              f"sequence {sorted(args.sequence_length)}, TensorRT {version}, {seconds:.1f} s, "
              f"{len(engine) / 2**20:.1f} MiB")
        return 0
    except (BertTrtError, ValueError, OSError) as e:
        print(f"builder.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
