"""builder.py's network, recorded by a stand-in for TensorRT's network API (no GPU needed).

int8 engines take their scales from a calibration cache keyed by tensor name, written while an
fp32-plugin copy of the network ran. These tests check what that relies on: both networks have
the same layers and tensor names, and the calibration copy exposes every projection's output.
"""
import types

import numpy as np
import pytest

import builder
from helpers.weights import BertConfig, random_weights


class Tensor:
    def __init__(self, name):
        self.name = name
        self.dtype = None


class Layer:
    def __init__(self, network, kind, outputs=1):
        index = len(network.layers)
        self.kind = kind
        self.name = f"(Unnamed Layer* {index}) [{kind}]"
        self._outputs = [Tensor(f"{self.name}_output" + (f"_{i}" if i else "")) for i in range(outputs)]
        network.layers.append(self)

    def get_output(self, i):
        return self._outputs[i]


class Network:
    """Records layers; each add_* returns a layer whose outputs carry TensorRT's automatic names."""

    def __init__(self):
        self.layers, self.outputs = [], []

    def add_input(self, name, dtype, shape):
        return Tensor(name)

    def add_plugin_v2(self, inputs, plugin):
        return Layer(self, "PluginV2DynamicExt", outputs=2)

    def mark_output(self, tensor):
        self.outputs.append(tensor)

    def __getattr__(self, attribute):
        kinds = {"add_shuffle": "Shuffle", "add_constant": "Constant", "add_matrix_multiply": "MatrixMultiply",
                 "add_elementwise": "ElementWise", "add_unary": "Unary", "add_activation": "Activation",
                 "add_convolution_nd": "Convolution"}
        if attribute not in kinds:
            raise AttributeError(attribute)
        return lambda *args: Layer(self, kinds[attribute])


def fake_tensorrt(plugins=None):
    """A stand-in for the tensorrt module; `plugins` collects {layer name: {field: first value}}."""
    def creator(name, version, namespace):
        def create_plugin(layer_name, fields):
            if plugins is not None:
                plugins[layer_name] = {field: data[0] for field, data, kind in fields if data.size == 1}
            return object()
        return types.SimpleNamespace(create_plugin=create_plugin)

    registry = types.SimpleNamespace(get_plugin_creator=creator)
    names = lambda *members: types.SimpleNamespace(**{m: m for m in members})  # noqa: E731
    return types.SimpleNamespace(
        get_plugin_registry=lambda: registry, Weights=lambda array=None: array,
        PluginField=lambda name, data, kind: (name, data, kind), PluginFieldCollection=list,
        PluginFieldType=names("INT32", "FLOAT32", "FLOAT16"), MatrixOperation=names("NONE"),
        ElementWiseOperation=names("SUM", "PROD"), UnaryOperation=names("ERF"), ActivationType=names("TANH"),
        int32="int32", float32="float32", float16="float16", int8="int8")


CONFIG = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128,
                    vocab_size=100, max_position_embeddings=32)


def build_network(precision, half_plugins, calibration=False, config=CONFIG, strict=False, plugins=None, **int8):
    net = builder.NetworkBuilder(fake_tensorrt(plugins), Network(), config, precision, half_plugins,
                                 calibration=calibration, strict=strict, **int8)
    net.bert_qa(random_weights(config, seed=1), 32, dynamic_sequence=False)
    return net.network


def tensor_names(network):
    return [t.name for layer in network.layers for t in layer._outputs]


@pytest.mark.parametrize("gelu", ["erf", "tanh"])
def test_calibration_network_matches_the_int8_network(gelu):
    config = BertConfig(**{**CONFIG.to_dict(), "gelu": gelu})
    twin = build_network("int8", half_plugins=False, calibration=True, config=config)
    real = build_network("int8", half_plugins=True, config=config)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in real.layers]
    assert tensor_names(twin) == tensor_names(real)
    assert len(set(tensor_names(real))) == len(tensor_names(real))  # a cache entry names one tensor


def test_calibration_network_exposes_every_projection():
    twin = build_network("int8", half_plugins=False, calibration=True)
    projections = [layer.get_output(0).name for layer in twin.layers if layer.kind == "Convolution"]
    per_layer = ("qkv", "attention_output", "intermediate", "output")
    assert projections == [f"layer.{i}_{p}" for i in range(2) for p in per_layer] + ["qa_outputs"]
    assert [t.name for t in twin.outputs] == projections + [builder.OUTPUT_NAME]
    real = build_network("int8", half_plugins=True)
    assert [t.name for t in real.outputs] == [builder.OUTPUT_NAME]


def test_fp16_and_fp32_use_matrix_multiplies():
    for precision, half in (("fp32", False), ("fp16", True)):
        network = build_network(precision, half)
        kinds = [layer.kind for layer in network.layers]
        assert "Convolution" not in kinds
        assert kinds.count("MatrixMultiply") == 4 * 2 + 1
        assert [t.name for t in network.outputs] == [builder.OUTPUT_NAME]
        assert network.outputs[0].dtype == "float32"


@pytest.mark.parametrize("precision,kind", [("int8", "Convolution"), ("fp16", "MatrixMultiply")])
def test_strict_pins_the_projections_to_the_requested_precision(precision, kind):
    strict = build_network(precision, half_plugins=True, strict=True)
    projections = [layer for layer in strict.layers if layer.kind == kind]
    assert len(projections) == 4 * 2 + 1
    pinned = {layer.name: getattr(layer, "precision", None) for layer in projections}
    assert pinned.pop("qa_outputs") is None  # the QA head keeps whatever TensorRT finds best
    assert set(pinned.values()) == {"int8" if precision == "int8" else "float16"}
    loose = build_network(precision, half_plugins=True)
    assert not any(hasattr(layer, "precision") for layer in loose.layers)


HEADS_OF_64 = BertConfig(**{**CONFIG.to_dict(), "hidden_size": 128})
HEADS_OF_32 = CONFIG


@pytest.mark.parametrize("precision,half,config,int8,types_expected", [
    # (precision, fp16 plugins, model, -iln/-imh) -> (embeddings mask, attention, layer norm) types
    ("fp32", False, HEADS_OF_64, {}, (0, 0, 0)),
    ("fp16", True, HEADS_OF_64, {}, (1, 1, 1)),
    ("fp16", True, HEADS_OF_32, {}, (0, 0, 1)),  # no fused fp16 attention for heads of 32
    ("int8", True, HEADS_OF_64, {}, (1, 1, 1)),
    ("int8", True, HEADS_OF_64, {"int8_skipln": True}, (1, 1, 2)),
    ("int8", True, HEADS_OF_64, {"int8_multihead": True}, (2, 2, 1)),
    ("int8", True, HEADS_OF_64, {"int8_skipln": True, "int8_multihead": True}, (2, 2, 2)),
    ("int8", False, HEADS_OF_64, {"int8_skipln": True, "int8_multihead": True, "calibration": True}, (0, 0, 0)),
])
def test_plugin_precisions(precision, half, config, int8, types_expected):
    plugins = {}
    build_network(precision, half, config=config, plugins=plugins, **int8)
    mask, attention, layer_norm = types_expected
    assert plugins["embeddings"]["mha_type_id"] == mask
    assert plugins["embeddings"]["output_fp16"] == int(half)
    assert {plugins[f"layer.{i}_qkv_to_context"]["type_id"] for i in range(2)} == {attention}
    assert {plugins[f"layer.{i}_{n}_layer_norm"]["type_id"] for i in range(2) for n in ("attention", "output")} \
        == {layer_norm}


def test_int8_plugin_flags_are_checked(tmp_path):
    args = builder.parse_args(["-m", "m", "-o", str(tmp_path / "e"), "-s", "32", "-imh"])
    with pytest.raises(ValueError, match="need -i/--int8"):
        builder.check_arguments(args, HEADS_OF_64)
    args = builder.parse_args(["-m", "m", "-o", str(tmp_path / "e"), "-s", "32", "-i", "-imh", "-j", "t.json",
                               "-v", "v.txt"])
    builder.check_arguments(args, HEADS_OF_64)
    with pytest.raises(ValueError, match="needs heads of 64 .* this model's heads are 32"):
        builder.check_arguments(args, HEADS_OF_32)


def test_plugin_arrays_stay_alive():
    net = builder.NetworkBuilder(fake_tensorrt(), Network(), CONFIG, "fp16", True)
    net.bert_qa(random_weights(CONFIG, seed=1), 32, dynamic_sequence=False)
    # Every array handed over (weights and plugin fields) is held by the builder until it is freed.
    assert len(net.arrays) > 8 * CONFIG.num_hidden_layers
    assert all(isinstance(a, np.ndarray) for a in net.arrays)
