"""builder.py's options as one frozen value, decided and checked once in its main().

Each field has the spelling of its command-line option's destination, and the fields that shape
the engine are recorded under the same names in ENGINE.json (`engine_record`). Nothing below
main() sees the argparse namespace.

Checks come in three steps, each as early as it can be made:
  check_values(options)                 the numbers as given, before anything is read or imported
  check_for_model(options, config)      what the model allows (head size, hidden size, positions)
  check_for_tensorrt(options, trt)      what the running TensorRT can build (typing, quantization)
and `warnings(options, config)` lists the flags that do nothing in the mode asked for.
"""
import dataclasses
import os
from dataclasses import dataclass

from helpers import names
from helpers.errors import BertTrtError

PACKED_MAX_SEQUENCE = 384  # TensorRT 8.6's packed embedding kernel writes no token past 384
LIBRARY_TACTICS = ("CUBLAS", "CUBLAS_LT", "CUDNN")
# Where int8 calibration is kept unless --calib-cache / --scales say otherwise: beside the engine.
CALIB_CACHE_SUFFIX, SCALES_SUFFIX = ".calib", ".scales.json"


class OptionsError(BertTrtError, ValueError):
    """A combination of builder options that cannot be built, with the fix."""


@dataclass(frozen=True)
class BuildOptions:
    ckpt: str
    output: str
    batch_size: tuple = (1,)
    sequence_length: tuple = (128,)
    config_dir: str = None
    fp16: bool = False
    int8: bool = False
    strict: bool = False
    workspace_size: int = 2048
    squad_json: str = None
    vocab_file: str = None
    do_lower_case: bool = True  # the model's casing, decided in main() (helpers/models.py)
    calib_num: int = 100
    force_fc2_gemm: bool = False
    int8_skipln: bool = False
    int8_multihead: bool = False
    fp16_projections: tuple = ()
    calib_qkv_max: bool = False
    calib_cache: str = None
    scales: str = None
    quantization: str = None  # "implicit" (TensorRT's calibrator) or "explicit" (Q/DQ); None: not int8
    strongly_typed: bool = False
    optimization_level: int = None
    tactic_sources: tuple = ()
    timing_cache: str = None
    max_query_length: int = 64
    doc_stride: int = 128
    gelu: str = None
    gelu_plugin: bool = True
    attention: str = "plugin"
    conv_projections: bool = None  # None: the network's default (convolutions when packed or int8)
    varseqlen: bool = False
    export_weights: bool = False
    export_fp16: bool = False
    progress: bool = True
    verbose: bool = False

    @classmethod
    def from_namespace(cls, args):
        """The options of a parsed command line; lists become tuples, so the value stays frozen."""
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        values["batch_size"] = values.get("batch_size") or (1,)
        values["sequence_length"] = values.get("sequence_length") or (128,)
        if values.get("calib_cache") is None:
            values["calib_cache"] = values["output"] + CALIB_CACHE_SUFFIX
        if values.get("scales") is None:
            values["scales"] = values["output"] + SCALES_SUFFIX
        if values.get("calib_qkv_max") is None:  # measured on the GPU: strict int8 loses 0.4-0.5 F1 with it, 1.9-2.6 without
            values["calib_qkv_max"] = bool(values.get("int8"))
        return cls(**values)

    @property
    def precision(self):
        return "int8" if self.int8 else "fp16" if self.fp16 else "fp32"

    @property
    def max_sequence(self):
        return max(self.sequence_length)

    def with_version_defaults(self, trt_version):
        """The options with what depends on the running TensorRT decided: 11.x is always strongly
        typed (it removed weak typing) and quantizes explicitly; 8.6 and 10.x calibrate with
        TensorRT's calibrator unless asked otherwise, or when strongly typed."""
        major = int(trt_version.split(".")[0])
        strong = self.strongly_typed or major >= 11
        quantization = self.quantization
        if self.int8 and quantization is None:
            quantization = "explicit" if strong else "implicit"
        return dataclasses.replace(self, strongly_typed=strong, quantization=quantization)

    def engine_record(self):
        """What shaped the engine, for ENGINE.json's build_options, under the options' own names."""
        keys = ("tactic_sources", "optimization_level", "force_fc2_gemm", "strict", "int8_skipln",
                "int8_multihead", "conv_projections", "gelu_plugin", "attention", "fp16_projections",
                "calib_qkv_max", "varseqlen", "quantization", "strongly_typed")
        record = {k: getattr(self, k) for k in keys}
        record["tactic_sources"] = [n.lower() for n in self.tactic_sources]
        record["fp16_projections"] = list(self.fp16_projections)
        return record


def _positive(value, flag, unit=""):
    if value is not None and value < 1:
        raise OptionsError(f"{flag} {value}: must be a positive number{unit}")


def check_values(options):
    """Every number as given, before any file is read or TensorRT imported: 0 is no "unset"."""
    for size in options.batch_size:
        _positive(size, "-b/--batch-size")
    for length in options.sequence_length:
        _positive(length, "-s/--sequence-length")
    _positive(options.workspace_size, "-w/--workspace-size", " of MiB")
    _positive(options.calib_num, "-n/--calib-num", " of windows")
    _positive(options.max_query_length, "--max-query-length", " of tokens")
    _positive(options.doc_stride, "--doc-stride", " of tokens")
    if options.quantization and not options.int8:
        raise OptionsError(f"--quantization {options.quantization} says how int8 is quantized; it needs -i/--int8")
    if options.strongly_typed and options.quantization == "implicit":
        raise OptionsError("--strongly-typed networks take int8 from Q/DQ layers only; use --quantization "
                           "explicit (or drop --strongly-typed)")
    if options.varseqlen:
        if not (options.fp16 or options.int8):
            raise OptionsError("--varseqlen builds fp16 and int8 engines only (the packed plugins have no fp32); "
                               "add -f/--fp16 or -i/--int8")
        if options.max_sequence > PACKED_MAX_SEQUENCE:
            raise OptionsError(f"--varseqlen serves sequences of up to {PACKED_MAX_SEQUENCE} tokens (TensorRT's "
                               f"packed embedding plugin); use -s {PACKED_MAX_SEQUENCE} or less")
        conflicts = [flag for flag, given in (("--attention layers", options.attention == "layers"),
                                              ("-g/--force-fc2-gemm", options.force_fc2_gemm)) if given]
        if conflicts:
            raise OptionsError(f"--varseqlen does not go with {conflicts[0]}")
    if options.conv_projections is False and options.int8:
        raise OptionsError("--no-conv-projections: int8 engines run their projections as 1x1 convolutions "
                           "(what TensorRT quantizes); drop the flag")
    if (options.int8_skipln or options.int8_multihead) and not options.int8:
        raise OptionsError("-iln/--force-int8-skipln and -imh/--force-int8-multihead need -i/--int8")
    if options.fp16_projections and not options.int8:
        raise OptionsError("--fp16-projections keeps projections of an int8 engine in fp16; it needs -i/--int8")
    if options.int8_multihead and options.attention == "layers":
        raise OptionsError("-imh/--force-int8-multihead runs the attention plugin in int8; it does not go with "
                           "--attention layers")
    if options.calib_qkv_max and not options.int8:
        raise OptionsError("--calib-qkv-max is an int8 calibration option; it needs -i/--int8")


def check_for_model(options, config):
    """What the model allows."""
    if options.varseqlen and config.head_size != 64:
        raise OptionsError(f"--varseqlen needs heads of 64 (the packed attention plugin's kernels); this model's "
                           f"heads are {config.head_size}")
    if options.max_sequence > config.max_position_embeddings:
        raise OptionsError(f"sequence length {options.max_sequence} exceeds the model's "
                           f"{config.max_position_embeddings} position embeddings")
    if options.int8_multihead and config.head_size != 64:
        raise OptionsError(f"-imh/--force-int8-multihead needs heads of 64 (TensorRT's fused int8 attention); "
                           f"this model's heads are {config.head_size}")
    if options.int8_skipln and config.hidden_size not in (768, 1024):
        raise OptionsError(f"-iln/--force-int8-skipln needs a hidden size of 768 or 1024 (TensorRT's int8 "
                           f"skip-LayerNorm kernels); this model's is {config.hidden_size}")


def check_calibration_inputs(options):
    """int8 needs data to calibrate on, or what an earlier calibration left (cache or scales file).
    Called before TensorRT is imported, and again once the quantization mode is decided."""
    if not options.int8:
        return
    have_data = bool(options.squad_json and options.vocab_file)
    if options.quantization is None:  # before TensorRT says which: either of what it reuses will do
        if not (have_data or os.path.exists(options.calib_cache) or os.path.exists(options.scales)):
            raise OptionsError(f"--int8 needs calibration data: -j SQUAD_JSON and -v VOCAB_FILE, or an existing "
                               f"calibration cache ({options.calib_cache}) or scales file ({options.scales})")
        return
    if options.quantization == "explicit":
        if not have_data and not os.path.exists(options.scales):
            raise OptionsError(f"--int8 needs calibration data: -j SQUAD_JSON and -v VOCAB_FILE, or an existing "
                               f"scales file ({options.scales}, --scales)")
        return
    cache = options.calib_cache
    if os.path.exists(cache):
        merged = os.path.exists(cache + ".max")
        if options.calib_qkv_max and not merged:
            raise OptionsError(f"the calibration cache {cache} has percentile scales only (no .max beside it); "
                               f"delete it to calibrate again, or pass --no-calib-qkv-max to use it")
        if not options.calib_qkv_max and merged:
            raise OptionsError(f"the calibration cache {cache} has the QKV inputs' maxima merged in; delete it "
                               f"and {cache}.max to calibrate again, or drop --no-calib-qkv-max")
    elif not have_data:
        raise OptionsError(f"--int8 needs calibration data: -j SQUAD_JSON and -v VOCAB_FILE, or an existing "
                           f"calibration cache ({cache})")


def check_for_tensorrt(options, trt):
    """What the running TensorRT can build (`options` after with_version_defaults)."""
    version = trt.__version__
    flags = trt.NetworkDefinitionCreationFlag
    if options.strongly_typed and not hasattr(flags, "STRONGLY_TYPED"):
        raise OptionsError(f"--strongly-typed needs TensorRT 10 or later (this is TensorRT {version}); "
                           "drop the flag to build a weakly typed network")
    if options.quantization == "implicit" and not hasattr(trt, "IInt8LegacyCalibrator"):
        raise OptionsError(f"--quantization implicit needs TensorRT's int8 calibrators, which TensorRT {version} "
                           "removed; use --quantization explicit (Q/DQ from the project's own calibration)")
    if options.quantization == "explicit" and (options.int8_skipln or options.int8_multihead):
        flag = "-iln/--force-int8-skipln" if options.int8_skipln else "-imh/--force-int8-multihead"
        raise OptionsError(f"{flag} with --quantization explicit: the BERT plugins' int8 kernels read their "
                           f"scales from TensorRT's calibration, not from Q/DQ layers, in this builder "
                           f"(TensorRT {version}); use --quantization implicit, or drop {flag.split('/')[0]}")
    if not options.strongly_typed and options.precision != "fp32" and not hasattr(trt.BuilderFlag, "FP16"):
        raise OptionsError(f"TensorRT {version} has no weak typing (BuilderFlag.FP16); build with --strongly-typed")


def warnings(options, config=None):
    """One line for each flag given that does nothing in the mode asked for."""
    out = []

    def unused(flag, why):
        out.append(f"{flag} has no effect: {why}")

    if not options.int8:
        if options.squad_json:
            unused("-j/--squad-json", "it is calibration data, and this is no -i/--int8 build")
        if options.calib_num != 100:
            unused("-n/--calib-num", "it counts calibration windows, and this is no -i/--int8 build")
    if options.int8 and options.conv_projections:
        unused("--conv-projections", "int8 engines always run their projections as 1x1 convolutions")
    if options.export_fp16 and not options.export_weights:
        unused("--export-fp16", "it applies to --export-weights")
    if options.strongly_typed and options.strict:
        unused("-t/--strict", "a strongly typed network runs every layer in the type it is given")
    if config is not None and not options.gelu_plugin and config.gelu == "erf":
        unused("--no-gelu-plugin", "this model's GELU is the erf form, always built from elementwise layers")
    return out


def calibration_file_warnings(options):
    """The lines of warnings() that need the quantization decided (`options` after
    with_version_defaults): a calibration file given for the other kind of int8, or for no int8."""
    out = []
    cache_given = options.calib_cache != options.output + CALIB_CACHE_SUFFIX
    scales_given = options.scales != options.output + SCALES_SUFFIX
    if cache_given and options.quantization != "implicit":
        why = ("it is TensorRT's calibration cache, and explicit int8 reads and writes --scales"
               if options.int8 else "it is TensorRT's int8 calibration cache, and this is no -i/--int8 build")
        out.append(f"--calib-cache has no effect: {why}")
    if scales_given and options.quantization != "explicit":
        why = ("it is the scales file of explicit int8, and implicit int8 calibrates into --calib-cache"
               if options.int8 else "it holds int8 scales, and this is no -i/--int8 build")
        out.append(f"--scales has no effect: {why}")
    return out


def projection_kinds(text):
    """--fp16-projections: comma-separated kinds of projection, e.g. "qkv" or "qkv,output"."""
    return _comma_separated(text, names.PROJECTIONS, "projection")


def tactic_source_names(text):
    """--tactic-sources: comma-separated library names to allow, e.g. "cublas_lt" or "cublas,cublas_lt"."""
    allowed = _comma_separated((text or "").lower(), [n.lower() for n in LIBRARY_TACTICS], "tactic source")
    return [name.upper() for name in allowed]


def _comma_separated(text, choices, what):
    import argparse
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    unknown = [item for item in items if item not in choices]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(choices)}")
    return items
