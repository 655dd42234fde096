"""builder.py's network, recorded by a stand-in for TensorRT's network API (no GPU needed).

int8 engines take their scales from a calibration cache keyed by tensor name, written while an
fp32-plugin copy of the network ran. These tests check what that relies on: both networks have
the same layers and tensor names, and the calibration copy exposes every projection's output.
"""
import dataclasses
import types

import numpy as np
import pytest

import builder
from helpers import bert_network, reference
from helpers.build_options import BuildOptions, check_calibration_inputs, check_for_model, check_values
from helpers.graph import Graph
from helpers.precision import apply_pins, make_plan
from helpers.weights import BertConfig, random_weights


class Tensor:
    def __init__(self, name):
        self.name = name
        self.dtype = None


class Layer:
    def __init__(self, network, kind, outputs=1, inputs=()):
        index = len(network.layers)
        self.kind = kind
        self.inputs = [t for t in inputs if isinstance(t, Tensor)]
        self.arguments = inputs
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
        self.input_shapes = {**getattr(self, "input_shapes", {}), name: shape}
        return Tensor(name)

    def add_plugin_v2(self, inputs, plugin):
        layer = Layer(self, "PluginV2DynamicExt", outputs=2, inputs=inputs)
        layer.version = plugin.version
        return layer

    def mark_output(self, tensor):
        self.outputs.append(tensor)

    @property
    def num_layers(self):
        return len(self.layers)

    def get_layer(self, index):
        return self.layers[index]

    def __getattr__(self, attribute):
        kinds = {"add_shuffle": "Shuffle", "add_constant": "Constant", "add_matrix_multiply": "MatrixMultiply",
                 "add_elementwise": "ElementWise", "add_unary": "Unary", "add_activation": "Activation",
                 "add_convolution_nd": "Convolution", "add_gather": "Gather", "add_softmax": "SoftMax",
                 "add_cast": "Cast"}
        if attribute not in kinds:
            raise AttributeError(attribute)
        return lambda *args: Layer(self, kinds[attribute], inputs=args)


def fake_tensorrt(plugins=None):
    """A stand-in for the tensorrt module; `plugins` collects {layer name: {field: first value}}."""
    def creator(name, version, namespace):
        def create_plugin(layer_name, fields):
            if plugins is not None:
                plugins[layer_name] = {field: data[0] for field, data, kind in fields if data.size == 1}
                plugins[layer_name]["fields"] = [field for field, data, kind in fields]
            return types.SimpleNamespace(version=version)
        return types.SimpleNamespace(create_plugin=create_plugin)

    registry = types.SimpleNamespace(get_plugin_creator=creator)
    names = lambda *members: types.SimpleNamespace(**{m: m for m in members})  # noqa: E731
    return types.SimpleNamespace(
        get_plugin_registry=lambda: registry,
        Weights=lambda array=None: array if isinstance(array, np.ndarray) else None,
        PluginField=lambda name, data, kind: (name, data, kind), PluginFieldCollection=list,
        __version__="10.11.0.33",
        PluginFieldType=names("INT32", "FLOAT32", "FLOAT16"), MatrixOperation=names("NONE", "TRANSPOSE"),
        ElementWiseOperation=names("SUM", "PROD"), UnaryOperation=names("ERF"), ActivationType=names("TANH"),
        int32="int32", float32="float32", float16="float16", int8="int8")


CONFIG = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128,
                    vocab_size=100, max_position_embeddings=32)


def options_for(precision, strict=False, int8_skipln=False, int8_multihead=False, conv_projections=None,
                gelu_plugin=True, attention_layers=False, fp16_projections=(), varseqlen=False, use_fc_plugin=False,
                quantization=None):
    return BuildOptions(ckpt="m", output="e", fp16=precision == "fp16", int8=precision == "int8", strict=strict,
                        int8_skipln=int8_skipln, int8_multihead=int8_multihead, conv_projections=conv_projections,
                        gelu_plugin=gelu_plugin, attention="layers" if attention_layers else "plugin",
                        fp16_projections=tuple(fp16_projections), varseqlen=varseqlen, force_fc2_gemm=use_fc_plugin,
                        quantization=quantization or ("implicit" if precision == "int8" else None),
                        sequence_length=(32,))


def graph_for(trt, network, config, precision, calibration=False, amax=None, **options):
    """What builder.serialize_network builds for these options: the plan, the layout, the Graph."""
    opts = options_for(precision, **options)
    plan = make_plan(opts, config, amax, calibration=calibration)
    layout = builder.layout_for(opts, varseqlen=False if calibration else None)
    return Graph(trt, network, plan, layout.rank), layout


def build_network(precision, half_plugins, calibration=False, config=CONFIG, strict=False, plugins=None, **options):
    trt = fake_tensorrt(plugins)
    g, layout = graph_for(trt, Network(), config, precision, calibration, strict=strict and not calibration,
                          **options)
    assert g.plan.half == half_plugins
    bert_network.bert_qa(g, layout, config, random_weights(config, seed=1))
    apply_pins(trt, g.network, g.plan)
    return g.network


def parsed(argv):
    """builder.py's options for a command line, as main() decides them."""
    return BuildOptions.from_namespace(builder.parse_args(argv))


def check_arguments(args, config):
    """main()'s checks of a command line on a model, as on TensorRT 10.x (weak typing by default)."""
    options = BuildOptions.from_namespace(args).with_version_defaults("10.11.0")
    check_values(options)
    check_for_model(options, config)
    check_calibration_inputs(options)


def tensor_names(network):
    return [t.name for layer in network.layers for t in layer._outputs]


@pytest.mark.parametrize("gelu,attention_layers", [("erf", False), ("tanh", False), ("erf", True)])
def test_calibration_network_matches_the_int8_network(gelu, attention_layers):
    config = BertConfig(**{**CONFIG.to_dict(), "gelu": gelu})
    twin = build_network("int8", half_plugins=False, calibration=True, config=config,
                         attention_layers=attention_layers)
    real = build_network("int8", half_plugins=True, config=config, attention_layers=attention_layers)
    assert [layer.kind for layer in real.layers].count("SoftMax") == (2 if attention_layers else 0)
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


def test_fp16_and_fp32_use_matrix_multiplies_unless_asked_for_convolutions():
    for precision, half in (("fp32", False), ("fp16", True)):
        network = build_network(precision, half)
        kinds = [layer.kind for layer in network.layers]
        assert "Convolution" not in kinds
        assert kinds.count("MatrixMultiply") == 4 * 2 + 1
        assert [t.name for t in network.outputs] == [builder.OUTPUT_NAME]
        assert network.outputs[0].dtype == "float32"
        convolutions = build_network(precision, half, conv_projections=True)
        kinds = [layer.kind for layer in convolutions.layers]
        assert "MatrixMultiply" not in kinds
        assert [layer.name for layer in convolutions.layers if layer.kind == "Convolution"] == \
            [f"layer.{i}_{p}" for i in range(2) for p in ("qkv", "attention_output", "intermediate", "output")] \
            + ["qa_outputs"]


@pytest.mark.parametrize("precision,kind,conv", [("int8", "Convolution", False), ("fp16", "MatrixMultiply", False),
                                                 ("fp16", "Convolution", True)])
def test_strict_pins_the_projections_to_the_requested_precision(precision, kind, conv):
    strict = build_network(precision, half_plugins=True, strict=True, conv_projections=conv)
    projections = [layer for layer in strict.layers if layer.kind == kind]
    assert len(projections) == 4 * 2 + 1
    pinned = {layer.name: getattr(layer, "precision", None) for layer in projections}
    assert pinned.pop("qa_outputs") is None  # the QA head keeps whatever TensorRT finds best
    assert set(pinned.values()) == {"int8" if precision == "int8" else "float16"}
    loose = build_network(precision, half_plugins=True, conv_projections=conv)
    assert not any(hasattr(layer, "precision") for layer in loose.layers)


@pytest.mark.parametrize("gelu_plugin", [True, False])
def test_tanh_gelu_from_the_plugin_or_from_layers(gelu_plugin):
    config = BertConfig(**{**CONFIG.to_dict(), "gelu": "tanh"})
    plugins = {}
    network = build_network("fp16", True, config=config, plugins=plugins, gelu_plugin=gelu_plugin)
    assert ("layer.0_gelu" in plugins) == gelu_plugin
    assert any(layer.kind == "Activation" for layer in network.layers) != gelu_plugin  # the tanh layer


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
        check_arguments(args, HEADS_OF_64)
    args = builder.parse_args(["-m", "m", "-o", str(tmp_path / "e"), "-s", "32", "-i", "-imh", "-j", "t.json",
                               "-v", "v.txt"])
    check_arguments(args, HEADS_OF_64)
    with pytest.raises(ValueError, match="needs heads of 64 .* this model's heads are 32"):
        check_arguments(args, HEADS_OF_32)
    args.attention = "layers"
    with pytest.raises(ValueError, match="does not go with --attention layers"):
        check_arguments(args, HEADS_OF_64)
    # TensorRT 8.6's int8 skip-LayerNorm kernel failed at run time on a hidden size of 384.
    args = builder.parse_args(["-m", "m", "-o", str(tmp_path / "e"), "-s", "32", "-i", "-iln", "-j", "t.json",
                               "-v", "v.txt"])
    check_arguments(args, dataclasses.replace(HEADS_OF_64, hidden_size=768, num_attention_heads=12))
    with pytest.raises(ValueError, match="needs a hidden size of 768 or 1024 .* this model's is 128"):
        check_arguments(args, HEADS_OF_64)


def test_plugin_arrays_stay_alive():
    net, layout = graph_for(fake_tensorrt(), Network(), CONFIG, "fp16")
    bert_network.bert_qa(net, layout, CONFIG, random_weights(CONFIG, seed=1))
    # Every array handed over (weights and plugin fields) is held by the builder until it is freed.
    assert len(net.arrays) > 8 * CONFIG.num_hidden_layers
    assert all(isinstance(a, np.ndarray) for a in net.arrays)


class Computed:
    """A stand-in tensor whose value is computed with numpy when read."""

    def __init__(self, compute, name=""):
        self.compute, self.name, self.dtype = compute, name, None

    @property
    def value(self):
        # computed once, when first read (after the layer's attributes are set): a network reads
        # a tensor from several layers (the residual, the three parts of QKV)
        if not hasattr(self, "_value"):
            self._value = self.compute()
        return self._value


class ComputingLayer:
    def __init__(self, compute):
        self.name = ""
        self.inputs = {}
        self.output = Computed(lambda: compute(self))

    def get_output(self, i):
        return self.output

    def set_input(self, index, tensor):
        self.inputs[index] = tensor


CLAMP = -128
NUMPY_TYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32}


def along(scale, axis, rank):
    """A per-channel scale shaped to broadcast along `axis` of a rank-`rank` tensor."""
    if axis is None or scale.ndim == 0 or scale.size == 1:
        return scale.reshape(())
    return scale.reshape([-1 if i == axis else 1 for i in range(rank)])


class ComputingNetwork:
    """Evaluates, with numpy, the layers builder.py uses outside the plugins."""

    def add_constant(self, shape, weights):
        return ComputingLayer(lambda layer: np.asarray(weights).reshape(shape))

    def add_shuffle(self, t):
        def compute(layer):
            a = t.value
            if getattr(layer, "first_transpose", None):
                a = a.transpose(layer.first_transpose)
            if getattr(layer, "reshape_dims", None):
                a = a.reshape([a.shape[i] if d == 0 else d for i, d in enumerate(layer.reshape_dims)])
            if getattr(layer, "second_transpose", None):
                a = a.transpose(layer.second_transpose)
            return a
        return ComputingLayer(compute)

    def add_gather(self, data, indices, axis):
        return ComputingLayer(lambda layer: np.take(data.value, indices.value, axis=axis))

    def add_elementwise(self, a, b, op):
        return ComputingLayer(lambda layer: a.value + b.value if op == "SUM" else a.value * b.value)

    def add_matrix_multiply(self, a, op_a, b, op_b):
        def operand(t, op):
            return np.swapaxes(t.value, -1, -2) if op == "TRANSPOSE" else t.value
        return ComputingLayer(lambda layer: np.matmul(operand(a, op_a), operand(b, op_b)))

    def add_softmax(self, t):
        def compute(layer):
            axis = int(layer.axes).bit_length() - 1
            e = np.exp(t.value - t.value.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)
        return ComputingLayer(compute)

    def add_cast(self, t, dtype):
        return ComputingLayer(lambda layer: t.value.astype(NUMPY_TYPES[dtype]))

    def add_quantize(self, t, scale, output_type="int8"):
        """TensorRT's quantization: round half to even of x / scale, clamped to [-128, 127]."""
        def compute(layer):
            s = along(scale.value.astype(np.float32), getattr(layer, "axis", None), t.value.ndim)
            return np.clip(np.round(t.value.astype(np.float32) / s), CLAMP, 127).astype(np.int8)
        return ComputingLayer(compute)

    def add_dequantize(self, t, scale, output_type="float32"):
        def compute(layer):
            s = along(scale.value.astype(np.float32), getattr(layer, "axis", None), t.value.ndim)
            return (t.value.astype(np.float32) * s).astype(NUMPY_TYPES[output_type])
        return ComputingLayer(compute)

    def add_convolution_nd(self, t, n_out, kernel_shape, kernel, bias):
        def compute(layer):  # a 1x1 convolution over (..., channels, 1, 1); the kernel may be an input
            w = (layer.inputs[1].value if 1 in layer.inputs else np.asarray(kernel)).reshape(n_out, -1)
            y = np.einsum("...i,oi->...o", t.value[..., 0, 0], w)
            return (y if bias is None else y + np.asarray(bias))[..., None, None]
        return ComputingLayer(compute)

    def add_unary(self, t, op):
        return ComputingLayer(lambda layer: reference.erf(t.value))

    def add_activation(self, t, kind):
        return ComputingLayer(lambda layer: np.tanh(t.value))


def test_attention_from_layers_computes_the_reference_attention():
    """--attention layers: the network's attention (QKV projection, mask, softmax) evaluated with numpy
    against the numpy reference model's, padding included."""
    config, batch, seq = HEADS_OF_64, 2, 5
    weights = random_weights(config, seed=3)
    net, layout = graph_for(fake_tensorrt(), ComputingNetwork(), config, "fp32", attention_layers=True)
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((batch, seq, config.hidden_size)).astype(np.float32)
    input_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    x = Computed(lambda: hidden.transpose(1, 0, 2)[..., None, None])  # (seq, batch, hidden, 1, 1)
    mask_bias = bert_network.attention_mask_bias(net, Computed(lambda: input_mask.T))
    context = bert_network.attention(net, layout, config, weights, 0, x, mask_bias).value
    expected = reference.self_attention(config, weights, 0, hidden, (1 - input_mask) * reference.MASK_BIAS)
    assert context.shape == (seq, batch, config.hidden_size, 1, 1)
    np.testing.assert_allclose(context[..., 0, 0].transpose(1, 0, 2), expected, atol=1e-5)


def test_fp16_projections_stay_fp16_in_int8_engines():
    """--fp16-projections qkv: the QKV projections are pinned to fp16, the others as -t says."""
    strict = build_network("int8", half_plugins=True, strict=True, fp16_projections=["qkv"])
    pinned = {layer.name: getattr(layer, "precision", None) for layer in strict.layers if layer.kind == "Convolution"}
    assert pinned.pop("qa_outputs") is None
    assert pinned == {f"layer.{i}_{p}": "float16" if p == "qkv" else "int8"
                      for i in range(2) for p in ("qkv", "attention_output", "intermediate", "output")}
    loose = build_network("int8", half_plugins=True, fp16_projections=["qkv", "output"])
    pinned = {layer.name: layer.precision for layer in loose.layers if hasattr(layer, "precision")}
    assert pinned == {f"layer.{i}_{p}": "float16" for i in range(2) for p in ("qkv", "output")}
    twin = build_network("int8", half_plugins=False, calibration=True)  # builder.py gives the twin none
    assert not any(hasattr(layer, "precision") for layer in twin.layers)


def test_fp16_projections_flag(tmp_path):
    args = builder.parse_args(["-m", "m", "-o", str(tmp_path / "e"), "-s", "32", "--fp16-projections", "qkv, output"])
    assert args.fp16_projections == ["qkv", "output"]
    with pytest.raises(ValueError, match="needs -i/--int8"):
        check_arguments(args, HEADS_OF_64)
    with pytest.raises(SystemExit):
        builder.parse_args(["-m", "m", "-o", "o", "--fp16-projections", "attention"])


def test_qkv_inputs_name_the_tensors_the_qkv_projections_read():
    """--calib-qkv-max replaces the calibration scales of exactly the tensors feeding QKV."""
    network = build_network("int8", half_plugins=True)
    read = {layer.name: layer.inputs[0].name for layer in network.layers if layer.name.endswith("_qkv")}
    assert read == dict(zip((f"layer.{i}_qkv" for i in range(2)), builder.qkv_inputs(CONFIG)))


def test_calib_qkv_max_flag(tmp_path):
    """On by default in int8 builds; a cache is only reused by a build that calibrates the same way."""
    cache = tmp_path / "e.calib"
    argv = ["-m", "m", "-o", str(tmp_path / "e"), "-s", "32", "--calib-cache", str(cache)]
    assert parsed(argv).calib_qkv_max is False
    with pytest.raises(ValueError, match="needs -i/--int8"):
        check_arguments(builder.parse_args(argv + ["--calib-qkv-max"]), HEADS_OF_64)
    int8 = argv + ["-i", "-j", "t.json", "-v", "v.txt"]
    default, explicit, percentile = (builder.parse_args(int8 + flags)
                                     for flags in ([], ["--calib-qkv-max"], ["--no-calib-qkv-max"]))
    assert tuple(BuildOptions.from_namespace(a).calib_qkv_max for a in (default, explicit, percentile)) == \
        (True, True, False)
    for args in (default, explicit, percentile):
        check_arguments(args, HEADS_OF_64)
    cache.write_text("header\n")  # percentile scales only: no .max beside it
    check_arguments(percentile, HEADS_OF_64)
    for args in (default, explicit):
        with pytest.raises(ValueError, match="has percentile scales only .* or pass --no-calib-qkv-max"):
            check_arguments(args, HEADS_OF_64)
    (tmp_path / "e.calib.max").write_text("header\n")
    for args in (default, explicit):
        check_arguments(args, HEADS_OF_64)
    with pytest.raises(ValueError, match="maxima merged in; delete it and .*e.calib.max"):
        check_arguments(percentile, HEADS_OF_64)


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("gelu", ["erf", "tanh"])
@pytest.mark.parametrize("tokens", [(5, 2), (7,)], ids=["padded", "packed"])
def test_projection_and_gelu_layers_compute_the_reference(conv, gelu, tokens):
    """The FFN up-projection (matrix multiply, or 1x1 convolution with --conv-projections) and the GELU
    built from elementwise layers (erf, or tanh with --no-gelu-plugin), evaluated with numpy, on
    (seq, batch, hidden, 1, 1) and on packed (tokens, hidden, 1, 1) activations."""
    config = BertConfig(**{**HEADS_OF_64.to_dict(), "gelu": gelu})
    weights = random_weights(config, seed=5)
    net, layout = graph_for(fake_tensorrt(), ComputingNetwork(), config, "fp16" if len(tokens) == 1 else "fp32",
                            conv_projections=conv, gelu_plugin=False, varseqlen=len(tokens) == 1)
    x = np.random.default_rng(1).standard_normal(tokens + (config.hidden_size,)).astype(np.float32)
    kernel, bias = weights["layer.0.intermediate.kernel"], weights["layer.0.intermediate.bias"]
    up = net.linear(Computed(lambda: x[..., None, None]), kernel, None, "layer.0_intermediate", layout.convolutions)
    activated = net.gelu(up, bias, config.gelu, "layer.0_gelu", layout.gelu_plugin).value
    expected = reference.gelu(reference.linear(x, kernel, bias), gelu)
    assert activated.shape == tokens + (config.intermediate_size, 1, 1)
    np.testing.assert_allclose(activated[..., 0, 0], expected, atol=1e-5)


def test_varseqlen_network_packs_tokens_through_version_2_plugins():
    """--varseqlen: four 1-D inputs, version 2 of the three BERT plugins with the fields that version
    reads, (tokens, hidden, 1, 1) activations through 1x1 convolutions, (tokens, 2, 1, 1) logits."""
    plugins = {}
    network = build_network("fp16", True, config=HEADS_OF_64, plugins=plugins, varseqlen=True)
    assert network.input_shapes == {name: (-1,) for name in ("input_ids", "segment_ids", "cu_seqlens", "max_seqlen")}
    versions = {layer.name: layer.version for layer in network.layers if layer.kind == "PluginV2DynamicExt"}
    assert set(versions.values()) == {"2"}
    assert len(versions) == 1 + 2 * 3  # embeddings, then attention and two LayerNorms per layer
    assert "mha_type_id" not in plugins["embeddings"]["fields"] and plugins["embeddings"]["output_fp16"] == 1
    for i in range(2):
        attention = plugins[f"layer.{i}_qkv_to_context"]
        assert (attention["type_id"], attention["has_mask"], attention["var_seqlen"]) == (1, 1, 1)
        assert [plugins[f"layer.{i}_{n}_layer_norm"]["fields"] for n in ("attention", "output")] == \
            [["type_id", "beta", "gamma", "bias"]] * 2
    layers = {layer.name: layer for layer in network.layers}
    embeddings = layers["embeddings"]
    assert [t.name for t in embeddings.inputs] == ["input_ids", "segment_ids", "cu_seqlens", "max_seqlen"]
    qkv = layers["layer.0_qkv_to_context"]
    assert [t.name for t in qkv.inputs] == ["layer.0_qkv", embeddings.get_output(1).name, "cu_seqlens", "max_seqlen"]
    kinds = [layer.kind for layer in network.layers]
    assert "MatrixMultiply" not in kinds and "Shuffle" not in kinds  # no transposes: tokens stay packed
    assert kinds.count("Convolution") == 4 * 2 + 1
    constant_ranks = {len(layer.arguments[0]) for layer in network.layers if layer.kind == "Constant"}
    assert constant_ranks == {4}  # GELU constants broadcast against (tokens, hidden, 1, 1)
    assert [t.name for t in network.outputs] == [builder.OUTPUT_NAME]
    assert layers["qa_outputs"].get_output(0) is network.outputs[0]


def test_packed_network_takes_matrix_multiplies_when_asked():
    """--varseqlen --no-conv-projections: the projections as matrix multiplies on (tokens, in), each
    between two reshapes; convolutions stay the packed default (what session 5 timed)."""
    network = build_network("fp16", True, config=HEADS_OF_64, varseqlen=True, conv_projections=False)
    kinds = [layer.kind for layer in network.layers]
    assert kinds.count("MatrixMultiply") == 4 * 2 + 1 and "Convolution" not in kinds
    assert kinds.count("Shuffle") == 2 * (4 * 2 + 1)
    kernel_shapes = {layer.arguments[0] for layer in network.layers
                     if layer.kind == "Constant" and layer.name.endswith("_kernel")}
    assert {len(shape) for shape in kernel_shapes} == {2}


def test_varseqlen_flag_checks(tmp_path):
    argv = ["-m", "m", "-o", str(tmp_path / "e"), "--varseqlen", "-s", "32", "-b", "8"]
    check_arguments(builder.parse_args(argv + ["-f"]), HEADS_OF_64)
    check_arguments(builder.parse_args(argv + ["-i", "-j", "t", "-v", "v"]), HEADS_OF_64)
    for extra, config, message in (([], HEADS_OF_64, "fp16 and int8 engines only"),
                                   ([], HEADS_OF_64, "add -f/--fp16 or -i/--int8"),
                                   (["-f"], HEADS_OF_32, "needs heads of 64"),
                                   (["-f", "-s", "512"], HEADS_OF_64, "up to 384 tokens"),
                                   (["-f", "--attention", "layers"], HEADS_OF_64, "--attention layers"),
                                   (["-f", "-g"], HEADS_OF_64, "-g/--force-fc2-gemm"),
                                   (["-i", "-j", "t", "-v", "v", "--no-conv-projections"], HEADS_OF_64,
                                    "int8 engines run their projections as 1x1 convolutions")):
        with pytest.raises(ValueError, match=message):
            check_arguments(builder.parse_args(argv + extra), config)


@pytest.mark.parametrize("int8_plugins", [False, True])
def test_packed_int8_network_takes_its_scales_from_the_padded_twin(int8_plugins):
    """int8 --varseqlen is calibrated through the padded network (the packed plugins have no fp32):
    every tensor of the packed network that TensorRT may quantize has a namesake in that twin, and
    -imh/-iln turn the packed attention and LayerNorms to int8 as they do the padded ones."""
    plugins = {}
    options = {"int8_skipln": int8_plugins, "int8_multihead": int8_plugins}
    packed = build_network("int8", True, config=HEADS_OF_64, plugins=plugins, varseqlen=True, **options)
    twin = build_network("int8", False, calibration=True, config=HEADS_OF_64, **options)
    quantizable = [t.name for layer in packed.layers if layer.kind != "Constant" for t in layer._outputs
                   if not t.name.startswith("(Unnamed")]
    unscaled = set(quantizable) - set(tensor_names(twin))
    assert unscaled == {"embeddings_placeholder"}  # the packed embedding's unused second output
    expected = 2 if int8_plugins else 1
    assert {plugins[f"layer.{i}_qkv_to_context"]["type_id"] for i in range(2)} == {expected}
    assert {plugins[f"layer.{i}_{n}_layer_norm"]["type_id"] for i in range(2) for n in ("attention", "output")} \
        == {expected}
    assert plugins["embeddings"]["output_fp16"] == 1


def test_calibration_profile_fits_the_network_it_is_set_on():
    shapes = {}
    profile = types.SimpleNamespace(set_shape=lambda name, low, opt, high: shapes.update({name: (low, opt, high)}))
    trt_builder = types.SimpleNamespace(create_optimization_profile=lambda: profile)
    builder.calibration_profile(trt_builder, 384)
    assert shapes == dict.fromkeys(builder.INPUT_NAMES, ((1, 384),) * 3)
    shapes.clear()
    builder.calibration_profile(trt_builder, 384, varseqlen=True)
    assert shapes == {"input_ids": ((384,),) * 3, "segment_ids": ((384,),) * 3, "cu_seqlens": ((2,),) * 3,
                      "max_seqlen": ((384,),) * 3}


def test_varseqlen_profiles_serve_one_to_b_sequences_of_up_to_s_tokens():
    shapes = []
    profile = types.SimpleNamespace(set_shape=lambda name, low, opt, high: shapes.append((name, low, opt, high)))
    trt_builder = types.SimpleNamespace(create_optimization_profile=lambda: profile)
    config = types.SimpleNamespace(add_optimization_profile=lambda p: None)
    builder.add_profiles(None, trt_builder, config, [8], [384], varseqlen=True)
    assert shapes == [("input_ids", (1,), (3072,), (3072,)), ("segment_ids", (1,), (3072,), (3072,)),
                      ("cu_seqlens", (2,), (9,), (9,)), ("max_seqlen", (384,), (384,), (384,))]
    shapes.clear()
    builder.add_profiles(None, trt_builder, config, [8], [384])
    assert shapes == [(name, (1, 384), (8, 384), (8, 384)) for name in builder.INPUT_NAMES]


@pytest.mark.parametrize("three_arguments,strong", [(False, False), (True, False), (True, True)],
                         ids=["8.6", "10.x-weak", "strong"])
def test_explicit_int8_projection_is_fake_quantized(three_arguments, strong):
    """--quantization explicit: a projection's input is quantized per tensor with its calibrated amax
    and its kernel per output channel (Q/DQ pairs before a 1x1 convolution), which, evaluated with
    numpy, is the fake quantization of helpers/quantization.py; in a strongly typed fp16 network the
    Q/DQ output and the kernel are fp16."""
    from helpers.quantization import fake_quantize, weight_amax
    config = HEADS_OF_64
    weights = random_weights(config, seed=7)
    trt = fake_tensorrt()
    trt.__version__ = "10.11.0.33" if three_arguments else "8.6.1"
    amax = {"layer.0_attention_layer_norm": 10.0}  # beyond every |x|: no clamping, where TensorRT and the simulation differ
    opts = options_for("int8", quantization="explicit")
    opts = dataclasses.replace(opts, strongly_typed=strong)
    g = Graph(trt, ComputingNetwork(), make_plan(opts, config, amax), rank=5)
    x = np.random.default_rng(2).standard_normal((5, 2, config.hidden_size)).astype(np.float32) * 1.5
    kernel = weights["layer.0.intermediate.kernel"]
    y = g.linear(Computed(lambda: x[..., None, None].astype(g.np_type)), kernel, None, "layer.0_intermediate",
                 convolution=False).value
    expected = fake_quantize(x, 10.0) @ (fake_quantize(kernel.T, weight_amax(kernel)[:, None])).T
    assert y.dtype == (np.float16 if strong else np.float32)
    np.testing.assert_allclose(y[..., 0, 0], expected, atol=0.05 if strong else 1e-4)
    assert not np.allclose(expected, x @ kernel, atol=1e-3)  # quantization changed the result
