"""A recording stand-in for what TensorRT's libraries create, checked against a version's REAL
Python bindings (imported over stub libraries: ../shared/trt-api/README.md).

The real module `tensorrt_bindings` gives every class, enum, property and pybind11 signature of
its version, but its factories return NULL without the libraries. `standin_module(real)` is a
module to put in sys.modules["tensorrt"]: enums, Weights, PluginField(Collection), loggers, the
calibrator, logger and progress-monitor bases are the real ones; trt.Builder(...) and
trt.get_plugin_registry() give Recorders. A Recorder stands for one object of a real class: every
attribute read must exist on that class, every call must bind to one of its pybind11 overloads
(arity, keywords, ITensor/enum/number argument kinds), and every assignment needs a property with
a setter taking that kind of value. What breaks a rule is kept in `violations` and raises what
pybind11 would (AttributeError, TypeError), so builder.py sees what it would see.

Run as a script in its own interpreter (one process imports one tensorrt_bindings):
    python3 trt_standin.py BINDINGS_DIR STUBS_DIR WORK_DIR
runs builder.main() for every mode of MODES over a small random model and prints a JSON report.
"""
import contextlib
import ctypes
import dataclasses
import io
import json
import os
import re
import sys
import types

LIBRARIES = ("nvinfer", "nvinfer_plugin", "nvonnxparser", "nvparsers")
BERT_PLUGINS = {"CustomEmbLayerNormPluginDynamic": ("1", "2"), "CustomQKVToContextPluginDynamic": ("1", "2"),
                "CustomSkipLayerNormPluginDynamic": ("1", "2"), "CustomGeluPluginDynamic": ("1",),
                "CustomFCPluginDynamic": ("1",)}

violations = []
reached = []
calls = []  # (class, attribute, arguments summarized): what the builder asked for, in order


class Violation(Exception):
    pass


def load_real_bindings(bindings_dir, stubs_dir):
    for soname in sorted(os.listdir(stubs_dir)):
        ctypes.CDLL(os.path.join(stubs_dir, soname), mode=ctypes.RTLD_GLOBAL)
    sys.path.insert(0, bindings_dir)
    import tensorrt_bindings
    return tensorrt_bindings


# --- pybind11 signatures -------------------------------------------------------------------------

def _split(text):
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


SIGNATURE = re.compile(r"^(?:\d+\.\s+)?(\w+)?\((.*)\)\s*->\s*(.+)$")


def overloads(doc):
    """[(params [(name, type, has default)], return type)] of a pybind11 docstring."""
    found = []
    for line in (doc or "").splitlines():
        m = SIGNATURE.match(line.strip())
        if not m or "*args" in m.group(2):
            continue
        params = []
        for part in _split(m.group(2)):
            name, _, rest = part.partition(":")
            type_, _, default = rest.partition(" = ")
            params.append((name.strip(), type_.strip(), bool(default)))
        found.append((params, m.group(3).strip()))
    return found


def _bare(type_):
    return type_.replace("tensorrt_bindings.tensorrt.", "").replace("tensorrt_bindings.", "") \
        .replace("nvinfer1::", "").strip()


class Kinds:
    """Whether a Python value binds to a pybind11 parameter type of the real module."""

    def __init__(self, real):
        self.real = real

    def real_class(self, name):
        return getattr(self.real, name, None) if name.isidentifier() else None

    def binds(self, value, type_):
        t = _bare(type_)
        for wrapper in ("typing.Optional[", "Optional["):
            if t.startswith(wrapper):
                return value is None or self.binds(value, t[len(wrapper):-1])
        if t.endswith(" | None"):
            return value is None or self.binds(value, t[:-7])
        for wrapper in ("List[", "list[", "collections.abc.Sequence[", "typing.Sequence[", "Sequence["):
            if t.startswith(wrapper):
                inner = t[len(wrapper):-1]
                return isinstance(value, (list, tuple)) and all(self.binds(v, inner) for v in value)
        if t in ("int", "typing.SupportsInt"):
            return isinstance(value, int) or type(value).__module__ == "numpy" and hasattr(value, "__index__")
        if t in ("float", "typing.SupportsFloat"):
            return isinstance(value, (int, float)) or type(value).__module__ == "numpy"
        if t == "bool":
            return isinstance(value, bool) or type(value).__name__ == "bool_"
        if t == "str":
            return isinstance(value, str)
        if t in ("bytes", "buffer", "typing_extensions.Buffer", "collections.abc.Buffer"):
            return isinstance(value, (bytes, bytearray, memoryview))
        if t in ("Dims", "Dims2", "Dims3", "Dims4", "DimsHW", "Permutation"):
            return isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value) or \
                isinstance(value, getattr(self.real, t))
        if t == "Weights":
            return isinstance(value, self.real.Weights) or type(value).__name__ == "ndarray"
        if t == "PluginFieldCollection_":
            # PluginFieldCollection converts implicitly (pybind11 implicitly_convertible)
            return isinstance(value, (self.real.PluginFieldCollection_, self.real.PluginFieldCollection))
        cls = self.real_class(t)
        if cls is None:
            return True  # object, numpy.ndarray, callables: no kind to check
        return isinstance(value, cls)


# --- recorders -----------------------------------------------------------------------------------

class Recorder:
    """One object of real class `cls`; isinstance(recorder, cls) holds, as for the real object."""

    def __init__(self, world, cls, **state):
        object.__setattr__(self, "_world", world)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_state", state)

    @property
    def __class__(self):
        return object.__getattribute__(self, "_cls")

    def __repr__(self):
        return f"<stand-in {self._cls.__name__} {self._values.get('name', '')}>"

    def __bytes__(self):
        if self._cls.__name__ != "IHostMemory":
            raise TypeError(f"bytes() of a {self._cls.__name__}")
        return b"stand-in serialized bytes"

    def __getattr__(self, name):
        cls = self._cls
        if not hasattr(cls, name):
            raise AttributeError(f"'{cls.__name__}' object has no attribute '{name}'")
        member = _static(cls, name)
        if isinstance(member, property):
            if name in self._values:
                return self._values[name]
            return self._world.value_of(self, name, _property_type(member))
        return lambda *args, **kwargs: self._world.call(self, name, getattr(cls, name), args, kwargs)

    def __setattr__(self, name, value):
        cls = self._cls
        member = _static(cls, name) if hasattr(cls, name) else None
        if not isinstance(member, property) or member.fset is None:
            self._world.violate(f"{cls.__name__}.{name} = {value!r}: "
                                + ("no such property" if member is None else "read-only"))
            raise AttributeError(f"can't set attribute '{name}' of '{cls.__name__}'")
        setter = overloads(member.fset.__doc__)
        if setter and not any(len(p) == 2 and self._world.kinds.binds(value, p[1][1]) for p, _ in setter):
            self._world.violate(f"{cls.__name__}.{name} = {value!r}: the setter takes {setter[0][0][1][1]}")
            raise TypeError(f"incompatible value for {cls.__name__}.{name}")
        self._values[name] = value
        calls.append((cls.__name__, name + " =", _summary(value)))


def _summary(value):
    """A comparable description of an argument: a stand-in by its class, arrays by type and content."""
    if isinstance(value, Recorder):
        return value._cls.__name__
    if isinstance(value, (list, tuple)):
        return tuple(_summary(v) for v in value)
    kind = type(value).__name__
    if kind in ("Weights", "PluginField", "PluginFieldCollection", "ndarray"):
        import hashlib
        import numpy as np
        if kind == "PluginFieldCollection":
            return tuple(_summary(f) for f in value)
        if kind == "PluginField":
            return ("PluginField", value.name, str(value.type), value.size)  # its data cannot be read back
        array = value if kind == "ndarray" else value.numpy() if value.size else np.zeros(0)
        return (kind, str(array.dtype), array.shape if kind == "ndarray" else value.size,
                hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:12])
    if callable(value) or kind.endswith("Logger") or "Calibrator" in kind or "Monitor" in kind:
        return kind
    return repr(value)


def _static(cls, name):
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def _property_type(member):
    sigs = overloads(member.fget.__doc__) if member.fget else []
    return sigs[0][1] if sigs else "object"


class World:
    """The stand-in's state: the real module, the recorded network, what the builder reached."""

    def __init__(self, real, creators):
        self.real = real
        self.kinds = Kinds(real)
        self.creators = creators  # {(name, version): creator class name}
        self.layers = []
        self.calibrator = None

    def violate(self, text):
        violations.append(text)

    def bind(self, owner, name, function, args, kwargs):
        """The return type of the first overload of `function` that binds, or a violation."""
        sigs = overloads(function.__doc__)
        if not sigs:
            return "object"
        for params, returns in sigs:
            if params and (params[0][0] == "self" or params[0][0] == "arg0" and owner is not None):
                params = params[1:]
            if len(args) > len(params):
                continue
            given = dict(zip([p[0] for p in params], args))
            if any(k in given or k not in [p[0] for p in params] for k in kwargs):
                continue
            given.update(kwargs)
            if any(p[0] not in given and not p[2] for p in params):
                continue
            types_ = {p[0]: p[1] for p in params}
            if all(self.kinds.binds(v, types_[k]) for k, v in given.items()):
                return returns
        where = f"{owner._cls.__name__}." if owner is not None else ""
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        self.violate(f"{where}{name}({shown}) binds to none of: " + " | ".join(
            "(" + ", ".join(f"{p[0]}: {_bare(p[1])}" for p in params) + ")" for params, _ in sigs))
        raise TypeError(f"{name}(): incompatible function arguments")

    def make(self, type_, **state):
        t = _bare(type_)
        if t in ("None", ""):
            return None
        if t in ("int", "typing.SupportsInt"):
            return 0
        if t == "bool":
            return True
        if t in ("float", "typing.SupportsFloat"):
            return 0.0
        if t == "str":
            return ""
        cls = getattr(self.real, t, None) if t.isidentifier() else None
        if cls is None:
            return None
        if isinstance(cls, type) and issubclass(cls, __import__("enum").Enum) or hasattr(cls, "__members__"):
            return list(cls.__members__.values())[0]
        return Recorder(self, cls, **state)

    def value_of(self, obj, name, type_):
        if obj._cls.__name__ == "ITensor" and name == "name":
            return obj._state.get("auto_name", "")
        if name == "num_layers":
            return len(self.layers)
        return self.make(type_)

    def call(self, obj, name, function, args, kwargs):
        returns = self.bind(obj, name, function, args, kwargs)
        calls.append((obj._cls.__name__, name, _summary(list(args)), _summary(sorted(kwargs.items()))))
        cls_name = obj._cls.__name__
        if cls_name == "INetworkDefinition" and name.startswith("add_") or name in ("get_output",):
            if name == "get_output":
                outputs = obj._state.setdefault("outputs", {})
                index = args[0] if args else kwargs["index"]
                if index not in outputs:
                    outputs[index] = self.make(returns, auto_name=f"{obj._values.get('name', '?')}:{index}")
                return outputs[index]
            if name in ("add_input",):
                tensor = self.make(returns, auto_name=args[0] if args else kwargs["name"])
                tensor._values["name"] = tensor._state["auto_name"]
                return tensor
            layer = self.make(returns)
            if isinstance(layer, Recorder):
                self.layers.append(layer)
            return layer
        if cls_name == "INetworkDefinition" and name == "get_layer":
            return self.layers[args[0]]
        if cls_name == "IPluginRegistry" and name in ("get_plugin_creator", "get_creator"):
            kind = self.creators.get((args[0], args[1]))
            return None if kind is None else Recorder(self, getattr(self.real, kind), name=args[0], version=args[1])
        if cls_name == "IPluginRegistry" and name in ("plugin_creator_list", "all_creators"):
            return [Recorder(self, getattr(self.real, k)) for k in self.creators.values()]
        if cls_name == "IBuilderConfig" and name == "int8_calibrator":
            return None
        if cls_name == "Builder" and name == "build_serialized_network":
            reached.append(True)
            self.calibrate(args[1] if len(args) > 1 else kwargs["config"])
        return self.make(returns)

    def calibrate(self, build_config):
        """What TensorRT's calibration leaves: the calibrator's cache, one scale per named tensor."""
        calibrator = build_config._values.get("int8_calibrator")
        if calibrator is None or calibrator.read_calibration_cache() is not None:
            return
        named = [t._values["name"] for layer in self.layers for t in layer._state.get("outputs", {}).values()
                 if "name" in t._values]
        lines = ["TRT-stand-in-Calibration"] + [f"{n}: 3c010a14" for n in named]
        calibrator.write_calibration_cache("\n".join(lines).encode() + b"\n")


def standin_module(real, creators):
    """sys.modules["tensorrt"] for builder.py: the real module, but for what needs the libraries."""
    world = World(real, creators)
    module = types.ModuleType("tensorrt")
    for name in dir(real):
        if not name.startswith("__"):
            setattr(module, name, getattr(real, name))
    module.__version__ = real.__version__

    def builder(*args, **kwargs):
        world.bind(None, "Builder", real.Builder.__init__, args, kwargs)
        world.layers = []
        return Recorder(world, real.Builder)

    module.Builder = builder
    module.get_plugin_registry = lambda: Recorder(world, real.IPluginRegistry)
    return module, world


def creators_for(real):
    """The registry of the stand-in: V2 creators of the BERT plugins, V3 ones on 11.x (which has no
    GELU plugin). Which plugins a real libnvinfer_plugin registers needs that library."""
    major = int(real.__version__.split(".")[0])
    kind = "IPluginCreatorV3One" if major >= 11 else "IPluginCreator"
    return {(name, v): kind for name, versions in BERT_PLUGINS.items() for v in versions
            if not (major >= 11 and name == "CustomGeluPluginDynamic")}


# --- the modes -----------------------------------------------------------------------------------

MODES = {
    "fp32": [],
    "-f": ["-f"],
    "-f -t": ["-f", "-t"],
    "-f --varseqlen": ["-f", "--varseqlen"],
    "-f --attention layers": ["-f", "--attention", "layers"],
    "-f --gelu tanh": ["-f", "--gelu", "tanh"],
    "-f -g": ["-f", "-g"],
    "--strongly-typed": ["--strongly-typed"],
    "-f --strongly-typed": ["-f", "--strongly-typed"],
    "-i": ["-i", "DATA"],
    "-i --varseqlen": ["-i", "--varseqlen", "DATA"],
    "-i --fp16-projections qkv": ["-i", "--fp16-projections", "qkv", "DATA"],
    "-i -iln -imh": ["-i", "-iln", "-imh", "DATA"],
    "-i --quantization implicit": ["-i", "--quantization", "implicit", "DATA"],
    "-i --quantization explicit": ["-i", "--quantization", "explicit", "DATA"],
    "-i --quantization explicit -t": ["-i", "--quantization", "explicit", "-t", "SCALES"],
    "-i --strongly-typed": ["-i", "--strongly-typed", "SCALES"],
    "-i --quantization explicit, another model's scales": ["-i", "--quantization", "explicit", "OTHER"],
}


def make_inputs(work):
    """A random 2-layer model with heads of 64 and a hidden size of 768 (every int8 plugin allows it),
    a 100-token vocabulary, a two-question SQuAD file, and a scales file of the model."""
    import numpy as np

    from helpers.weights import BertConfig, random_weights, save_weights
    config = BertConfig(num_hidden_layers=2, hidden_size=768, num_attention_heads=12, intermediate_size=1024,
                        vocab_size=100, max_position_embeddings=128)
    model = os.path.join(work, "model.npz")
    save_weights(model, config, random_weights(config, seed=1), np.float32)
    vocab = os.path.join(work, "vocab.txt")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "what", "is", "of", "denver", "broncos"]
    words += [f"w{i}" for i in range(100 - len(words))]
    with open(vocab, "w") as f:
        f.write("\n".join(words) + "\n")
    squad = os.path.join(work, "train.json")
    context = "the denver broncos is the a of the denver broncos " * 4
    with open(squad, "w") as f:
        json.dump({"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
            {"id": str(i), "question": "what is the broncos", "answers": [{"text": "denver", "answer_start": 4}]}
            for i in range(2)]}]}]}, f)
    from helpers.quantization import calibrate_scales, save_scales
    other = dataclasses.replace(config, num_hidden_layers=1, hidden_size=64, num_attention_heads=1,
                                intermediate_size=64)
    ids = np.full((1, 8), 5, np.int32)
    save_scales(os.path.join(work, "other-model.scales.json"),
                calibrate_scales(other, random_weights(other, seed=2), (ids, ids * 0, ids * 0 + 1), progress=False))
    return config, model, vocab, squad


def run_mode(world, flags, model, vocab, squad, scales, work, label):
    import builder
    from helpers.errors import run_main
    out = os.path.join(work, re.sub(r"\W+", "_", label).strip("_") + ".engine")
    argv = ["-m", model, "-o", out, "-s", "64", "-b", "2"]
    for flag in flags:
        if flag == "DATA":
            argv += ["-j", squad, "-v", vocab, "-n", "2", "--no-progress", "--scales", scales]
        elif flag == "SCALES":
            argv += ["--scales", scales]
        elif flag == "OTHER":
            argv += ["--scales", os.path.join(work, "other-model.scales.json")]
        else:
            argv.append(flag)
    del violations[:], reached[:]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            run_main("builder.py", builder.main, argv)  # as the command line ends: exit status and one line
    except SystemExit as status:
        rc = status.code
    except BaseException as e:  # a traceback: the mode failed in a way builder.py did not name
        import traceback
        rc, err = "exception", io.StringIO(err.getvalue() + traceback.format_exc())
        del e
    return {"argv": flags, "rc": rc, "reached": bool(reached), "violations": list(violations),
            "stderr": err.getvalue(), "engine": os.path.exists(out), "record": _record(out)}


def _record(engine):
    try:
        with open(engine + ".json") as f:
            return json.load(f)
    except OSError:
        return None


def main(bindings_dir, stubs_dir, work):
    real = load_real_bindings(bindings_dir, stubs_dir)
    module, world = standin_module(real, creators_for(real))
    sys.modules["tensorrt"] = module
    # The calibrator's CUDA context (pycuda.autoinit) has no GPU here; the stand-in build never asks
    # it for a batch, so empty modules do.
    sys.modules["pycuda"] = types.ModuleType("pycuda")
    sys.modules["pycuda.autoinit"] = types.ModuleType("pycuda.autoinit")
    sys.modules["pycuda.driver"] = types.ModuleType("pycuda.driver")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config, model, vocab, squad = make_inputs(work)
    scales = os.path.join(work, "model.scales.json")
    report = {"version": real.__version__, "modes": {}}
    # The explicit mode calibrates (writing the scales file) before the modes that reuse it.
    order = sorted(MODES, key=lambda m: "SCALES" in MODES[m])
    for label in order:
        report["modes"][label] = run_mode(world, MODES[label], model, vocab, squad, scales, work, label)
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
