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
from conftest import SQUAD_DIR, require
from test_builder_network import Computed, ComputingLayer, ComputingNetwork, fake_tensorrt, options_for

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


def test_explicit_int8_network_computes_the_fake_quantized_reference(hf_model):
    """The first layer of the Hugging Face test model (heads of 64), scales from 8 SQuAD train
    windows, 4 dev windows.
"""
    from helpers.calibrator import calibration_features
    from helpers.quantization import QuantizedModel, calibrate_scales
    from helpers.weights import load_weights
    squad = require(SQUAD_DIR / "train-v1.1.json")
    config, weights = load_weights(hf_model)
    config = dataclasses.replace(config, num_hidden_layers=1)
    weights = {k: v for k, v in weights.items() if not k.startswith("layer.") or int(k.split(".")[1]) < 1}
    seq = 128
    vocab = str(hf_model / "vocab.txt")
    scales = calibrate_scales(config, weights, calibration_features(str(squad), vocab, seq, 8), progress=False)
    ids, segments, mask = calibration_features(str(require(SQUAD_DIR / "dev-v1.1.json")), vocab, seq, 4)
    opts = options_for("int8", attention_layers=True, quantization="explicit")
    opts = dataclasses.replace(opts, sequence_length=(seq,))
    plan = make_plan(opts, config, scales.amax)
    assert plan.int8_projections == {"qkv", "attention_output", "intermediate", "output"}
    network = NetworkWithPlugins(config, weights, {"input_ids": ids, "segment_ids": segments, "input_mask": mask})
    layout = builder.layout_for(opts)
    bert_network.bert_qa(Graph(recording_tensorrt(), network, plan, layout.rank), layout, config, weights)
    logits = network.outputs[0].value[..., 0, 0]  # (batch, seq, 2)
    expected = np.stack(QuantizedModel(config, weights, scales)(ids, segments, mask), -1)
    fp32 = np.stack(reference.ReferenceModel(config, weights)(ids, segments, mask), -1)
    valid = mask.astype(bool)
    network_error, int8_effect = (np.abs(a - b)[valid] for a, b in ((logits, expected), (expected, fp32)))
    print(f"explicit int8 network vs fake-quantized reference: |logit diff| mean {network_error.mean():.2e}, "
          f"max {network_error.max():.2e}; fake-quantized vs fp32: mean {int8_effect.mean():.2e}, "
          f"max {int8_effect.max():.2e}")
    # Not value for value: float32 sums in another order move a few values (1e-5..1e-4 of them,
    # measured) across a rounding boundary, and TensorRT clamps to [-128, 127] where the simulation
    # clamps to [-127, 127]; each such one-step change is carried on by the next layers.
    assert network_error.mean() < 0.05 * int8_effect.mean()
    assert network_error.max() < 0.5 * int8_effect.max()
    assert (logits.argmax(1) == expected.argmax(1)).all()  # the same answer spans
