"""The few TensorRT primitives the BERT blocks are written in: keep arrays alive, name, plugin
lookup and creation, constants, casts, linear (with Q/DQ when the plan makes it int8), GELU and
skip-LayerNorm.

The same calls serve TensorRT 8.6, 10.x and 11.x; where a version spells something differently
(plugin registry, V3 plugins, Q/DQ arguments), the difference is decided here, once, by probing
the bindings, and an API a version lacks is a TensorRTError naming it, never an AttributeError.
"""
import numpy as np

from helpers.precision import FP16, FP32
from helpers.quantization import weight_amax
from helpers.trt_common import TensorRTError


class Graph:
    """One TensorRT network under construction, with its precision plan.

    Every numpy array handed to TensorRT (plugin fields, weights) is kept in self.arrays: the
    Python bindings keep only raw pointers to them, and TensorRT reads weights until the engine
    is built.
    """

    def __init__(self, trt, network, plan, rank=5):
        self.trt = trt
        self.network = network
        self.plan = plan
        self.rank = rank  # of activations: (seq, batch, hidden, 1, 1), or packed (tokens, hidden, 1, 1)
        self.arrays = []
        self.plugins = []
        self.registry = trt.get_plugin_registry()
        # Strongly typed networks keep the types they are given, so weights and constants carry
        # the activations' type; weakly typed ones stay fp32 and TensorRT picks kernels.
        self.np_type = np.float16 if plan.strong and plan.half else np.float32
        self.trt_type = trt.float16 if self.np_type is np.float16 else trt.float32
        # add_quantize/add_dequantize(input, scale, output_type) from TensorRT 10 (the only form in 11);
        # 8.6 has (input, scale) alone.
        self.three_argument_qdq = int(trt.__version__.split(".")[0]) >= 10

    # --- arrays, names, constants --------------------------------------------------------------
    def keep(self, array):
        self.arrays.append(array)
        return array

    def weights(self, array, dtype=None):
        return self.trt.Weights(self.keep(np.ascontiguousarray(array, dtype or self.np_type)))

    def name(self, layer, name):
        """Name a layer and its output (calibration caches and scales files refer to tensors by name)."""
        layer.name = name
        output = layer.get_output(0)
        output.name = name
        return output

    def constant(self, shape, array, name, dtype=None, name_output=True):
        """A constant layer's output; weights (name_output False) keep TensorRT's tensor name, as
        the calibration caches written before knew them."""
        layer = self.network.add_constant(shape, self.weights(array, dtype))
        if name_output:
            return self.name(layer, name)
        layer.name = name
        return layer.get_output(0)

    def scalar(self, value, name):
        """A constant broadcast against activations of this graph's rank."""
        return self.constant((1,) * self.rank, np.array([value]), name)

    def cast(self, x, trt_type, name):
        return self.name(self.network.add_cast(x, trt_type), name)

    def elementwise(self, a, b, operation, name):
        return self.name(self.network.add_elementwise(a, b, getattr(self.trt.ElementWiseOperation, operation)), name)

    # --- plugins -------------------------------------------------------------------------------
    def lookup(self, name, version):
        """The registered creator of a plugin's version, or None (8.6/10.x and 11.x spellings)."""
        get = getattr(self.registry, "get_plugin_creator", None) or getattr(self.registry, "get_creator", None)
        if get is None:
            raise TensorRTError(f"TensorRT {self.trt.__version__}'s plugin registry has neither get_plugin_creator "
                                "nor get_creator")
        return get(name, version, "")

    def has_plugin(self, name, version):
        return self.lookup(name, version) is not None

    def _found_versions(self, name):
        creators = getattr(self.registry, "plugin_creator_list", None)
        if creators is None:
            creators = getattr(self.registry, "all_creators", [])
        return sorted(c.plugin_version for c in creators if c.name == name)

    def field_int(self, name, value):
        return self.trt.PluginField(name, self.keep(np.array([value], np.int32)), self.trt.PluginFieldType.INT32)

    def field_float(self, name, value):
        return self.field_floats(name, np.array([value]))

    def field_floats(self, name, array, half=False):
        if half:
            return self.trt.PluginField(name, self.keep(np.ascontiguousarray(array, np.float16)),
                                        self.trt.PluginFieldType.FLOAT16)
        return self.trt.PluginField(name, self.keep(np.ascontiguousarray(array, np.float32)),
                                    self.trt.PluginFieldType.FLOAT32)

    def plugin(self, name, version, layer_name, fields, inputs):
        """Create plugin `name` of `version` with `fields` on `inputs`: a V2 creator's plugin goes in
        with add_plugin_v2, a V3 one's (IPluginCreatorV3One) is created for the build phase and goes in
        with add_plugin_v3. Returns the layer, named after the block it computes."""
        trt = self.trt
        creator = self.lookup(name, version)
        if creator is None:
            found = self._found_versions(name)
            raise TensorRTError(
                f"TensorRT plugin {name} version {version} is not registered in TensorRT {trt.__version__} "
                f"(versions found: {', '.join(found) or 'none'}); use a TensorRT with its BERT plugins "
                "(libnvinfer_plugin)")
        fields = trt.PluginFieldCollection(fields)
        v3 = getattr(trt, "IPluginCreatorV3One", None)
        if v3 is not None and isinstance(creator, v3):
            plugin = creator.create_plugin(layer_name, fields, trt.TensorRTPhase.BUILD)
            add = lambda: self.network.add_plugin_v3(inputs, [], plugin)  # noqa: E731
        else:
            plugin = creator.create_plugin(layer_name, fields)
            add = lambda: self.network.add_plugin_v2(inputs, plugin)  # noqa: E731
        if plugin is None:
            raise TensorRTError(f"TensorRT plugin {name} version {version} refused the fields of layer {layer_name}")
        self.plugins.append(plugin)  # the network refers to it until the network is destroyed
        layer = add()
        self.name(layer, layer_name)
        return layer

    def in_type(self, x, type_id, name):
        """x cast to a plugin's type where a strongly typed network carries another one: the plugin's
        type field and its input types must agree."""
        if not self.plan.strong or type_id == self.plan.activation_type or type_id not in (FP32, FP16):
            return x
        return self.cast(x, self.trt.float16 if type_id == FP16 else self.trt.float32, name)

    def back_to_activations(self, x, type_id, name):
        if not self.plan.strong or type_id == self.plan.activation_type or type_id not in (FP32, FP16):
            return x
        return self.cast(x, self.trt_type, name)

    # --- int8 by Q/DQ --------------------------------------------------------------------------
    def quantize_dequantize(self, x, scale, name, axis=None):
        """x through a quantize and a dequantize layer with the constant `scale` (per tensor, or per
        channel along `axis`): TensorRT fuses the pair into the int8 layer that consumes it."""
        trt, net = self.trt, self.network
        scale = np.asarray(scale, np.float32)
        s = self.constant(scale.shape, scale, name + "_scale")
        if self.three_argument_qdq:
            q = net.add_quantize(x, s, trt.int8)
        else:  # TensorRT 8.6: the output is int8, and the dequantized type is chosen by the builder
            q = net.add_quantize(x, s)
        if axis is not None:
            q.axis = axis
        quantized = self.name(q, name + "_quantize")
        if self.three_argument_qdq:
            dq = net.add_dequantize(quantized, s, self.trt_type)
        else:
            dq = net.add_dequantize(quantized, s)
        if axis is not None:
            dq.axis = axis
        return self.name(dq, name + "_dequantize")

    # --- linear, GELU, skip-LayerNorm ----------------------------------------------------------
    def linear(self, x, kernel, bias, name, convolution):
        """y = x @ kernel + bias on (seq, batch, in, 1, 1) -> (seq, batch, out, 1, 1), or packed
        (tokens, in, 1, 1) -> (tokens, out, 1, 1).

        A 1x1 convolution (what TensorRT quantizes) or a matrix multiply that TensorRT fuses with the
        bias and the reshapes. When the plan makes the projection int8 (explicit), its input is
        quantized per tensor and its kernel per output channel, each by a Q/DQ pair.
        """
        trt, net = self.trt, self.network
        n_in, n_out = kernel.shape
        amax = self.plan.quantized(name)
        if amax is not None:
            x = self.quantize_dequantize(x, np.float32(amax) / 127, name + "_input")
            w = self.constant((n_out, n_in, 1, 1), kernel.T.reshape(n_out, n_in, 1, 1), name + "_kernel",
                              name_output=False)
            w = self.quantize_dequantize(w, weight_amax(kernel) / 127, name + "_kernel", axis=0)
            conv = net.add_convolution_nd(x, n_out, (1, 1), trt.Weights(self.trt_type),
                                          self.weights(bias) if bias is not None else trt.Weights(self.trt_type))
            conv.set_input(1, w)
            return self._projection_output(conv, name)
        if convolution:
            conv = net.add_convolution_nd(x, n_out, (1, 1), self.weights(kernel.T),
                                          self.weights(bias) if bias is not None else trt.Weights(self.trt_type))
            return self._projection_output(conv, name)
        leading = self.rank - 3  # the token axes: (seq, batch), or (tokens,) packed
        flat = net.add_shuffle(x)
        flat.reshape_dims = (0,) * leading + (n_in,)
        flat.name = name + "_flatten"
        w = self.constant((1,) * (leading - 1) + (n_in, n_out), kernel, name + "_kernel", name_output=False)
        y = self.name(net.add_matrix_multiply(flat.get_output(0), trt.MatrixOperation.NONE,
                                              w, trt.MatrixOperation.NONE), name)
        if bias is not None:
            b = self.constant((1,) * leading + (n_out,), bias, name + "_bias", name_output=False)
            y = self.elementwise(y, b, "SUM", name + "_add_bias")
        back = net.add_shuffle(y)
        back.reshape_dims = (0,) * leading + (n_out, 1, 1)
        return self.name(back, name + "_unflatten")

    def _projection_output(self, layer, name):
        y = self.name(layer, name)
        if self.plan.expose_projections:
            # TensorRT only records ranges of tensors that calibration materializes; one that it
            # fuses away (a projection's output inside a fused GELU) gets no scale, and the layers
            # around it fall back from int8.
            self.network.mark_output(y)
        return y

    def fc_plugin(self, x, kernel, name):
        """y = x @ kernel through the CustomFCPluginDynamic GEMM (the demo's --force-fc2-gemm)."""
        type_id = self.plan.activation_type
        fields = [self.field_int("out_dims", kernel.shape[1]), self.field_int("type_id", type_id),
                  self.field_floats("W", kernel)]
        return self.plugin("CustomFCPluginDynamic", "1", name, fields, [x]).get_output(0)

    def skip_layer_norm(self, x, skip, gamma, beta, bias, name, version, leading_dimension=None):
        """LayerNorm(x + bias + skip) in one plugin (version 2, packed: no `ld`, any rank)."""
        type_id = self.plan.layer_norm_type
        fields = [] if leading_dimension is None else [self.field_int("ld", leading_dimension)]
        fields += [self.field_int("type_id", type_id), self.field_floats("beta", beta),
                   self.field_floats("gamma", gamma)]
        if bias is not None:
            fields.append(self.field_floats("bias", bias))
        inputs = [self.in_type(x, type_id, name + "_input_cast"), self.in_type(skip, type_id, name + "_skip_cast")]
        y = self.plugin("CustomSkipLayerNormPluginDynamic", version, name, fields, inputs).get_output(0)
        return self.back_to_activations(y, type_id, name + "_cast")

    def gelu(self, x, bias, form, name, use_plugin):
        """GELU(x + bias), in the form the model was trained with.

        tanh: TensorRT's GELU plugin (it implements the tanh form) where registered and wanted;
              otherwise elementwise layers (TensorRT 11 has no GELU plugin).
        erf:  0.5 x (1 + erf(x / sqrt 2)) from elementwise layers, which TensorRT fuses with
              each other and, after a convolution, into it.
        """
        trt, net = self.trt, self.network
        if form == "tanh" and use_plugin and self.has_plugin("CustomGeluPluginDynamic", "1"):
            # The plugin copies its bias byte for byte in its own precision.
            half = self.plan.half
            fields = [self.field_int("type_id", int(half)), self.field_floats("bias", bias, half=half)]
            return self.plugin("CustomGeluPluginDynamic", "1", name, fields, [x]).get_output(0)
        b = self.constant((1,) * (self.rank - 3) + (bias.shape[0], 1, 1), bias, name + "_bias", name_output=False)
        x = self.elementwise(x, b, "SUM", name + "_add_bias")
        if form == "erf":
            scaled = self.elementwise(x, self.scalar(1 / np.sqrt(2), name + "_c1"), "PROD", name + "_scale")
            inner = self.name(net.add_unary(scaled, trt.UnaryOperation.ERF), name + "_erf")
        else:
            square = self.elementwise(x, x, "PROD", name + "_sq")
            cube = self.elementwise(square, x, "PROD", name + "_cube")
            poly = self.elementwise(x, self.elementwise(cube, self.scalar(0.044715, name + "_c0"), "PROD",
                                                        name + "_c0x3"), "SUM", name + "_poly")
            scaled = self.elementwise(poly, self.scalar(np.sqrt(2 / np.pi), name + "_c1"), "PROD", name + "_scale")
            inner = self.name(net.add_activation(scaled, trt.ActivationType.TANH), name + "_tanh")
        one_plus = self.elementwise(inner, self.scalar(1.0, name + "_one"), "SUM", name + "_1p")
        half_x = self.elementwise(x, self.scalar(0.5, name + "_half"), "PROD", name + "_halfx")
        return self.elementwise(half_x, one_plus, "PROD", name)

