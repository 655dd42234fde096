"""The explicitly quantized (Q/DQ) network builder.py writes, evaluated with numpy layer by layer,
computes what helpers/quantization.py's CPU simulation of int8 computes (every projection's input
quantized per tensor with its calibrated scale, its kernel per output channel).

The plugins are evaluated by their definitions: EmbLayerNorm as the reference embeddings,
SkipLayerNorm as LayerNorm(x + bias + skip); the attention is built from layers (--attention layers)
so that the network's own softmax and matrix multiplies are what runs.
"""
import dataclasses
import types

import numpy as np

import builder
from helpers import bert_network, reference
from helpers.graph import Graph
from helpers.precision import make_plan
from helpers.weights import BertConfig, random_weights
from test_builder_network import Computed, ComputingLayer, ComputingNetwork, fake_tensorrt, options_for

CONFIG = BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=256,
                    vocab_size=100, max_position_embeddings=32)


class PluginLayer(ComputingLayer):
    """A plugin layer with two outputs, evaluated by `compute(index)`."""

    def __init__(self, compute):
        self.name = ""
        self.inputs = {}
        self.outputs = [Computed(lambda i=i: compute(i)) for i in range(2)]

    def get_output(self, i):
        return self.outputs[i]


class NetworkWithPlugins(ComputingNetwork):
    def __init__(self, config, weights, feeds):
        self.config, self.weights, self.feeds, self.outputs = config, weights, feeds, []

    def add_input(self, name, dtype, shape):
        return Computed(lambda: self.feeds[name], name)

    def mark_output(self, tensor):
        self.outputs.append(tensor)

    def add_plugin_v2(self, inputs, plugin):
        fields, eps = plugin.fields, self.config.layer_norm_eps
        if plugin.name == "CustomEmbLayerNormPluginDynamic":
            def compute(index):  # inputs are (seq, batch); the output (seq, batch, hidden, 1, 1)
                ids, segments = inputs[0].value.T, inputs[1].value.T
                return reference.embeddings(self.config, self.weights, ids, segments).transpose(1, 0, 2)[..., None,
                                                                                                         None]
            return PluginLayer(compute)
        if plugin.name == "CustomSkipLayerNormPluginDynamic":
            def compute(index):
                x = inputs[0].value[..., 0, 0] + inputs[1].value[..., 0, 0] + fields["bias"]
                return reference.layer_norm(x.astype(np.float32), fields["gamma"], fields["beta"], eps)[..., None, None]
            return PluginLayer(compute)
        raise AssertionError(f"no numpy evaluation of plugin {plugin.name}")


def recording_tensorrt():
    trt = fake_tensorrt()

    def creator(name, version, namespace):
        def create_plugin(layer_name, collection):
            return types.SimpleNamespace(name=name, fields={f: np.asarray(d, np.float32) for f, d, kind in collection})
        return types.SimpleNamespace(create_plugin=create_plugin)

    trt.get_plugin_registry = lambda: types.SimpleNamespace(get_plugin_creator=creator)
    return trt


def windows(count, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, CONFIG.vocab_size, (count, seq)).astype(np.int32)
    segments = (np.arange(seq) >= seq // 3).astype(np.int32)[None].repeat(count, 0)
    lengths = rng.integers(seq // 2, seq + 1, count)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    return ids, segments * mask, mask


def test_explicit_int8_network_computes_the_fake_quantized_reference():
    from helpers.quantization import QuantizedModel, calibrate_scales
    weights = random_weights(CONFIG, seed=11)
    seq = 16
    scales = calibrate_scales(CONFIG, weights, windows(4, seq, seed=1), progress=False)
    ids, segments, mask = windows(3, seq, seed=2)
    opts = options_for("int8", attention_layers=True, quantization="explicit")
    opts = dataclasses.replace(opts, sequence_length=(seq,))
    plan = make_plan(opts, CONFIG, scales.amax)
    assert plan.int8_projections == {"qkv", "attention_output", "intermediate", "output"}
    network = NetworkWithPlugins(CONFIG, weights, {"input_ids": ids, "segment_ids": segments, "input_mask": mask})
    layout = builder.layout_for(opts)
    bert_network.bert_qa(Graph(recording_tensorrt(), network, plan, layout.rank), layout, CONFIG, weights)
    logits = network.outputs[0].value[..., 0, 0]  # (batch, seq, 2)
    expected = np.stack(QuantizedModel(CONFIG, weights, scales)(ids, segments, mask), -1)
    fp32 = np.stack(reference.ReferenceModel(CONFIG, weights)(ids, segments, mask), -1)
    valid = mask.astype(bool)
    network_error = np.abs(logits - expected)[valid].max()
    print(f"explicit int8 network vs fake-quantized reference: max |diff| {network_error:.2e}; "
          f"fake-quantized vs fp32: {np.abs(fp32 - expected)[valid].max():.2e}")
    assert network_error < 2e-3
    assert np.abs(fp32 - expected)[valid].max() > 10 * network_error  # int8 did change the logits
