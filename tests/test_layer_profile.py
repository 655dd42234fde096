"""helpers/layer_profile.py and the builder's tactic-source switch: the CPU side of finding where
an engine spends its time (the GPU side runs in perf.py --layer-profile)."""
import json
import types

import pytest

import builder
from helpers.layer_profile import (LayerTime, described_layers, inspected_precisions, layer_precisions, model_part,
                                   precision_of, summarize_parts)


@pytest.mark.parametrize("name,part", [
    ("layer.3_qkv_to_context", "attention (QKVToContext)"),
    ("layer.3_qkv + layer.3_qkv_add_bias", "QKV projection"),
    ("layer.11_attention_output", "attention output projection"),
    ("layer.11_attention_layer_norm", "LayerNorm (SkipLayerNorm)"),
    ("layer.0_output_layer_norm", "LayerNorm (SkipLayerNorm)"),
    ("{ForeignNode[layer.0_intermediate_kernel...layer.0_gelu]}", "FFN up-projection + GELU"),
    ("{ForeignNode[layer.0_intermediate_flatten...layer.0_output_unflatten]}",
     "FFN up-projection + GELU .. FFN down-projection"),
    ("{ForeignNode[layer.0_output...qa_outputs]}", "FFN down-projection .. QA head"),
    ("layer.0_gelu", "FFN up-projection + GELU"),
    ("layer.0_output + layer.0_output_unflatten", "FFN down-projection"),
    ("qa_outputs + qa_outputs_transpose", "QA head"),
    ("embeddings", "embeddings (EmbLayerNorm)"),
    ("Reformatting CopyNode for Input Tensor 0 to layer.1_qkv_to_context", "format conversions"),
    ("Reformatting CopyNode for Output Tensor 0", "format conversions"),
    ("input_ids_transpose", "input transposes"),
    ("42", "other"),
])
def test_layers_are_attributed_to_their_part_of_bert(name, part):
    assert model_part(name) == part


def test_parts_add_up_and_come_largest_first():
    times = [LayerTime("layer.0_qkv", 1.0), LayerTime("layer.1_qkv", 1.0), LayerTime("layer.0_qkv_to_context", 3.0),
             LayerTime("embeddings", 0.6), LayerTime("mystery", 0.4)]
    parts = summarize_parts(times)
    assert [p[0] for p in parts] == ["attention (QKVToContext)", "QKV projection", "embeddings (EmbLayerNorm)", "other"]
    assert [p[1] for p in parts] == pytest.approx([3.0, 2.0, 0.6, 0.4])
    assert [p[2] for p in parts] == pytest.approx([0.5, 2 / 6, 0.1, 0.4 / 6])


@pytest.mark.parametrize("text,precision", [
    ("Row major linear FP16 format (kLINEAR)", "fp16"),
    ("Channel major FP32 format", "fp32"),
    ("Thirty-two wide channel vectorized row major Int8 format", "int8"),
    ("Row major linear Int32 format", None),
    ("Two wide channel vectorized row major FP16 format", "fp16"),
    ("half", "fp16"),
])
def test_precision_is_read_from_format_strings(text, precision):
    assert precision_of(text) == precision


def test_layer_precisions_from_inspector_json():
    info = {"Layers": [
        {"Name": "layer.0_qkv", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "x", "Format/Datatype": "Row major linear FP16 format"}],
         "Outputs": [{"Name": "y", "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}]},
        {"Name": "layer.0_qkv_to_context", "LayerType": "PluginV2",
         "Outputs": [{"Name": "z", "Format/Datatype": "Row major linear FP16 format"}]},
        {"Name": "embeddings", "Outputs": [{"Name": "e", "Format/Datatype": "Row major linear FP32 format"},
                                           {"Name": "m", "Format/Datatype": "Row major linear Int32 format"}]},
        {"Name": "no formats", "Outputs": []}],
        "Bindings": ["input_ids"]}
    assert layer_precisions(described_layers(json.dumps(info))) == {
        "layer.0_qkv": "int8", "layer.0_qkv_to_context": "fp16", "embeddings": "fp32"}
    # An engine built without detailed verbosity lists names only: nothing to report.
    assert layer_precisions(described_layers(json.dumps({"Layers": ["layer.0_qkv", "embeddings"]}))) == {}
    # A layer's copy for another optimization profile is reported under the layer's own name.
    copy = {"Name": "layer.0_qkv [profile 2]", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]}
    assert layer_precisions([copy]) == {"layer.0_qkv": "fp16"}


@pytest.mark.parametrize("answer,layers", [
    ('{"Layers": [{"Name": "a"}], "Bindings": []}', [{"Name": "a"}]),
    ('{"Name": "a", "Outputs": []}', [{"Name": "a", "Outputs": []}]),
    ('"a"', ["a"]),
    ("", []),
    ("{not json", []),
])
def test_described_layers_reads_whole_engine_and_single_layer_answers(answer, layers):
    assert described_layers(answer) == layers


def test_inspector_falls_back_to_one_layer_at_a_time():
    """TensorRT 8.6 described a three-profile engine without formats for a context on its second
    profile; the layers asked for one by one still give theirs (the one it cannot describe is left out)."""
    def described(name, fmt):
        return {"Name": name, "Outputs": [{"Format/Datatype": f"Row major linear {fmt} format"}]}

    per_layer = [json.dumps(described("layer.0_qkv [profile 1]", "Int8")), "",
                 json.dumps(described("layer.0_qkv_to_context [profile 1]", "FP16"))]
    for whole_engine in ("", json.dumps({"Layers": ["layer.0_qkv", "layer.0_qkv_to_context"]})):
        inspector = types.SimpleNamespace(execution_context=None,
                                          get_engine_information=lambda fmt, answer=whole_engine: answer,
                                          get_layer_information=lambda index, fmt: per_layer[index])
        engine = types.SimpleNamespace(num_layers=3, create_engine_inspector=lambda: inspector)
        trt = types.SimpleNamespace(LayerInformationFormat=types.SimpleNamespace(JSON="json"))
        context = object()
        precisions = inspected_precisions(trt, engine, context)
        assert inspector.execution_context is context
        assert precisions == {"layer.0_qkv": "int8", "layer.0_qkv_to_context": "fp16"}


def fake_tensorrt(default_sources):
    sources = types.SimpleNamespace(CUBLAS=0, CUBLAS_LT=1, CUDNN=2, EDGE_MASK_CONVOLUTIONS=3)

    class Config:
        def __init__(self):
            self.sources = default_sources

        def get_tactic_sources(self):
            return self.sources

        def set_tactic_sources(self, value):
            self.sources = value

    return types.SimpleNamespace(TacticSource=sources, __version__="8.6.1"), Config()


@pytest.mark.parametrize("allowed,expected", [
    ([], 0b1000),                      # TensorRT's own kernels only (edge-mask convolutions kept)
    (["CUBLAS_LT"], 0b1010),
    (["CUBLAS", "CUBLAS_LT"], 0b1011),
])
def test_tactic_sources_switch_only_the_libraries(allowed, expected):
    trt, config = fake_tensorrt(0b1111)
    builder.set_tactic_sources(trt, config, allowed)
    assert config.sources == expected
    trt, config = fake_tensorrt(0b1000)  # TensorRT 10's default has no cuBLAS/cuDNN: adding works too
    builder.set_tactic_sources(trt, config, allowed)
    assert config.sources == expected


def test_tactic_sources_flag():
    assert builder.parse_args(["-m", "m", "-o", "o"]).tactic_sources == []
    assert builder.parse_args(["-m", "m", "-o", "o", "--tactic-sources", "cublas_lt, cublas"]).tactic_sources == \
        ["CUBLAS_LT", "CUBLAS"]
    with pytest.raises(SystemExit):
        builder.parse_args(["-m", "m", "-o", "o", "--tactic-sources", "cutlass"])


def test_a_missing_tactic_source_is_a_one_line_error():
    trt, config = fake_tensorrt(0)
    del trt.TacticSource.CUDNN  # TensorRT 11 dropped cuDNN
    builder.set_tactic_sources(trt, config, [])
    with pytest.raises(builder.TensorRTError, match="has no cudnn tactics"):
        builder.set_tactic_sources(trt, config, ["CUDNN"])


def test_perf_layer_report_joins_times_and_precisions():
    """perf.py's layer report on a stand-in engine whose profiler reports fixed layer times."""
    import perf

    class Profiler:  # TensorRT's IProfiler base
        def __init__(self):
            pass

    class Context:
        profiler = None

    class Binding:
        context = Context()

        def execute_async(self):
            for name, ms in (("layer.0_qkv", 0.2), ("layer.0_qkv_to_context", 0.5), ("embeddings", 0.1)):
                self.context.profiler.report_layer_time(name, ms)

    layers = [{"Name": "layer.0_qkv", "Outputs": [{"Format/Datatype": "Row major linear Int8 format"}]},
              {"Name": "layer.0_qkv_to_context", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]}]
    logger = types.SimpleNamespace(min_severity="WARNING")
    severity_while_inspected = []

    def engine_information(fmt):
        severity_while_inspected.append(logger.min_severity)
        return json.dumps({"Layers": layers})

    inspector = types.SimpleNamespace(execution_context=None, get_engine_information=engine_information)
    runner = types.SimpleNamespace(
        trt=types.SimpleNamespace(IProfiler=Profiler, LayerInformationFormat=types.SimpleNamespace(JSON="json"),
                                  Logger=types.SimpleNamespace(INTERNAL_ERROR="INTERNAL_ERROR")),
        engine=types.SimpleNamespace(create_engine_inspector=lambda: inspector), logger=logger,
        stream=types.SimpleNamespace(synchronize=lambda: None), binding=lambda batch, sequence: Binding())
    report = perf.layer_report(runner, 8, 128, runs=4)
    assert inspector.execution_context is Binding.context
    # the inspector's errors on later profiles are kept quiet while it runs, and only then
    assert severity_while_inspected == ["INTERNAL_ERROR"] and logger.min_severity == "WARNING"
    assert [(p["part"], p["ms"]) for p in report["parts"]] == pytest.approx(
        [("attention (QKVToContext)", 0.5), ("QKV projection", 0.2), ("embeddings (EmbLayerNorm)", 0.1)])
    assert report["ms_by_precision"] == pytest.approx({"int8": 0.2, "fp16": 0.5, "unknown": 0.1})
    assert {layer["name"]: layer["precision"] for layer in report["layers"]} == {
        "layer.0_qkv": "int8", "layer.0_qkv_to_context": "fp16", "embeddings": None}
