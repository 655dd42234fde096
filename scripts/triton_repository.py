#!/usr/bin/env python3
"""Write a Triton Inference Server model repository that answers questions with a BERT-QA engine.

    python scripts/triton_repository.py -e bert.engine -v vocab.txt -o model_repository
    python scripts/triton_repository.py -e bert.engine -v vocab.txt -o repo --gpus 0,1 --instances-per-gpu 2
    python scripts/triton_repository.py -m model.ckpt-4149 -o repo     # numpy reference, CPU only

Two models:
  bert_qa_engine  the engine (platform tensorrt_plan), its inputs, output and batch sizes read from
                  the ENGINE.json that builder.py wrote beside it; with -m instead, a Python-backend
                  model running the numpy reference with a padded engine's inputs and output.
  bert_qa         passage and question strings in, answer, probability and n-best out: a Python-backend
                  model that runs helpers/serving.py and calls bert_qa_engine (business-logic scripting).
Everything the models need (engine or weights, vocabulary, the helpers/ package) is copied into the
repository, so it serves from any machine that has the Triton image, and from shared storage.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.data_processing import AnswerOptions  # noqa: E402
from helpers.errors import BertTrtError, run_main  # noqa: E402
from helpers.models import vocab_of  # noqa: E402
from helpers.names import INPUT_NAMES, OUTPUT_NAME, PACKED_INPUT_NAMES  # noqa: E402
from helpers.trt_common import EngineInfo  # noqa: E402

MODELS = REPO_ROOT / "scripts" / "triton_models"
ENGINE_MODEL = "bert_qa_engine"
QA_MODEL = "bert_qa"
# TensorRT's standard plugin library, where the BERT plugins (CustomEmbLayerNormPluginDynamic,
# CustomQKVToContextPluginDynamic, CustomSkipLayerNormPluginDynamic, ...) live. Triton's TensorRT
# backend registers it itself; only another library has to be named with
# --backend-config=tensorrt,plugins=... or LD_PRELOAD.
PLUGIN_LIBRARY = "libnvinfer_plugin.so"


class RepositoryError(BertTrtError, ValueError):
    """A model repository that cannot be written as asked; the message names the fix."""


@dataclass(frozen=True)
class RepositoryOptions:
    output: Path
    force: bool
    engine: Path  # or None with ckpt
    ckpt: str
    config: str
    vocab: Path
    tensorrt_version: str
    gpus: tuple  # () = every GPU
    instances_per_gpu: int
    max_queue_delay_us: int
    qa_instances: int
    max_questions: int
    reference_batch: int
    qa: AnswerOptions


def same_release(a, b):
    """TensorRT deserializes only engines of its own major.minor.patch (the build number may differ)."""
    return a.split(".")[:3] == b.split(".")[:3]


def pbtxt_list(values):
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def tensor_block(kind, name, data_type, dims, extra=""):
    return (f"{kind} {{\n  name: \"{name}\"\n  data_type: {data_type}\n  dims: {pbtxt_list(dims)}\n"
            f"{extra}}}\n")


def instance_groups(options, kind):
    if kind == "KIND_CPU":
        return f"instance_group [ {{ kind: KIND_CPU count: {options.qa_instances} }} ]\n"
    gpus = f" gpus: {pbtxt_list(options.gpus)}" if options.gpus else ""
    return f"instance_group [ {{ kind: KIND_GPU count: {options.instances_per_gpu}{gpus} }} ]\n"


def dynamic_batching(preferred, delay_us):
    return (f"dynamic_batching {{\n  preferred_batch_size: {pbtxt_list(preferred)}\n"
            f"  max_queue_delay_microseconds: {delay_us}\n}}\n")


def parameters(values):
    return "".join(f"parameters {{ key: \"{key}\" value {{ string_value: \"{value}\" }} }}\n"
                   for key, value in values.items())


def plan_config(info: EngineInfo, options: RepositoryOptions):
    """config.pbtxt of the tensorrt_plan model, from the engine's ENGINE.json."""
    max_batch = max(info.batch_sizes)
    packed = bool(info.build_options.get("varseqlen"))
    text = f"name: \"{ENGINE_MODEL}\"\nplatform: \"tensorrt_plan\"\nmax_batch_size: {max_batch}\n"
    if packed:
        # Ragged batching: each request is one window of n tokens, [1, n]; Triton concatenates the
        # batch's windows into the engine's 1-D inputs and makes cu_seqlens and max_seqlen for it,
        # and splits the 1-D output back by each request's input_ids shape.
        for name in PACKED_INPUT_NAMES[:2]:
            text += tensor_block("input", name, "TYPE_INT32", [-1], "  allow_ragged_batch: true\n")
        text += ("batch_input [\n"
                 f"  {{ kind: BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO target_name: \"{PACKED_INPUT_NAMES[2]}\" "
                 "data_type: TYPE_INT32 source_input: \"input_ids\" },\n"
                 f"  {{ kind: BATCH_MAX_ELEMENT_COUNT_AS_SHAPE target_name: \"{PACKED_INPUT_NAMES[3]}\" "
                 "data_type: TYPE_INT32 source_input: \"input_ids\" }\n]\n")
        text += tensor_block("output", OUTPUT_NAME, "TYPE_FP32", [-1, 2, 1, 1])
        text += ("batch_output [\n"
                 f"  {{ target_name: \"{OUTPUT_NAME}\" kind: BATCH_SCATTER_WITH_INPUT_SHAPE "
                 "source_input: \"input_ids\" }\n]\n")
    else:
        sequence = info.sequence_lengths[0] if len(info.sequence_lengths) == 1 else -1
        for name in INPUT_NAMES:
            text += tensor_block("input", name, "TYPE_INT32", [sequence])
        text += tensor_block("output", OUTPUT_NAME, "TYPE_FP32", [sequence, 2, 1, 1])
    text += instance_groups(options, "KIND_GPU")
    text += dynamic_batching(sorted(info.batch_sizes), options.max_queue_delay_us)
    text += parameters({"tensorrt_version": info.tensorrt_version, "plugin_library": PLUGIN_LIBRARY,
                        "precision": info.precision, "packed": str(packed).lower(),
                        "sequence_lengths": ",".join(map(str, info.sequence_lengths))})
    return text


def reference_config(options: RepositoryOptions):
    """config.pbtxt of the numpy reference standing in for a padded engine of one sequence length."""
    sequence = options.qa.max_seq_length
    text = f"name: \"{ENGINE_MODEL}\"\nbackend: \"python\"\nmax_batch_size: {options.reference_batch}\n"
    for name in INPUT_NAMES:
        text += tensor_block("input", name, "TYPE_INT32", [sequence])
    text += tensor_block("output", OUTPUT_NAME, "TYPE_FP32", [sequence, 2, 1, 1])
    text += "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
    text += dynamic_batching([options.reference_batch], options.max_queue_delay_us)
    return text


def qa_config(options: RepositoryOptions):
    text = f"name: \"{QA_MODEL}\"\nbackend: \"python\"\nmax_batch_size: {options.max_questions}\n"
    text += tensor_block("input", "passage", "TYPE_STRING", [1])
    text += tensor_block("input", "question", "TYPE_STRING", [1])
    text += tensor_block("output", "answer", "TYPE_STRING", [1])
    text += tensor_block("output", "probability", "TYPE_FP32", [1])
    text += tensor_block("output", "nbest", "TYPE_STRING", [1])  # JSON, sent only when asked for
    text += instance_groups(options, "KIND_CPU")
    text += dynamic_batching([options.max_questions], options.max_queue_delay_us)
    return text


def copy_helpers(version_dir):
    shutil.copytree(REPO_ROOT / "helpers", version_dir / "helpers",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def load_engine_info(engine, tensorrt_version):
    if not engine.is_file():
        raise RepositoryError(f"no such engine: {engine}")
    info = EngineInfo.load(engine)
    if info is None:
        raise RepositoryError(f"{EngineInfo.path_for(engine)} not found: the repository is made from "
                              "the ENGINE.json that builder.py writes beside each engine; rebuild with builder.py")
    if not same_release(info.tensorrt_version, tensorrt_version):
        raise RepositoryError(
            f"{engine} was built with TensorRT {info.tensorrt_version}, and this repository is for "
            f"TensorRT {tensorrt_version} (--tensorrt-version): Triton would refuse the engine; rebuild it "
            f"with TensorRT {tensorrt_version}, or serve it from the Triton image of TensorRT {info.tensorrt_version}")
    return info


def write_repository(options: RepositoryOptions):
    """Write the repository into a temporary folder beside the output, then move it in place whole."""
    output = options.output
    if output.exists() and not options.force:
        raise RepositoryError(f"{output} already exists; pass --force to replace it")
    if not output.parent.is_dir():
        raise RepositoryError(f"the folder {output.parent} does not exist; create it first")
    info = load_engine_info(options.engine, options.tensorrt_version) if options.engine else None
    if info is not None and options.qa.max_seq_length not in info.sequence_lengths:
        raise RepositoryError(f"the engine serves sequence lengths {info.sequence_lengths}, not "
                              f"{options.qa.max_seq_length}; pass one of them with -s")
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))
    try:
        engine_dir = staging / ENGINE_MODEL / "1"
        engine_dir.mkdir(parents=True)
        if info is not None:
            shutil.copyfile(options.engine, engine_dir / "model.plan")
            shutil.copyfile(EngineInfo.path_for(options.engine), engine_dir / "ENGINE.json")
            (staging / ENGINE_MODEL / "config.pbtxt").write_text(plan_config(info, options))
            engine_max_batch, packed = max(info.batch_sizes), bool(info.build_options.get("varseqlen"))
        else:
            from helpers.weights import load_weights, save_weights
            config, weights = load_weights(options.ckpt, options.config)
            save_weights(engine_dir / "model.npz", config, weights)
            shutil.copyfile(MODELS / "bert_qa_reference.py", engine_dir / "model.py")
            copy_helpers(engine_dir)
            (staging / ENGINE_MODEL / "config.pbtxt").write_text(reference_config(options))
            engine_max_batch, packed = options.reference_batch, False

        qa_dir = staging / QA_MODEL / "1"
        qa_dir.mkdir(parents=True)
        shutil.copyfile(MODELS / "bert_qa.py", qa_dir / "model.py")
        shutil.copyfile(options.vocab, qa_dir / "vocab.txt")
        copy_helpers(qa_dir)
        setup = {"options": asdict(options.qa), "engine_model": ENGINE_MODEL,
                 "engine_max_batch": engine_max_batch, "packed": packed}
        (qa_dir / "bert_qa.json").write_text(json.dumps(setup, indent=2) + "\n")
        (staging / QA_MODEL / "config.pbtxt").write_text(qa_config(options))
        os.chmod(staging, 0o755)
        if output.exists():
            shutil.rmtree(output)
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def installed_tensorrt_version():
    try:
        import tensorrt
    except ImportError:
        return None
    return tensorrt.__version__


def parse_gpus(text):
    try:
        gpus = tuple(int(g) for g in text.split(",")) if text else ()
    except ValueError:
        raise RepositoryError(f"--gpus takes GPU indexes separated by commas (e.g. 0,1), not {text!r}") from None
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise RepositoryError(f"--gpus {text}: GPU indexes must be distinct and not negative")
    return gpus


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("-e", "--engine", help="TensorRT engine built by builder.py (with its ENGINE.json beside it)")
    model.add_argument("-m", "--ckpt", help="serve this checkpoint with the numpy reference on the CPU instead")
    p.add_argument("--config", help="with -m: the model config file, when not beside the checkpoint")
    p.add_argument("-v", "--vocab-file", help="vocab.txt of the model (default: beside -m's checkpoint)")
    p.add_argument("-o", "--output", required=True, help="the model repository folder to write")
    p.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--tensorrt-version",
                   help="TensorRT version of the Triton server that will serve the engine "
                        "(default: the installed tensorrt's)")
    p.add_argument("--gpus", help="GPU indexes to serve the engine on, e.g. 0,1 (default: every GPU)")
    p.add_argument("--instances-per-gpu", type=int, default=1, help="engine instances on each GPU")
    p.add_argument("--max-queue-delay-us", type=int, default=2000,
                   help="how long the dynamic batcher may hold a request to fill a batch")
    p.add_argument("--qa-instances", type=int, default=2, help="bert_qa (tokenization, answers) CPU instances")
    p.add_argument("--max-questions", type=int, default=64, help="questions one bert_qa request may carry")
    p.add_argument("-b", "--batch-size", type=int, default=8, help="with -m: the reference model's largest batch")
    p.add_argument("-s", "--sequence-length", type=int,
                   help="tokens per window (default: the engine's longest; 384 with -m)")
    p.add_argument("--max-query-length", type=int, default=64)
    p.add_argument("--max-answer-length", type=int, default=30)
    p.add_argument("--n-best-size", type=int, default=20)
    p.add_argument("--doc-stride", type=int, default=128)
    return p.parse_args(argv)


def make_options(args):
    for name in ("instances_per_gpu", "qa_instances", "max_questions", "batch_size", "max_query_length",
                 "max_answer_length", "n_best_size", "doc_stride"):
        if getattr(args, name) < 1:
            raise RepositoryError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_queue_delay_us < 0:
        raise RepositoryError("--max-queue-delay-us must not be negative")
    engine = Path(args.engine) if args.engine else None
    tensorrt_version = args.tensorrt_version
    do_lower_case = True
    sequence = args.sequence_length
    if engine is not None:
        tensorrt_version = tensorrt_version or installed_tensorrt_version()
        if tensorrt_version is None:
            raise RepositoryError("TensorRT is not importable here: pass --tensorrt-version, the TensorRT "
                                  "version of the Triton image that will serve the engine")
        info = EngineInfo.load(engine) if engine.is_file() else None
        if info is not None:
            do_lower_case = info.model.get("do_lower_case", True)
            sequence = sequence or max(info.sequence_lengths)
    vocab = Path(vocab_of(args.vocab_file, args.ckpt))
    if not vocab.is_file():
        raise RepositoryError(f"no such vocabulary file: {vocab}")
    qa = AnswerOptions(max_seq_length=sequence or 384, doc_stride=args.doc_stride,
                       max_query_length=args.max_query_length, n_best_size=args.n_best_size,
                       max_answer_length=args.max_answer_length, do_lower_case=bool(do_lower_case))
    return RepositoryOptions(output=Path(args.output), force=args.force, engine=engine, ckpt=args.ckpt,
                             config=args.config, vocab=vocab, tensorrt_version=tensorrt_version,
                             gpus=parse_gpus(args.gpus), instances_per_gpu=args.instances_per_gpu,
                             max_queue_delay_us=args.max_queue_delay_us, qa_instances=args.qa_instances,
                             max_questions=args.max_questions, reference_batch=args.batch_size, qa=qa)


def main(argv=None):
    args = parse_args(argv)
    options = make_options(args)
    write_repository(options)
    engine = f"{options.engine} (TensorRT {options.tensorrt_version})" if options.engine else \
        f"the numpy reference of {options.ckpt}"
    print(f"wrote {options.output}: {QA_MODEL} (text in, answers out) and {ENGINE_MODEL}, {engine}")
    return 0


if __name__ == "__main__":
    run_main("triton_repository.py", main)
