"""What builder.py and the engine runner share about TensorRT itself.

TensorRT and pycuda are imported lazily, here and only here, so that everything that does not
touch a GPU imports and runs on machines without them.
"""
import json
import os
import re
import sys
import warnings
from dataclasses import MISSING, asdict, dataclass, field
from dataclasses import fields as dataclass_fields

from helpers.files import write_json_atomically
from helpers.errors import BertTrtError
# An engine's inputs: padded (batch, seq) int32 tensors, or, built with --varseqlen, the tokens of a
# batch packed without padding, the sequences' offsets cu_seqlens, and max_seqlen, whose shape
# (seq,) alone is read (it picks the attention kernel).
from helpers.names import INPUT_NAMES, PACKED_INPUT_NAMES  # noqa: F401  (the runner imports them from here)


def input_shapes(batch, sequence, packed=False, tokens=None):
    """{input name: shape} for `batch` sequences padded to `sequence` tokens; packed, `tokens` in all
    (default: batch x sequence)."""
    if not packed:
        return dict.fromkeys(INPUT_NAMES, (batch, sequence))
    tokens = batch * sequence if tokens is None else tokens
    return {"input_ids": (tokens,), "segment_ids": (tokens,), "cu_seqlens": (batch + 1,),
            "max_seqlen": (sequence,)}


class TensorRTError(BertTrtError, RuntimeError):
    """A problem with TensorRT, a plugin, an engine or the GPU, told in one line."""


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as e:
        raise TensorRTError(
            f"TensorRT's Python package is not importable ({e}); run inside NVIDIA's TensorRT "
            "container or `pip install tensorrt`") from None
    return tensorrt


def import_pycuda():
    """pycuda's driver module with a context on GPU 0 (pycuda.autoinit)."""
    try:
        import pycuda.autoinit  # noqa: F401  (creates the CUDA context)
        import pycuda.driver as cuda
    except ImportError as e:
        raise TensorRTError(f"pycuda is not importable ({e}); `pip install pycuda`") from None
    except Exception as e:  # pycuda raises its own errors when there is no usable GPU
        raise TensorRTError(f"no usable CUDA GPU: {e}") from None
    return cuda


def make_logger(trt, verbose=False):
    """A TensorRT logger with the standard plugins (EmbLayerNorm, QKVToContext, ...) registered."""
    return with_plugins(trt, trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING))


def make_build_logger(trt, verbose=False):
    """A logger as make_logger's that also keeps the errors in `.errors`: a failed build returns only
    None, and its one-line message is made from them.

    It is Python, so TensorRT's threads must take the GIL to log; a build releases it while it runs
    (the runner keeps TensorRT's own logger, as engine calls may not).
    """
    shown = trt.ILogger.VERBOSE if verbose else trt.ILogger.WARNING

    class BuildLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors = []

        def log(self, severity, message):
            if severity <= trt.ILogger.ERROR:
                self.errors.append(message)
            if severity <= shown:
                tag = "F" if severity == trt.ILogger.INTERNAL_ERROR else severity.name[0]  # as TensorRT's samples
                print(f"[TRT] [{tag}] {message}", file=sys.stderr)

    return with_plugins(trt, BuildLogger())


def with_plugins(trt, logger):
    if not trt.init_libnvinfer_plugins(logger, ""):
        raise TensorRTError("TensorRT's plugin library (libnvinfer_plugin) could not be loaded")
    return logger


def build_failure(errors, workspace_mib):
    """The one line for a build that returned no engine, from the errors TensorRT logged."""
    for message in errors:
        scratch = re.search(r"plugin node (\S+) .*?requires (\d+) bytes of scratch space", message)
        if scratch:
            need = -(-int(scratch.group(2)) // 2**20)
            suggest = 1 << (need - 1).bit_length()
            return (f"layer {scratch.group(1)} needs {need} MiB of workspace, -w/--workspace-size gives "
                    f"{workspace_mib}; rerun with -w {suggest}")
    if errors:
        first_line = errors[0].strip().splitlines()[0]
        return f"TensorRT could not build the engine: {first_line}; rerun with --verbose to see more"
    return "TensorRT could not build the engine; rerun with --verbose to see why"


def tensorrt_version(trt):
    return trt.__version__


@dataclass
class EngineInfo:
    """What builder.py records beside each engine, in ENGINE.json.

    TensorRT refuses (or crashes on) engines built by another version; reading this first lets
    the runner say so in one line instead.
    """
    tensorrt_version: str
    precision: str
    batch_sizes: list
    sequence_lengths: list
    model: dict = field(default_factory=dict)
    gelu: str = ""
    source: str = ""
    build_seconds: float = 0.0
    build_options: dict = field(default_factory=dict)  # what else shaped the kernels: tactics, level, FC plugin
    # Whether the engine's text is lower-cased before WordPiece; None in engines from before it was
    # recorded, which were all built from uncased models (lower_case() reads None as True).
    do_lower_case: bool | None = None

    def lower_case(self):
        return True if self.do_lower_case is None else self.do_lower_case

    @staticmethod
    def path_for(engine_path):
        return os.fspath(engine_path) + ".json"

    def save(self, engine_path):
        write_json_atomically(self.path_for(engine_path), asdict(self))

    @classmethod
    def load(cls, engine_path):
        """The sidecar of an engine, or None when there is none (an engine from elsewhere).

        Keys this version does not know (a newer builder.py wrote them) are ignored with a
        warning; a missing key or a value of the wrong type is a one-line TensorRTError.
        """
        path = cls.path_for(engine_path)
        if not os.path.exists(path):
            return None
        rebuild = "rebuild the engine with the builder.py of this version"
        try:
            with open(path, encoding="utf-8") as f:
                recorded = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TensorRTError(f"cannot read {path}: {e}; {rebuild}") from None
        if not isinstance(recorded, dict):
            raise TensorRTError(f"{path} is not a JSON object; {rebuild}")
        known = {f.name: f for f in dataclass_fields(cls)}
        unknown = sorted(set(recorded) - set(known))
        if unknown:
            warnings.warn(f"{path}: ignoring {', '.join(unknown)}, which this version does not "
                          f"know (written by a newer builder.py?)")
        missing = [name for name, f in known.items() if name not in recorded
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise TensorRTError(f"{path} lacks {', '.join(missing)}: it was written by an older "
                                f"builder.py; {rebuild}")
        for name, f in known.items():
            if name in recorded and not _has_type(recorded[name], f.type, name):
                raise TensorRTError(f"{path}: {name} is {recorded[name]!r}, not a "
                                    f"{getattr(f.type, '__name__', f.type)}; {rebuild}")
        return cls(**{name: value for name, value in recorded.items() if name in known})


def _has_type(value, kind, name):
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if not isinstance(value, kind):
        return False
    if name in ("batch_sizes", "sequence_lengths"):  # read as sizes by the runner
        return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    return True
