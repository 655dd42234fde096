"""Where an engine spends its time, layer by layer, and in which precision each layer runs.

TensorRT names each engine layer after the network layers it fused (builder.py names every layer
after its place in BERT: `layer.3_qkv`, `layer.3_qkv_to_context`, ...), so the times its profiler
reports can be summed per part of the model: the projections, the attention, GELU, LayerNorm.
The engine inspector lists each layer's tensor formats (int8, fp16, fp32) when the engine was
built with detailed profiling verbosity, which builder.py sets.
"""
import json
import re
from collections import defaultdict
from dataclasses import dataclass

from helpers import names


def _part(name):
    """The pattern of a layer part of helpers/names.py inside an engine layer's name."""
    assert name in names.LAYER_PARTS, name
    return "_" + name


# Checked in order: the first pattern found in a layer's name gives its part of the model (a layer
# TensorRT fused from several parts counts toward the first listed; Myelin graphs: see model_part).
# The builder's helper layers (Q/DQ, casts, reshapes) carry the name of the part they serve as a
# prefix, so they count toward it.
PARTS = (
    ("format conversions", "reformat"),
    ("attention (QKVToContext)", _part("qkv_to_context")),
    ("QKV projection", _part("qkv")),
    ("attention output projection", _part("attention_output")),
    ("LayerNorm (SkipLayerNorm)", _part("attention_layer_norm")),
    ("LayerNorm (SkipLayerNorm)", _part("output_layer_norm")),
    ("FFN up-projection + GELU", _part("intermediate")),
    ("FFN up-projection + GELU", _part("gelu")),
    ("QA head", names.QA_OUTPUTS),
    ("FFN down-projection", _part("output")),
    ("embeddings (EmbLayerNorm)", names.EMBEDDINGS),
    ("input transposes", "_transpose"),
)
PRECISIONS = (("int8", ("int8",)), ("fp16", ("fp16", "half")), ("fp32", ("fp32", "float")))


def model_part(layer_name):
    """The part of BERT a (possibly fused) engine layer belongs to, from its name.

    A Myelin graph is named after its first and last network layers, "{ForeignNode[a...b]}";
    when those belong to different parts, it is reported as the span "a part .. b part".
    """
    span = re.fullmatch(r"\{ForeignNode\[(.*)\.\.\.(.*)\]\}", layer_name)
    if span:
        first, last = (model_part(name) for name in span.groups())
        return first if first == last else f"{first} .. {last}"
    lower = layer_name.lower()
    for part, pattern in PARTS:
        if pattern in lower:
            return part
    return "other"


@dataclass
class LayerTime:
    name: str
    mean_ms: float


def time_by(layer_times, key):
    """{key(layer time): summed ms} over [LayerTime]."""
    totals = defaultdict(float)
    for t in layer_times:
        totals[key(t)] += t.mean_ms
    return dict(totals)


def summarize_parts(layer_times):
    """[(part, ms, share of the total)] from [LayerTime], largest first."""
    totals = time_by(layer_times, lambda t: model_part(t.name))
    whole = sum(totals.values()) or 1.0
    return sorted(((part, ms, ms / whole) for part, ms in totals.items()), key=lambda row: -row[1])


def precision_of(text):
    """int8, fp16 or fp32 from an inspector format string such as 'Row major linear FP16 format'."""
    lower = text.lower()
    for precision, words in PRECISIONS:
        if any(re.search(rf"\b{w}\b", lower) for w in words):
            return precision
    return None


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def engine_layer_name(name):
    """A layer's name without the " [profile N]" that marks its copy for another optimization profile."""
    return re.sub(r" \[profile \d+\]$", "", name)


def layer_precisions(layers):
    """{layer name: lowest precision among its outputs} from the inspector's layer descriptions.

    Layers without format details (an engine built without detailed verbosity) are left out.
    """
    result = {}
    order = [p for p, _ in PRECISIONS]
    for layer in layers:
        if not isinstance(layer, dict):
            continue  # names only: the engine was built without detailed profiling verbosity
        found = {precision_of(s) for s in _strings(layer.get("Outputs", []))} - {None}
        if found:
            result[engine_layer_name(layer.get("Name", "?"))] = min(found, key=order.index)
    return result


def described_layers(information):
    """The layer descriptions in one inspector JSON answer: a whole engine's, one layer's, or none."""
    try:
        parsed = json.loads(information)
    except (TypeError, ValueError):
        return []
    if isinstance(parsed, dict) and "Layers" in parsed:
        return parsed["Layers"]
    return [parsed] if isinstance(parsed, (dict, str)) else []


def make_profiler(trt):
    """A TensorRT profiler that adds up each layer's time over several runs."""

    class LayerTimer(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.total_ms = defaultdict(float)
            self.runs = defaultdict(int)

        def report_layer_time(self, layer_name, ms):
            self.total_ms[layer_name] += ms
            self.runs[layer_name] += 1

        def layer_times(self):
            return [LayerTime(name, self.total_ms[name] / self.runs[name]) for name in self.total_ms]

    return LayerTimer()


def inspected_precisions(trt, engine, context):
    """{layer name: precision} from the engine inspector, with shapes and formats from `context`.

    TensorRT 8.6 described an engine of three profiles without any formats when `context` ran the
    second profile (it logged "invalid encoded reference to a slot"), so where the whole engine's
    description has no formats, each layer is asked for alone and those it cannot describe are
    left out.
    """
    inspector = engine.create_engine_inspector()
    if hasattr(inspector, "execution_context"):
        inspector.execution_context = context
    else:  # TensorRT 8.x before 8.6 named it `context`
        inspector.context = context
    json_format = trt.LayerInformationFormat.JSON
    precisions = layer_precisions(described_layers(inspector.get_engine_information(json_format)))
    if precisions:
        return precisions
    return layer_precisions([layer for index in range(engine.num_layers)
                             for layer in described_layers(inspector.get_layer_information(index, json_format))])
