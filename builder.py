"""Build a TensorRT engine for BERT question answering from a fine-tuned checkpoint.

The network is written layer by layer with TensorRT's network API and its BERT plugins, as in
NVIDIA's demo (helpers/bert_network.py has its blocks); its precision is one plan
(helpers/precision.py). One builder serves TensorRT 8.6, 10.x and 11.x:

  weakly typed    8.6 and 10.x (the default there): fp16/int8 from builder flags
  strongly typed  --strongly-typed on 10.x, always on 11.x: fp16 from the types of the network
  int8 implicit   TensorRT's calibrator (the default on 8.6 and 10.x, weakly typed)
  int8 explicit   --quantization explicit (the default on 11.x): Q/DQ layers whose scales the
                  project's own calibration (helpers/quantization.py) computes without TensorRT
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from helpers import names
from helpers.bert_network import Layout, bert_qa
from helpers.build_options import (LIBRARY_TACTICS, PACKED_MAX_SEQUENCE, BuildOptions, check_calibration_inputs,
                                   calibration_file_warnings, check_for_model, check_for_tensorrt, check_values,
                                   projection_kinds, tactic_source_names, warnings)
from helpers.calibrator import calibration_features, make_calibrator, with_scales_from
from helpers.cli import HelpFormatter
from helpers.errors import run_main
from helpers.files import check_writable, write_atomically
from helpers.graph import Graph
from helpers.models import decide_casing, find_vocab, resolve_model
from helpers.precision import apply_pins, make_plan
from helpers.quantization import calibrate_scales, load_scales, save_scales
from helpers.trt_common import (EngineInfo, TensorRTError, build_failure, import_pycuda, import_tensorrt,
                                input_shapes, make_build_logger)
from helpers.weights import check_vocab, load_weights, save_weights

INPUT_NAMES, PACKED_INPUT_NAMES, OUTPUT_NAME = names.INPUT_NAMES, names.PACKED_INPUT_NAMES, names.OUTPUT_NAME
PROJECTIONS = names.PROJECTIONS


def layout_for(options, varseqlen=None):
    """How the network is laid out for `options` (the calibration twin: padded, whatever --varseqlen)."""
    varseqlen = options.varseqlen if varseqlen is None else varseqlen
    # int8 engines always run their projections as 1x1 convolutions; the others may too
    # (--conv-projections): TensorRT 8.6 fused the GELU into the convolution of int8 engines but
    # ran it as a kernel of its own after the matrix multiply of fp16 ones. Unset: convolutions
    # when packed (as measured).
    convolutions = options.conv_projections if options.conv_projections is not None else varseqlen
    return Layout(varseqlen=varseqlen, attention_layers=options.attention == "layers",
                  fc_plugin=options.force_fc2_gemm, gelu_plugin=options.gelu_plugin,
                  convolutions=bool(convolutions) or options.int8, dynamic_sequence=len(options.sequence_length) > 1,
                  max_sequence=options.max_sequence)


def create_network(trt, builder, strongly_typed=False):
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # the default, and gone, after 8.x
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
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
                            "typing); build with --strongly-typed")
    return flag


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


def build_progress(trt):
    """A progress monitor printing each phase of a build to stderr (IBuilderConfig.progress_monitor,
    TensorRT 10 and later): BERT-Large builds take minutes."""

    class BuildProgress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.started = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.started[phase_name] = time.time()
            if parent_phase is None:
                print(f"builder.py: {phase_name} ({num_steps} steps)", file=sys.stderr, flush=True)

        def step_complete(self, phase_name, step):
            return True  # keep building

        def phase_finish(self, phase_name):
            seconds = time.time() - self.started.pop(phase_name, time.time())
            if seconds >= 1:
                print(f"builder.py: {phase_name} done, {seconds:.0f} s", file=sys.stderr, flush=True)

    return BuildProgress()


def serialize_network(trt, logger, options, config, weights, plan, layout, calibrator=None):
    """Build one network into a serialized engine: (engine bytes, build seconds)."""
    builder = trt.Builder(logger)
    network = create_network(trt, builder, plan.strong)
    build_config = builder.create_builder_config()
    build_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_size << 20)
    set_tactic_sources(trt, build_config, options.tactic_sources)
    if hasattr(trt, "ProfilingVerbosity"):  # layer formats for the engine inspector (perf.py --layer-profile)
        build_config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if options.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        build_config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32 arithmetic, as the reference
    if not plan.strong:  # strongly typed networks take their precisions from their types alone
        if plan.half:
            build_config.set_flag(builder_flag(trt, "FP16"))
        if options.strict or options.fp16_projections:
            build_config.set_flag(builder_flag(trt, "OBEY_PRECISION_CONSTRAINTS"))
        if options.int8:
            build_config.set_flag(builder_flag(trt, "INT8"))
    read_timing_cache(build_config, options.timing_cache)
    if options.optimization_level is not None:
        if not hasattr(build_config, "builder_optimization_level"):
            raise TensorRTError(f"TensorRT {trt.__version__} has no builder optimization levels (8.6 and later)")
        build_config.builder_optimization_level = options.optimization_level
    if options.progress and hasattr(build_config, "progress_monitor"):
        build_config.progress_monitor = build_progress(trt)

    g = Graph(trt, network, plan, layout.rank)
    bert_qa(g, layout, config, weights)
    if not plan.strong:
        apply_pins(trt, network, plan)
    add_profiles(trt, builder, build_config, options.batch_size, options.sequence_length, layout.varseqlen)
    if calibrator is not None:
        build_config.int8_calibrator = calibrator
        build_config.set_calibration_profile(calibration_profile(builder, options.max_sequence, layout.varseqlen))

    errors_before = len(logger.errors)
    start = time.time()
    serialized = builder.build_serialized_network(network, build_config)
    build_seconds = time.time() - start
    if serialized is None:
        raise TensorRTError(build_failure(logger.errors[errors_before:], options.workspace_size))
    if options.timing_cache:
        write_atomically(options.timing_cache, bytes(build_config.get_timing_cache().serialize()))
    engine = bytes(serialized)
    # TensorRT objects go in the reverse order of their creation: the network still points at
    # the plugins and weight arrays that the Graph holds, so it must go first.
    del serialized
    g.network = network = None
    del g, calibrator, build_config, builder
    return engine, build_seconds


def qkv_inputs(config):
    """Names of the tensors that the QKV projections read: the embeddings, then each layer's output."""
    return [names.projection_input(i, "qkv") for i in range(config.num_hidden_layers)]


def calibrate(trt, logger, options, config, weights, cache_path, algorithm):
    """TensorRT's calibrator (implicit int8) into `cache_path`; return the seconds it took.

    Calibration runs the network in fp32, where plugins fixed to fp16 find no formats ("could not
    find any supported formats"). So an fp32-plugin twin of the network, with the same layers and
    tensor names, is calibrated; only its cache is kept (its timing cache would not fit the real
    network). Its engine is thrown away, so it gets one batch-1 profile and the fastest search.
    A packed (--varseqlen) network's twin is the padded one: the packed plugins have no fp32, and
    the two networks name their tensors alike, so the cache fits both.
    """
    twin = dataclasses.replace(options, timing_cache=None, batch_size=(1,), optimization_level=0, varseqlen=False)
    calibrator = make_calibrator(cache_path, options.squad_json, options.vocab_file, options.max_sequence,
                                 options.calib_num, options.max_query_length, options.doc_stride, algorithm,
                                 do_lower_case=options.do_lower_case)
    _, seconds = serialize_network(trt, logger, twin, config, weights, make_plan(twin, config, calibration=True),
                                   layout_for(twin, varseqlen=False), calibrator)
    return seconds


def implicit_calibrator(trt, logger, options, config, weights):
    """The calibrator of the real build (it reads the cache) and the seconds calibrating took."""
    # The calibrator copies features with pycuda: its CUDA context must be current before
    # TensorRT creates its streams, or calibration fails with "invalid resource handle".
    import_pycuda()
    seconds = 0.0
    cache = options.calib_cache
    if not os.path.exists(cache):
        seconds += calibrate(trt, logger, options, config, weights, cache, "percentile")
        if options.calib_qkv_max:
            maxima = cache + ".max"
            seconds += calibrate(trt, logger, options, config, weights, maxima, "max")
            with open(cache, "rb") as f, open(maxima, "rb") as g:
                merged = with_scales_from(f.read(), g.read(), qkv_inputs(config))
            write_atomically(cache, merged)
    calibrator = make_calibrator(cache, options.squad_json, options.vocab_file, options.max_sequence,
                                 options.calib_num, options.max_query_length, options.doc_stride,
                                 do_lower_case=options.do_lower_case)
    return calibrator, seconds


def explicit_scales(options, config, weights):
    """The int8 scales of an explicit build: the scales file if there is one (refused in one line when
    it is of another model or calibrated otherwise than asked), else the project's own calibration
    over -n windows of -j, saved there."""
    if os.path.exists(options.scales):
        return load_scales(options.scales, config, qkv_max=options.calib_qkv_max)
    features = calibration_features(options.squad_json, options.vocab_file, options.max_sequence, options.calib_num,
                                    options.max_query_length, options.doc_stride, options.do_lower_case)
    scales = calibrate_scales(config, weights, features, qkv_max=options.calib_qkv_max, progress=options.progress)
    save_scales(options.scales, scales)
    return scales


def build_engine(options, config, weights, trt):
    """(engine bytes, build seconds) for `options`, decided for the running TensorRT `trt`."""
    logger = make_build_logger(trt, options.verbose)
    seconds, amax, calibrator = 0.0, None, None
    if options.quantization == "explicit":
        amax = explicit_scales(options, config, weights).amax
    elif options.quantization == "implicit":
        calibrator, seconds = implicit_calibrator(trt, logger, options, config, weights)
    plan = make_plan(options, config, amax)
    engine, build_seconds = serialize_network(trt, logger, options, config, weights, plan, layout_for(options),
                                              calibrator)
    return engine, seconds + build_seconds


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
                        "otherwise it keeps a higher precision wherever that is faster (weakly typed networks)")
    p.add_argument("--strongly-typed", action="store_true",
                   help="a strongly typed network (TensorRT 10 and later; always so on TensorRT 11): fp16 from the "
                        "network's types instead of builder flags, int8 from Q/DQ layers only")
    p.add_argument("--quantization", choices=("explicit", "implicit"),
                   help="with -i: explicit Q/DQ layers whose scales the project calibrates without TensorRT "
                        "(default on TensorRT 11 and with --strongly-typed), or TensorRT's implicit calibrator "
                        "(default on 8.6 and 10.x; TensorRT 11 has none)")
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
    p.add_argument("-iln", "--force-int8-skipln", dest="int8_skipln", action="store_true",
                   help="with -i: run the skip-LayerNorm plugins in int8 (fp16 by default; needs hidden 768 or 1024)")
    p.add_argument("-imh", "--force-int8-multihead", dest="int8_multihead", action="store_true",
                   help="with -i: run the attention plugins in int8 (fp16 by default; needs heads of 64)")
    p.add_argument("--fp16-projections", type=projection_kinds, default=[],
                   help="with -i: projections of every layer to run in fp16 rather than int8, comma-separated: "
                        f"{', '.join(PROJECTIONS)} (e.g. qkv: its LayerNorm input quantizes poorly)")
    p.add_argument("--calib-qkv-max", action=argparse.BooleanOptionalAction, default=None,
                   help="with -i (on by default there): give the inputs of the QKV projections (embeddings, output "
                        "LayerNorms) the maximum of their range instead of the 99.99th percentile, which clips "
                        "their rare large values (implicit: from a second, min-max calibration pass); "
                        "--no-calib-qkv-max calibrates every tensor by the percentile only")
    p.add_argument("--calib-cache", help="implicit int8: TensorRT's calibration cache, read if present, written "
                                         "otherwise (default: OUTPUT.calib)")
    p.add_argument("--scales", help="explicit int8: the project's scales file (JSON), read if present, written "
                                    "otherwise (default: OUTPUT.scales.json)")
    p.add_argument("--optimization-level", type=int, choices=range(6), metavar="{0..5}",
                   help="TensorRT's builder optimization level: lower builds faster, higher searches "
                        "more kernels (TensorRT's default: 3)")
    p.add_argument("--tactic-sources", type=tactic_source_names, default=[],
                   help="libraries whose kernels TensorRT may also time, comma-separated: cublas, "
                        "cublas_lt, cudnn (default: none, TensorRT's own kernels only)")
    p.add_argument("--timing-cache", help="TensorRT timing cache file, read if present and updated")
    p.add_argument("--max-query-length", type=int, default=64, help="for calibration features")
    p.add_argument("--doc-stride", type=int, default=128, help="for calibration features")
    p.add_argument("--gelu", choices=("erf", "tanh"),
                   help="override the GELU form given by the model config (hidden_act)")
    p.add_argument("--no-gelu-plugin", dest="gelu_plugin", action="store_false",
                   help="build the tanh GELU from elementwise layers, which TensorRT can fuse into the "
                        "projection before it, instead of TensorRT's GELU plugin (TensorRT 11 has none)")
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
                        f"heads of 64 and sequences up to {PACKED_MAX_SEQUENCE}; implicit int8 is calibrated "
                        "through the padded network")
    p.add_argument("--export-weights", action="store_true",
                   help="write the checkpoint as one framework-free .npz file and stop (no TensorRT needed)")
    p.add_argument("--export-fp16", action="store_true", help="with --export-weights: store fp16 (half the size)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar over calibration windows, no build phases on stderr")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    return p.parse_args(argv)


def config_path_of(options):
    if not options.config_dir:
        return None
    return next((os.path.join(options.config_dir, n) for n in ("bert_config.json", "config.json")
                 if os.path.exists(os.path.join(options.config_dir, n))),
                os.path.join(options.config_dir, "bert_config.json"))


def main(argv=None) -> int:
    args = parse_args(argv)
    options = BuildOptions.from_namespace(args)
    check_values(options)
    for path, what in ((options.output, "output file"), (options.timing_cache, "--timing-cache file")):
        if path:  # before minutes of loading and building
            check_writable(path, what)
    # The model is found (a Hub id becomes its snapshot folder in the Hub cache) before anything is
    # read, so that the vocabulary beside it and its casing complete the options.
    model_path = resolve_model(options.ckpt)
    vocab_file = options.vocab_file or find_vocab(model_path)
    casing = decide_casing(model_path, vocab_file, args.do_lower_case,
                           lambda message: print(f"builder.py: warning: {message}", file=sys.stderr))
    options = dataclasses.replace(options, ckpt=model_path, vocab_file=vocab_file, do_lower_case=casing)
    config, weights = load_weights(options.ckpt, config_path_of(options))
    if options.gelu:
        config = type(config)(**{**config.to_dict(), "gelu": options.gelu})
    if options.vocab_file:
        from helpers.tokenization import load_vocab
        check_vocab(config, len(load_vocab(options.vocab_file)))
    for line in warnings(options, config):
        print(f"builder.py: warning: {line}", file=sys.stderr)
    if options.export_weights:
        save_weights(options.output, config, weights, np.float16 if options.export_fp16 else np.float32)
        print(f"wrote {options.output}")
        return 0
    check_for_model(options, config)
    check_calibration_inputs(options)
    trt = import_tensorrt()
    options = options.with_version_defaults(trt.__version__)
    for line in calibration_file_warnings(options):
        print(f"builder.py: warning: {line}", file=sys.stderr)
    check_for_tensorrt(options, trt)
    check_calibration_inputs(options)
    engine, seconds = build_engine(options, config, weights, trt)
    write_atomically(options.output, engine)
    EngineInfo(tensorrt_version=trt.__version__, precision=options.precision,
               batch_sizes=sorted(options.batch_size), sequence_lengths=sorted(options.sequence_length),
               model=config.to_dict(), gelu=config.gelu,
               source=args.ckpt if args.ckpt != options.ckpt else os.path.basename(os.path.normpath(options.ckpt)),
               build_seconds=round(seconds, 1), do_lower_case=options.do_lower_case,
               build_options=options.engine_record()).save(options.output)
    print(f"built {options.output}: {options.precision}"
          f"{' (' + options.quantization + ')' if options.quantization else ''}, "
          f"{'strongly' if options.strongly_typed else 'weakly'} typed, batch {sorted(options.batch_size)}, "
          f"sequence {sorted(options.sequence_length)}, TensorRT {trt.__version__}, {seconds:.1f} s, "
          f"{len(engine) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    run_main("builder.py", main)
