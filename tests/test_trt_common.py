import enum
import types

from helpers.trt_common import build_failure, make_build_logger

# What TensorRT 8.6 logged on the H200 when BERT-Large fp32 (batch 1..128, sequence 384) was built
# with the default 2048 MiB workspace, and the builder then returned None.
SCRATCH_ERRORS = [
    "4: Internal error: plugin node layer.0_qkv_to_context [profile 1] requires 2415919104 bytes of scratch space, "
    "but only 2147483648 is available. Try increasing the workspace size with IBuilderConfig::setMemoryPoolLimit().\n",
    "4: [pluginV2Builder.cpp::makeRunner::465] Error Code 4: Internal Error (Internal error: plugin node "
    "layer.0_qkv_to_context [profile 1] requires 2415919104 bytes of scratch space, but only 2147483648 is "
    "available. Try increasing the workspace size with IBuilderConfig::setMemoryPoolLimit().\n)",
]


def test_a_plugin_short_of_scratch_names_the_layer_the_need_and_the_flag():
    assert build_failure(SCRATCH_ERRORS, 2048) == (
        "layer layer.0_qkv_to_context needs 2304 MiB of workspace, -w/--workspace-size gives 2048; rerun with -w 4096")


def test_a_need_of_a_whole_power_of_two_is_suggested_as_is():
    message = "plugin node x requires 1048576 bytes of scratch space, but only 1000 is available."
    assert build_failure([message], 0).endswith("needs 1 MiB of workspace, -w/--workspace-size gives 0; rerun with -w 1")


def test_other_failures_quote_the_first_error_in_one_line():
    errors = ["2: [graph.cpp::f] Error Code 2: no implementation for layer x\nmore detail", "a later error"]
    message = build_failure(errors, 2048)
    assert message == ("TensorRT could not build the engine: 2: [graph.cpp::f] Error Code 2: no implementation "
                       "for layer x; rerun with --verbose to see more")
    assert build_failure([], 2048) == "TensorRT could not build the engine; rerun with --verbose to see why"


class Severity(enum.IntEnum):
    """TensorRT's ILogger.Severity: same names, same order and values as in 8.6."""
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class FakeILogger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = Severity

    def __init__(self):
        pass


def fake_tensorrt(registered):
    def init_libnvinfer_plugins(logger, namespace):
        registered.append(logger)
        logger.log(Severity.VERBOSE, "Registered plugin creator - ::CustomEmbLayerNormPluginDynamic version 1")
        return True
    return types.SimpleNamespace(ILogger=FakeILogger, init_libnvinfer_plugins=init_libnvinfer_plugins)


def test_logger_prints_warnings_and_errors_and_keeps_the_errors(capsys):
    registered = []
    logger = make_build_logger(fake_tensorrt(registered), verbose=False)
    assert registered == [logger]
    for severity in Severity:
        logger.log(severity, f"a {severity.name} message")
    printed = capsys.readouterr().err.splitlines()
    assert printed == ["[TRT] [F] a INTERNAL_ERROR message", "[TRT] [E] a ERROR message",
                       "[TRT] [W] a WARNING message"]
    assert logger.errors == ["a INTERNAL_ERROR message", "a ERROR message"]


def test_verbose_logger_prints_everything(capsys):
    logger = make_build_logger(fake_tensorrt([]), verbose=True)
    logger.log(Severity.INFO, "built")
    printed = capsys.readouterr().err.splitlines()
    assert printed == ["[TRT] [V] Registered plugin creator - ::CustomEmbLayerNormPluginDynamic version 1",
                       "[TRT] [I] built"]
    assert logger.errors == []
