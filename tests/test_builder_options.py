"""builder.py's options: one frozen value from the command line, checked in main() before TensorRT
is imported, with one spelling from the command line to ENGINE.json."""
import dataclasses
import subprocess
import sys

import pytest

import builder
from conftest import REPO
from helpers.build_options import BuildOptions, OptionsError, calibration_file_warnings, check_values, warnings


def options(*argv):
    return BuildOptions.from_namespace(builder.parse_args(["-m", "m", "-o", "e", *argv]))


def run_builder(*args):
    return subprocess.run([sys.executable, str(REPO / "builder.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


def test_options_are_one_frozen_value_with_the_flags_spelling():
    o = options("-b", "8", "-b", "1", "-s", "384", "-i", "-iln", "--no-gelu-plugin", "--fp16-projections", "qkv")
    assert (o.batch_size, o.sequence_length, o.int8_skipln, o.gelu_plugin, o.fp16_projections) == \
        ((8, 1), (384,), True, False, ("qkv",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.int8 = False
    record = o.with_version_defaults("10.11.0.33").engine_record()
    assert set(record) <= {f.name for f in dataclasses.fields(BuildOptions)}  # ENGINE.json keys are option names
    assert (record["quantization"], record["strongly_typed"], record["gelu_plugin"]) == ("implicit", False, False)


@pytest.mark.parametrize("version,strongly_typed,quantization,expected", [
    ("8.6.1", False, None, (False, "implicit")),
    ("10.16.1.11", False, None, (False, "implicit")),
    ("10.16.1.11", True, None, (True, "explicit")),
    ("11.4.0.106", False, None, (True, "explicit")),
    ("11.4.0.106", False, "implicit", (True, "implicit")),  # refused by check_for_tensorrt
])
def test_typing_and_quantization_defaults_follow_the_tensorrt_version(version, strongly_typed, quantization,
                                                                       expected):
    o = dataclasses.replace(options("-i"), strongly_typed=strongly_typed, quantization=quantization)
    decided = o.with_version_defaults(version)
    assert (decided.strongly_typed, decided.quantization) == expected


@pytest.mark.parametrize("flags,message", [
    (["-w", "0"], "-w/--workspace-size 0: must be a positive number of MiB"),
    (["-n", "0"], "-n/--calib-num 0: must be a positive number of windows"),
    (["-b", "0"], "-b/--batch-size 0: must be a positive number"),
    (["-s", "0"], "-s/--sequence-length 0: must be a positive number"),
    (["-b", "8", "-b", "-1"], "-b/--batch-size -1"),
    (["--doc-stride", "0"], "--doc-stride 0"),
    (["--quantization", "explicit"], "it needs -i/--int8"),
    (["-i", "--strongly-typed", "--quantization", "implicit"], "use --quantization explicit"),
])
def test_bad_numbers_and_combinations_are_refused_before_anything_is_read(flags, message, tmp_path):
    """Checked in main() before the checkpoint is read or TensorRT imported: the checkpoint here
    does not exist, and the error is still the option's."""
    with pytest.raises(OptionsError, match=message.replace("(", r"\(")):
        check_values(options(*flags))
    result = run_builder("-m", tmp_path / "missing", "-o", tmp_path / "e.engine", *flags)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("builder.py: error: ") and message in lines[0], result.stderr
    assert not list(tmp_path.iterdir())


def test_flags_without_effect_get_a_warning():
    assert warnings(options()) == []
    found = warnings(options("-j", "train.json", "-n", "5", "--export-fp16"))
    assert [line.split(" ")[0] for line in found] == ["-j/--squad-json", "-n/--calib-num", "--export-fp16"]
    assert any(line.startswith("-t/--strict") for line in warnings(options("-f", "-t", "--strongly-typed")))
    assert any(line.startswith("--conv-projections") for line in warnings(options("-i", "--conv-projections")))


@pytest.mark.parametrize("flags,version,expected", [
    (["-i", "--calib-cache", "c.calib"], "8.6.1", []),                       # implicit: its cache
    (["-i", "--scales", "s.json"], "11.4.0.106", []),                        # explicit: its scales
    (["-i", "--calib-cache", "c.calib"], "11.4.0.106",
     ["--calib-cache has no effect: it is TensorRT's calibration cache, and explicit int8 reads and writes --scales"]),
    (["-i", "--scales", "s.json"], "10.16.1.11", ["--scales has no effect: it is the scales file of explicit int8, "
                                                  "and implicit int8 calibrates into --calib-cache"]),
    (["-f", "--scales", "s.json", "--calib-cache", "c.calib"], "8.6.1",
     ["--calib-cache has no effect: it is TensorRT's int8 calibration cache, and this is no -i/--int8 build",
      "--scales has no effect: it holds int8 scales, and this is no -i/--int8 build"]),
    (["-i"], "11.4.0.106", []),
])
def test_a_calibration_file_for_the_other_int8_gets_a_warning(flags, version, expected):
    assert calibration_file_warnings(options(*flags).with_version_defaults(version)) == expected


def test_warnings_are_one_line_each_and_the_build_goes_on(hf_model, tmp_path):
    out = tmp_path / "w.npz"
    result = run_builder("-m", hf_model, "-o", out, "--export-weights", "-j", "train.json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "builder.py: warning: -j/--squad-json has no effect: it is calibration data, and this is no -i/--int8 build"]
    assert out.exists()


def test_int8_without_calibration_data_or_scales_is_one_line(hf_model, tmp_path):
    result = run_builder("-m", hf_model, "-o", tmp_path / "x.engine", "-i", "--quantization", "explicit")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"builder.py: error: --int8 needs calibration data: -j SQUAD_JSON and -v VOCAB_FILE, or an existing "
        f"scales file ({tmp_path / 'x.engine'}.scales.json, --scales)"]
