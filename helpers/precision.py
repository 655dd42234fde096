"""Precision as one plan for the whole network, decided from the build options and the model.

The BERT blocks (helpers/bert_network.py) do not read flags: the graph primitives ask the plan
which type a tensor gets, which projections are int8 and with what scales, and which type id each
plugin takes. After the graph is finished, `apply_pins` pins the projections of a weakly typed
network by name (gpt-fast's quantize.py swaps the layers of a finished model likewise).

Two typing modes:
  weak    (8.6, 10.x): the network is fp32; builder flags let TensorRT choose fp16/int8 kernels,
          and -t / --fp16-projections pin chosen layers (ILayer.precision).
  strong  (--strongly-typed on 10.x, always on 11.x): every tensor has the type it is given; fp16
          comes from fp16 weights and constants, with casts where a plugin runs in another type
          and an explicit cast of the logits to float32.
Two int8 modes:
  implicit  TensorRT's calibrator sets every tensor's range (weak typing only).
  explicit  Q/DQ layers with constant scales (helpers/quantization.py) around each int8 projection.
"""
from dataclasses import dataclass, field

from helpers import names

FP32, FP16, INT8 = 0, 1, 2  # the BERT plugins' type ids


@dataclass(frozen=True)
class PrecisionPlan:
    strong: bool = False             # strongly typed network
    half: bool = False               # activations (and the plugins) in fp16
    attention_type: int = FP32       # QKVToContext's type_id (and EmbLayerNorm's mha_type_id)
    layer_norm_type: int = FP32      # SkipLayerNorm's type_id
    quantization: str = None         # None, "implicit" or "explicit"
    int8_projections: frozenset = frozenset()  # kinds (names.PROJECTIONS) quantized by Q/DQ
    pins: dict = field(default_factory=dict)   # projection kind -> "fp16" / "int8" (weak typing)
    amax: dict = field(default_factory=dict)   # tensor name -> amax, explicit int8
    expose_projections: bool = False  # calibration twin: every projection output is a network output

    @property
    def activation_type(self):
        """The type id activations travel in between the plugins."""
        return FP16 if self.half else FP32

    def quantized(self, name):
        """The amax of the input of projection `name` when it is int8 by Q/DQ, else None."""
        kind = names.projection_kind(name)
        if kind not in self.int8_projections:
            return None
        index = int(name.split("_", 1)[0].split(".")[1])
        return self.amax[names.projection_input(index, kind)]

    def pin(self, name):
        """"fp16", "int8" or None: the precision a weakly typed projection `name` is pinned to."""
        return self.pins.get(names.projection_kind(name))


def make_plan(options, config, amax=None, calibration=False):
    """The plan for `options` (after BuildOptions.with_version_defaults) on `config`.

    calibration: the fp32-plugin twin that TensorRT's calibrator runs (implicit int8): fp32
    plugins (calibration runs the network in fp32, where plugins fixed to fp16 find no formats),
    nothing pinned, every projection's output exposed so that its range is recorded.
    """
    precision = options.precision
    half = precision != "fp32" and not calibration
    int8_plugins = precision == "int8" and not calibration
    # The fused fp16 attention kernels exist for heads of 64 only; other head sizes run the
    # attention plugin in fp32 (its mask input then counts valid tokens instead). int8 plugins
    # are opt-in, as in the demo (-imh, -iln): they quantize the attention and the residual too.
    if int8_plugins and options.int8_multihead:
        attention_type = INT8
    else:
        attention_type = FP16 if half and config.head_size == 64 else FP32
    layer_norm_type = INT8 if int8_plugins and options.int8_skipln else FP16 if half else FP32
    explicit = options.quantization == "explicit" and precision == "int8"
    int8_projections = frozenset(k for k in names.PROJECTIONS if k not in options.fp16_projections) \
        if explicit else frozenset()
    pins = {}
    if not options.strongly_typed and not calibration:
        # --fp16-projections: kinds of projection pinned to fp16 in an int8 engine. The QKV
        # projection's input, a LayerNorm output with a few large channels, lost 1.9-2.6 F1 of the
        # small test models when quantized (a CPU simulation of their int8 engines agreed).
        # -t: the others must run in the requested precision; otherwise TensorRT keeps a higher
        # one wherever that is faster (at small sizes int8 may not be used at all).
        for kind in names.PROJECTIONS:
            if kind in options.fp16_projections:
                pins[kind] = "fp16"
            elif options.strict and precision in ("int8", "fp16"):
                pins[kind] = precision
    return PrecisionPlan(strong=options.strongly_typed, half=half, attention_type=attention_type,
                         layer_norm_type=layer_norm_type,
                         quantization=None if calibration else options.quantization if precision == "int8" else None,
                         int8_projections=int8_projections, pins=pins, amax=dict(amax or {}),
                         expose_projections=calibration)


def apply_pins(trt, network, plan):
    """Pin the projections of a finished, weakly typed network to the plan's precisions, by name."""
    types = {"fp16": trt.float16, "int8": trt.int8}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        pinned = plan.pin(layer.name)
        if pinned is not None:
            layer.precision = types[pinned]
