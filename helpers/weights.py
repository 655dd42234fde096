"""Load a BERT question-answering checkpoint into one canonical set of float32 weights.

Three sources are read:
  * a Google BERT TensorFlow checkpoint (the NGC checkpoints of NVIDIA's demo), through TensorFlow;
  * a Hugging Face BertForQuestionAnswering directory (model.safetensors + config.json);
  * this project's own canonical .npz file, written by `save_weights`.

Whatever the source, the result is a `BertConfig` and a dict of float32 numpy arrays with the names
and shapes of `expected_shapes`. Dense kernels are stored (in, out), so every linear layer is
`y = x @ kernel + bias`; the TensorRT builder and the numpy reference (helpers/reference.py) both
read only this form.

Command line:
  python -m helpers.weights convert SRC OUT.npz [--config F] [--fp16]
  python -m helpers.weights random {base,large,CONFIG.json} OUT.npz [--seed N] [--fp16]
"""
import argparse
import dataclasses
import glob
import json
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from helpers.errors import BertTrtError, check_range, run_main
from helpers.files import atomic_output, check_writable

FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
FORMAT_VERSION_KEY = "__format_version__"

# "gelu" means the exact erf form, as in transformers and both test models. (Google's modeling.py
# computed "gelu" with erf at first and with the tanh approximation later.)
GELU_FORMS = {"gelu": "erf", "gelu_new": "tanh", "gelu_fast": "tanh", "gelu_pytorch_tanh": "tanh"}


class WeightsError(BertTrtError, ValueError):
    """A checkpoint, config or weights file that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class BertConfig:
    """The shape of a BERT encoder with a SQuAD span head."""

    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    gelu: str = "erf"  # "erf" (exact) or "tanh" (approximation)
    layer_norm_eps: float = 1e-12

    def __post_init__(self):
        for field in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                      "intermediate_size", "vocab_size", "max_position_embeddings",
                      "type_vocab_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise WeightsError(f"config: {field} must be a positive integer, got {value!r}")
        if self.gelu not in ("erf", "tanh"):
            raise WeightsError(f"config: gelu must be 'erf' or 'tanh', got {self.gelu!r}")
        if self.hidden_size % self.num_attention_heads:
            raise WeightsError(
                f"config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}; check the model's config file")
        eps = self.layer_norm_eps
        if (not isinstance(eps, (int, float)) or isinstance(eps, bool) or not math.isfinite(eps)
                or not eps > 0):
            raise WeightsError(f"config: layer_norm_eps must be a positive number, got {eps!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_json(cls, path_or_dict) -> "BertConfig":
        """Read Google's bert_config.json, Hugging Face's config.json, or a dict of either.

        A dict from `to_dict` (with "gelu" instead of "hidden_act") is read back as well.
        """
        if isinstance(path_or_dict, dict):
            source, fields = "config", path_or_dict
        else:
            source, fields = str(path_or_dict), _read_json(path_or_dict)
        if not isinstance(fields, dict):
            raise WeightsError(f"{source}: a BERT config must be a JSON object")
        required = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                    "vocab_size")
        missing = [key for key in required if key not in fields]
        if missing:
            raise WeightsError(f"{source}: no {', '.join(missing)}; pass the bert_config.json or "
                               f"config.json that came with the checkpoint")
        _check_field_types(source, fields)
        position_type = fields.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise WeightsError(f"{source}: position_embedding_type {position_type!r} is not "
                               f"supported; only absolute position embeddings are")
        if "gelu" in fields:
            gelu = fields["gelu"]
        else:
            hidden_act = fields.get("hidden_act", "gelu")
            if hidden_act not in GELU_FORMS:
                raise WeightsError(f"{source}: hidden_act {hidden_act!r} is not supported; "
                                   f"use one of {', '.join(GELU_FORMS)}")
            gelu = GELU_FORMS[hidden_act]
        names = [field.name for field in dataclasses.fields(cls) if field.name != "gelu"]
        return cls(gelu=gelu, **{name: fields[name] for name in names if name in fields})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The JSON type of every config field this project reads; a field of another type is refused with
# its name and file (a quoted "12" or a 12.0 would otherwise fail deep in the builder, or not at all).
INTEGER_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                  "vocab_size", "max_position_embeddings", "type_vocab_size")
STRING_FIELDS = ("hidden_act", "position_embedding_type", "gelu")


def _check_field_types(source, fields):
    for name in INTEGER_FIELDS:
        value = fields.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise WeightsError(f"{source}: {name} must be a positive integer, got {value!r}; "
                               f"pass the config that came with the checkpoint")
    for name in STRING_FIELDS:
        value = fields.get(name, "")
        if not isinstance(value, str):
            raise WeightsError(f"{source}: {name} must be a string, got {value!r}; pass the "
                               f"config that came with the checkpoint")
    eps = fields.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise WeightsError(f"{source}: layer_norm_eps must be a positive number, got {eps!r}; "
                           f"pass the config that came with the checkpoint")


def config_differences(first: "BertConfig", second: "BertConfig") -> list:
    """'field A vs B' for each field in which two configs differ."""
    return [f"{field.name} {getattr(first, field.name)!r} vs {getattr(second, field.name)!r}"
            for field in dataclasses.fields(first)
            if getattr(first, field.name) != getattr(second, field.name)]


def _warn_if_contradicted(config, config_path, beside_path):
    """A --config other than the one beside the checkpoint is used as given, but not silently:
    with the same shapes and fewer heads a model loads and answers badly (issue 16: -63 F1)."""
    if config_path is None or not Path(beside_path).is_file():
        return
    if os.path.realpath(config_path) == os.path.realpath(beside_path):
        return
    beside = BertConfig.from_json(beside_path)
    differences = config_differences(config, beside)
    if differences:
        warnings.warn(f"--config {config_path} contradicts {beside_path} beside the checkpoint "
                      f"({'; '.join(differences)}); using {config_path}", ConfigMismatchWarning)


class ConfigMismatchWarning(UserWarning):
    """A config passed by hand differs from the one that came with the checkpoint."""


BERT_BASE = BertConfig(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                       intermediate_size=3072, vocab_size=30522)
BERT_LARGE = BertConfig(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                        intermediate_size=4096, vocab_size=30522)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise WeightsError(f"config file not found: {path}; pass the bert_config.json or "
                           f"config.json that came with the checkpoint") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"cannot read config {path}: {e}") from None


# ---------------------------------------------------------------------------------------------
# Canonical names and shapes


def expected_shapes(config: BertConfig) -> dict:
    """Canonical tensor name -> shape, in the order of the forward pass."""
    H, I = config.hidden_size, config.intermediate_size
    shapes = {
        "embeddings.word_embeddings": (config.vocab_size, H),
        "embeddings.position_embeddings": (config.max_position_embeddings, H),
        "embeddings.token_type_embeddings": (config.type_vocab_size, H),
        "embeddings.layer_norm.gamma": (H,),
        "embeddings.layer_norm.beta": (H,),
    }
    for i in range(config.num_hidden_layers):
        layer = f"layer.{i}"
        for projection in ("query", "key", "value", "output"):
            shapes[f"{layer}.attention.{projection}.kernel"] = (H, H)
            shapes[f"{layer}.attention.{projection}.bias"] = (H,)
        shapes[f"{layer}.attention.layer_norm.gamma"] = (H,)
        shapes[f"{layer}.attention.layer_norm.beta"] = (H,)
        shapes[f"{layer}.intermediate.kernel"] = (H, I)
        shapes[f"{layer}.intermediate.bias"] = (I,)
        shapes[f"{layer}.output.kernel"] = (I, H)
        shapes[f"{layer}.output.bias"] = (H,)
        shapes[f"{layer}.output.layer_norm.gamma"] = (H,)
        shapes[f"{layer}.output.layer_norm.beta"] = (H,)
    shapes["qa.kernel"] = (H, 2)
    shapes["qa.bias"] = (2,)
    return shapes


def validate(config: BertConfig, weights: dict, source_names: dict | None = None) -> None:
    """Raise WeightsError unless `weights` holds exactly the canonical tensors of `config`.

    source_names maps a canonical name to the tensor name in the checkpoint it came from, so the
    message can name both.
    """
    source_names = source_names or {}
    expected = expected_shapes(config)

    def described(name):
        return f"{name} ({source_names[name]})" if name in source_names else name

    for name, shape in expected.items():
        if name not in weights:
            hint = ("the checkpoint has no SQuAD output layer; fine-tune it for question "
                    "answering first" if name.startswith("qa.") else
                    "the checkpoint is incomplete or does not match its config")
            raise WeightsError(f"weights: tensor {described(name)} is missing "
                               f"(expected shape {list(shape)}); {hint}")
        actual = tuple(np.shape(weights[name]))
        if actual != shape:
            raise WeightsError(f"weights: tensor {described(name)} has shape {list(actual)}, "
                               f"expected {list(shape)}; pass the config that came with the "
                               f"checkpoint")
        finite = np.isfinite(weights[name])
        if not finite.all():
            raise WeightsError(f"weights: tensor {described(name)} holds "
                               f"{finite.size - int(finite.sum())} non-finite values (NaN or "
                               f"infinity); the checkpoint is corrupt or diverged in training, "
                               f"use another one")
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        raise WeightsError(f"weights: unexpected tensor {unexpected[0]} (and {len(unexpected) - 1} "
                           f"more) for a {config.num_hidden_layers}-layer model; pass the config "
                           f"that came with the checkpoint")


def _to_float32(name, source, array, transpose=False):
    if not np.issubdtype(array.dtype, np.floating) and array.dtype.name != "bfloat16":
        raise WeightsError(f"weights: tensor {name} ({source}) has dtype {array.dtype}, "
                           f"expected a floating-point type")
    array = array.astype(np.float32)
    return np.ascontiguousarray(array.T if transpose else array)


def _check_layer_count(source, names, layer_pattern: str, config: BertConfig) -> None:
    """A config with fewer layers than the checkpoint would silently drop the rest."""
    layers = {int(m.group(1)) for name in names if (m := re.match(layer_pattern, name))}
    if layers and max(layers) >= config.num_hidden_layers:
        raise WeightsError(f"{source} has {max(layers) + 1} layers but the config says "
                           f"{config.num_hidden_layers}; pass the config that came with the "
                           f"checkpoint")


# ---------------------------------------------------------------------------------------------
# Google BERT TensorFlow checkpoints


# Where each canonical piece lives in the two checkpoint layouts: (Google TF scope, Hugging Face module).
EMBEDDING_TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")
LINEAR_SUBLAYERS = {
    "attention.query": ("attention/self/query", "attention.self.query"),
    "attention.key": ("attention/self/key", "attention.self.key"),
    "attention.value": ("attention/self/value", "attention.self.value"),
    "attention.output": ("attention/output/dense", "attention.output.dense"),
    "intermediate": ("intermediate/dense", "intermediate.dense"),
    "output": ("output/dense", "output.dense"),
}
LAYER_NORMS = {
    "attention.layer_norm": ("attention/output/LayerNorm", "attention.output.LayerNorm"),
    "output.layer_norm": ("output/LayerNorm", "output.LayerNorm"),
}


def _checkpoint_names(config, embeddings, layer, style, sep, table_suffix, kernel_bias, gamma_beta, qa):
    """Canonical name -> checkpoint name, for one layout (style 0: TF, 1: Hugging Face)."""
    names = {f"embeddings.{table}": f"{embeddings}{sep}{table}{table_suffix}" for table in EMBEDDING_TABLES}
    names["embeddings.layer_norm.gamma"] = f"{embeddings}{sep}LayerNorm{sep}{gamma_beta[0]}"
    names["embeddings.layer_norm.beta"] = f"{embeddings}{sep}LayerNorm{sep}{gamma_beta[1]}"
    for i in range(config.num_hidden_layers):
        for ours, places in LINEAR_SUBLAYERS.items():
            names[f"layer.{i}.{ours}.kernel"] = f"{layer(i)}{sep}{places[style]}{sep}{kernel_bias[0]}"
            names[f"layer.{i}.{ours}.bias"] = f"{layer(i)}{sep}{places[style]}{sep}{kernel_bias[1]}"
        for ours, places in LAYER_NORMS.items():
            names[f"layer.{i}.{ours}.gamma"] = f"{layer(i)}{sep}{places[style]}{sep}{gamma_beta[0]}"
            names[f"layer.{i}.{ours}.beta"] = f"{layer(i)}{sep}{places[style]}{sep}{gamma_beta[1]}"
    names["qa.kernel"], names["qa.bias"] = qa
    return names


def tf_variable_names(config: BertConfig) -> dict:
    """Canonical name -> TensorFlow variable name in a Google BERT SQuAD checkpoint.

    Only cls/squad/output_weights is stored (out, in) and gets transposed; TF kernels are (in, out).
    """
    return _checkpoint_names(config, "bert/embeddings", lambda i: f"bert/encoder/layer_{i}", 0, "/", "",
                             ("kernel", "bias"), ("gamma", "beta"),
                             ("cls/squad/output_weights", "cls/squad/output_bias"))


def tf_checkpoint_prefix(path) -> Path:
    """The checkpoint prefix ("dir/model.ckpt-4149") for a prefix, its .index or .data file, or a
    directory (named by its `checkpoint` file, else its only *.index file)."""
    path = Path(path)
    if path.is_dir():
        return _prefix_in_directory(path)
    name = re.sub(r"\.(index|data-\d+-of-\d+)$", "", path.name)
    prefix = path.with_name(name)
    if not prefix.with_name(name + ".index").is_file():
        raise WeightsError(f"no TensorFlow checkpoint at {path} ({name}.index not found); pass "
                           f"the checkpoint prefix such as model.ckpt-4149 or its directory")
    return prefix


def _prefix_in_directory(directory: Path) -> Path:
    state = directory / "checkpoint"
    if state.is_file():
        match = re.search(r'^model_checkpoint_path:\s*"(.+)"', state.read_text(errors="replace"),
                          re.MULTILINE)
        if match:
            # The recorded path is often absolute on the training machine; the checkpoint now
            # lives next to this file.
            prefix = directory / Path(match.group(1)).name
            if prefix.with_name(prefix.name + ".index").is_file():
                return prefix
    indexes = sorted(directory.glob("*.index"))
    if len(indexes) == 1:
        return indexes[0].with_suffix("")
    if not indexes:
        raise WeightsError(f"no TensorFlow checkpoint (*.index) or model.safetensors in "
                           f"{directory}; pass the folder of a BERT SQuAD checkpoint")
    raise WeightsError(f"{directory} holds {len(indexes)} checkpoints "
                       f"({', '.join(p.stem for p in indexes)}); pass the prefix of one of them")


def load_tf_checkpoint(ckpt_prefix, config: BertConfig) -> dict:
    """Canonical float32 weights from a Google BERT TF checkpoint (prefix, .index/.data file or
    directory). Optimizer slots, global_step, loss scale and the pooler are not read."""
    prefix = tf_checkpoint_prefix(ckpt_prefix)
    _check_tf_data_files(prefix)
    # TensorFlow's C++ start-up messages would drown the one line this tool prints.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN only speeds up TF's own compute, which reading a checkpoint does none of; left on, it
    # announces itself on stderr before TF_CPP_MIN_LOG_LEVEL applies.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
    except ImportError:
        raise WeightsError("reading a TensorFlow checkpoint needs TensorFlow: pip install "
                           "tensorflow-cpu, or convert it to .npz on a machine that has it "
                           "(python -m helpers.weights convert)") from None
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as e:  # TF raises several unrelated types for unreadable files.
        raise WeightsError(f"cannot read TensorFlow checkpoint {prefix}: "
                           f"{str(e).splitlines()[0]}") from None
    available = reader.get_variable_to_shape_map()
    _check_layer_count(prefix, available, r"bert/encoder/layer_(\d+)/", config)
    sources = tf_variable_names(config)
    weights = {name: _to_float32(name, source, _read_tf_tensor(reader, prefix, source),
                                 transpose=name == "qa.kernel")
               for name, source in sources.items() if source in available}
    validate(config, weights, sources)
    return weights


def _check_tf_data_files(prefix: Path) -> None:
    """Every .data shard named like prefix.data-0000i-of-0000N is there (TF fails only later,
    tensor by tensor, when one is missing)."""
    shards = sorted(prefix.parent.glob(f"{glob.escape(prefix.name)}.data-*-of-*"))
    if not shards:
        raise WeightsError(f"no {prefix.name}.data-00000-of-00001 beside {prefix}.index; copy or "
                           f"download the whole checkpoint (its .index and .data files)")
    count = int(re.search(r"-of-(\d+)$", shards[0].name).group(1))
    for i in range(count):
        shard = prefix.with_name(f"{prefix.name}.data-{i:05d}-of-{count:05d}")
        if not shard.is_file():
            raise WeightsError(f"the checkpoint {prefix} lacks {shard.name}; copy or download "
                               f"the whole checkpoint")


def _read_tf_tensor(reader, prefix, source):
    try:
        return reader.get_tensor(source)
    except Exception as e:  # a truncated or corrupt .data file fails only when its bytes are read
        raise WeightsError(f"cannot read tensor {source} of TensorFlow checkpoint {prefix}: "
                           f"{str(e).strip().splitlines()[0]}; the checkpoint's .data file is "
                           f"truncated or corrupt, download it again") from None


# ---------------------------------------------------------------------------------------------
# Hugging Face BertForQuestionAnswering directories


def hf_tensor_names(config: BertConfig, prefix: str = "bert.") -> dict:
    """Canonical name -> tensor name in a Hugging Face BertForQuestionAnswering state dict.

    Hugging Face stores Linear weights (out, in); every kernel here gets transposed.
    """
    return _checkpoint_names(config, f"{prefix}embeddings", lambda i: f"{prefix}encoder.layer.{i}", 1, ".",
                             ".weight", ("weight", "bias"), ("weight", "bias"),
                             ("qa_outputs.weight", "qa_outputs.bias"))


def _safetensors_files(directory: Path) -> list:
    single = directory / "model.safetensors"
    if single.is_file():
        return [single]
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index)
        weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(file, str)
                                                       for file in weight_map.values()):
            raise WeightsError(f"{index}: weight_map must be an object of tensor name -> file "
                               f"name; save the model again with save_pretrained")
        files = sorted({directory / file for file in weight_map.values()})
        for file in files:
            if not file.is_file():
                raise WeightsError(f"{index} names {file.name}, which is not in {directory}; "
                                   f"download the missing shard")
        return files
    hint = (" (it has pytorch_model.bin: re-save it with transformers' save_pretrained, which "
            "writes safetensors)" if (directory / "pytorch_model.bin").is_file() else "")
    raise WeightsError(f"no model.safetensors in {directory}{hint}")


def load_hf_directory(path, config_path=None) -> tuple:
    """(BertConfig, canonical float32 weights) from a Hugging Face BertForQuestionAnswering folder.

    Reads config.json (or config_path) and model.safetensors (or its shards) with the safetensors
    numpy API. Tensor names may carry the "bert." prefix or not; the pooler, position_ids and any
    other tensor outside the canonical set are not read.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise WeightsError(f"no such directory: {directory}; pass a Hugging Face model folder")
    config = BertConfig.from_json(config_path or directory / "config.json")
    _warn_if_contradicted(config, config_path, directory / "config.json")
    prefixed, bare = hf_tensor_names(config, "bert."), hf_tensor_names(config, "")
    wanted = set(prefixed.values()) | set(bare.values())
    tensors, names = {}, []
    for file in _safetensors_files(directory):
        file_tensors, file_names = _read_safetensors(file, wanted)
        tensors.update(file_tensors)
        names += file_names
    _check_layer_count(directory, names, r"(?:bert\.)?encoder\.layer\.(\d+)\.", config)
    sources = prefixed if prefixed["embeddings.word_embeddings"] in tensors else bare
    weights = {name: _to_float32(name, source, tensors[source], transpose=name.endswith("kernel"))
               for name, source in sources.items() if source in tensors}
    validate(config, weights, sources)
    return config, weights


def _read_safetensors(file: Path, wanted: set) -> tuple:
    """(the tensors of `file` whose names are in `wanted`, as numpy arrays; all its names)."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="np") as f:
            names = list(f.keys())
            read = [name for name in names if name in wanted]
            if any(f.get_slice(name).get_dtype() == "BF16" for name in read):
                _register_bfloat16(file)
            return {name: f.get_tensor(name) for name in read}, names
    except WeightsError:
        raise
    except Exception as e:  # safetensors reports bad files with its own exception type.
        raise WeightsError(f"cannot read {file}: {_first_line(e)}; the file is truncated or "
                           f"corrupt, download it again") from None


def _register_bfloat16(file):
    # numpy has no bfloat16; ml_dtypes (installed with TensorFlow or JAX) registers one.
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        raise WeightsError(f"{file} stores bfloat16 tensors, which numpy reads only with "
                           f"ml_dtypes: pip install ml_dtypes") from None


# ---------------------------------------------------------------------------------------------
# The canonical .npz file


def save_weights(path, config: BertConfig, weights: dict, dtype=np.float32) -> None:
    """Write config and weights to a canonical .npz, whole or not at all.

    dtype=np.float16 halves the file; `load_weights` always returns float32.
    """
    path, dtype = Path(path), np.dtype(dtype)
    check_output_path(path)
    if dtype not in (np.float32, np.float16):
        raise WeightsError(f"weights can be saved as float32 or float16, not {dtype}")
    validate(config, weights)
    arrays = {}
    for name, weight in weights.items():
        if dtype == np.float16 and np.abs(weight).max() > np.finfo(np.float16).max:
            raise WeightsError(f"weights: tensor {name} has values beyond the float16 range; "
                               f"save as float32 (leave out --fp16)")
        arrays[name] = np.asarray(weight, dtype=dtype)
    arrays[CONFIG_KEY] = np.array(json.dumps(config.to_dict()))
    arrays[FORMAT_VERSION_KEY] = np.array(FORMAT_VERSION)
    with atomic_output(path) as f:
        np.savez(f, **arrays)


def check_output_path(path) -> None:
    """Raise WeightsError unless `path` can name a new canonical .npz; checked before any work."""
    path = Path(path)
    if path.suffix != ".npz":
        raise WeightsError(f"output file {path} must end in .npz")
    check_writable(path, "weights file")


def _first_line(error) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _load_npz(path: Path, config_path=None) -> tuple:
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile, zlib and numpy each raise their own types for bad bytes
        raise WeightsError(f"cannot read {path}: {_first_line(e)}; the file is truncated or "
                           f"not a .npz, convert the checkpoint again") from None
    if not isinstance(archive, np.lib.npyio.NpzFile) or FORMAT_VERSION_KEY not in archive.files:
        raise WeightsError(f"{path} is not a bert-trt weights file; make one with: "
                           f"python -m helpers.weights convert CHECKPOINT {path.name}")
    with archive:
        arrays = {}
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except Exception as e:  # a truncated member fails only when it is read
                raise WeightsError(f"cannot read tensor {name} of {path}: {_first_line(e)}; the "
                                   f"file is truncated or corrupt, convert the checkpoint "
                                   f"again") from None
    try:
        version = int(arrays.pop(FORMAT_VERSION_KEY))
        config_fields = json.loads(str(arrays.pop(CONFIG_KEY)))
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{path} has no readable {CONFIG_KEY}/{FORMAT_VERSION_KEY} ({e}); "
                           f"convert the checkpoint again") from None
    if version != FORMAT_VERSION:
        raise WeightsError(f"{path} has weights format {version}, this version reads "
                           f"{FORMAT_VERSION}; convert the checkpoint again")
    if not isinstance(config_fields, dict):
        raise WeightsError(f"{path}: {CONFIG_KEY} is not a config object; convert the checkpoint "
                           f"again")
    config = BertConfig.from_json(config_fields)
    if config_path is not None and BertConfig.from_json(config_path) != config:
        differences = config_differences(BertConfig.from_json(config_path), config)
        raise WeightsError(f"{config_path} does not describe the model in {path} "
                           f"({'; '.join(differences)}); leave the config out, the .npz carries "
                           f"its own")
    for name, array in arrays.items():
        if not (np.issubdtype(array.dtype, np.floating)):
            raise WeightsError(f"weights: tensor {name} of {path} has dtype {array.dtype}, "
                               f"expected a floating-point type; convert the checkpoint again")
    weights = {name: array.astype(np.float32) for name, array in arrays.items()}
    validate(config, weights)
    return config, weights


# ---------------------------------------------------------------------------------------------
# One entry point for all sources


def load_weights(path, config_path=None) -> tuple:
    """(BertConfig, canonical float32 weights) from a .npz, Hugging Face folder or TF checkpoint.

    A TF checkpoint is named by its prefix, its .index or .data file, or its folder; its config is
    the bert_config.json next to it unless config_path is given.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return _load_npz(path, config_path)
    if path.is_dir() and _is_hf_directory(path):
        return load_hf_directory(path, config_path)
    if path.suffix == ".safetensors" and path.is_file():
        return load_hf_directory(path.parent, config_path)
    if not path.exists() and not path.with_name(path.name + ".index").is_file():
        raise WeightsError(f"no such file or directory: {path}; pass a .npz, a Hugging Face "
                           f"model folder or a TensorFlow checkpoint prefix")
    prefix = tf_checkpoint_prefix(path)
    beside = prefix.parent / "bert_config.json"
    if config_path is None:
        config_path = beside
        if not config_path.is_file():
            raise WeightsError(f"no bert_config.json next to {prefix}; pass the model's config "
                               f"file with --config")
        config = BertConfig.from_json(config_path)
    else:
        config = BertConfig.from_json(config_path)
        _warn_if_contradicted(config, config_path, beside)
    return config, load_tf_checkpoint(prefix, config)


def _is_hf_directory(directory: Path) -> bool:
    return any((directory / name).is_file() for name in
               ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"))


def random_weights(config: BertConfig, seed: int = 0) -> dict:
    """BERT's initialisation (normal, std 0.02; zero biases; LayerNorm gamma 1, beta 0), for
    timing and testing models without downloading a checkpoint."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith(".gamma"):
            weights[name] = np.ones(shape, np.float32)
        elif name.endswith((".bias", ".beta")):
            weights[name] = np.zeros(shape, np.float32)
        else:
            weights[name] = rng.standard_normal(shape, dtype=np.float32)
            weights[name] *= 0.02
    return weights


def check_vocab(config: BertConfig, vocab_size_from_file: int) -> None:
    """Raise WeightsError when the vocabulary file does not belong to the model."""
    if vocab_size_from_file != config.vocab_size:
        raise WeightsError(f"vocab.txt has {vocab_size_from_file} tokens but the model has "
                           f"{config.vocab_size}; pass the vocab file that came with the "
                           f"checkpoint")


def parameter_count(weights: dict) -> int:
    return sum(int(np.size(weight)) for weight in weights.values())


def describe(config: BertConfig) -> str:
    """One line naming the model's shape, for logs."""
    return (f"{config.num_hidden_layers} layers, hidden {config.hidden_size}, "
            f"{config.num_attention_heads} heads of {config.head_size}, "
            f"intermediate {config.intermediate_size}, {config.gelu} GELU")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.weights", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Convert a BERT SQuAD checkpoint to this project's canonical .npz, or make "
                    "random weights of a given shape for timing.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                  help="TF checkpoint, Hugging Face folder or .npz -> .npz")
    convert.add_argument("source",
                         help="TF checkpoint prefix, folder or file; Hugging Face folder; .npz")
    convert.add_argument("output", help="the .npz to write")
    convert.add_argument("--config", help="bert_config.json or config.json (default: the one next to source)")
    convert.add_argument("--fp16", action="store_true", help="store float16 (half the size)")
    random = commands.add_parser("random", help="random weights of a BERT shape -> .npz",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    random.add_argument("model", help="base, large, or a bert_config.json/config.json")
    random.add_argument("output", help="the .npz to write")
    random.add_argument("--seed", type=int, default=0, help="seed of the random weights (>= 0)")
    random.add_argument("--fp16", action="store_true", help="store float16 (half the size)")
    args = parser.parse_args(argv)

    dtype = np.float16 if args.fp16 else np.float32
    try:
        if args.command == "random":
            check_range("--seed", args.seed, minimum=0)
        check_output_path(args.output)
        if args.command == "convert":
            config, weights = load_weights(args.source, args.config)
        else:
            presets = {"base": BERT_BASE, "large": BERT_LARGE}
            config = presets.get(args.model) or BertConfig.from_json(args.model)
            weights = random_weights(config, args.seed)
        save_weights(args.output, config, weights, dtype)
    except BertTrtError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    size = os.path.getsize(args.output) / 2**20
    print(f"wrote {args.output}: {describe(config)}, {parameter_count(weights) / 1e6:.1f} M "
          f"parameters, {np.dtype(dtype).name}, {size:.1f} MiB")
    return 0


if __name__ == "__main__":
    run_main("python -m helpers.weights", main)
