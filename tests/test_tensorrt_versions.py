"""builder.py's whole build, every mode, against the REAL Python bindings of TensorRT 8.6.1,
10.11, 10.16 and 11.4 (tests/trt_standin.py; each version in its own interpreter).

A mode a version supports must reach build_serialized_network with every attribute read, call and
assignment bound to that version's classes; one it does not support must fail with builder.py's
one-line error. The bindings are installed by .ci/run, each into its own folder under
BERT_TRT_BINDINGS (default: .trt-bindings/ in the repository); stub libraries are compiled here
from ../shared/trt-api/stub.c.
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED

BINDINGS = Path(os.environ.get("BERT_TRT_BINDINGS", REPO / ".trt-bindings"))
VERSIONS = ("8.6.1", "10.11.0.33", "10.16.1.11", "11.4.0.106")
sys.path.insert(0, str(Path(__file__).parent))
from trt_standin import MODES  # noqa: E402

# (version prefix, mode) -> the fragment of builder.py's one-line error; every other pair builds.
REFUSED = {
    ("8.", "--strongly-typed"): "--strongly-typed needs TensorRT 10 or later",
    ("8.", "-f --strongly-typed"): "--strongly-typed needs TensorRT 10 or later",
    ("8.", "-i --strongly-typed"): "--strongly-typed needs TensorRT 10 or later",
    ("11.", "-i --quantization implicit"): "--quantization implicit needs TensorRT's int8 calibrators",
    ("11.", "-i -iln -imh"): "with --quantization explicit",
    **{(v, "-i --quantization explicit, another model's scales"): "was made for another model"
       for v in ("8.", "10.", "11.")},
}


def refusal(version, mode):
    return next((line for (prefix, m), line in REFUSED.items() if version.startswith(prefix) and m == mode), None)


def stubs_for(bindings, out):
    """Stub libraries with the sonames the extension module names (DT_NEEDED)."""
    module = next((bindings / "tensorrt_bindings").glob("tensorrt*.so"))
    names = sorted(set(re.findall(rb"libnv\w*\.so\.\d+", module.read_bytes())))
    out.mkdir(parents=True, exist_ok=True)
    for soname in (n.decode() for n in names):
        subprocess.run(["gcc", "-shared", "-fPIC", "-DSTUB_INIT_PLUGINS=1", f"-Wl,-soname,{soname}", "-o",
                        str(out / soname), str(SHARED / "trt-api" / "stub.c")], check=True)
    return out


@functools.lru_cache(maxsize=None)
def report(version, work):
    bindings = BINDINGS / version
    if not (bindings / "tensorrt_bindings").is_dir():
        pytest.skip(f"TensorRT {version} bindings not installed at {bindings} (.ci/run installs them)")
    if shutil.which("gcc") is None or not (SHARED / "trt-api" / "stub.c").exists():
        pytest.skip("needs gcc and ../shared/trt-api/stub.c to compile the stub libraries")
    work = Path(work)
    stubs = stubs_for(bindings, work / "stubs")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
    result = subprocess.run([sys.executable, str(REPO / "tests" / "trt_standin.py"), str(bindings), str(stubs),
                             str(work)], capture_output=True, text=True, env=env, cwd=work, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("trt-versions")


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("version", VERSIONS)
def test_mode_binds_or_is_refused_in_one_line(version, mode, work):
    run = report(version, str(work / version))["modes"][mode]
    refused = refusal(version, mode)
    if refused is None:
        assert run["violations"] == [], run["violations"]
        assert run["rc"] == 0, run["stderr"][-2000:]
        assert run["reached"], "the build never reached build_serialized_network"
        assert run["engine"] and run["record"]["tensorrt_version"] == version
        options = run["record"]["build_options"]
        assert options["strongly_typed"] == (version.startswith("11.") or "--strongly-typed" in mode)
        if "-i" in mode.split():
            implicit = "implicit" in mode or not (version.startswith("11.") or "explicit" in mode
                                                  or "--strongly-typed" in mode)
            assert options["quantization"] == ("implicit" if implicit else "explicit")
    else:
        assert run["rc"] == 2 and not run["reached"] and not run["engine"], run["stderr"][-2000:]
        errors = [line for line in run["stderr"].splitlines() if line.startswith("builder.py: error:")]
        assert len(errors) == 1 and "Traceback" not in run["stderr"], run["stderr"]
        assert refused in errors[0]


def test_the_stand_in_catches_what_a_version_lacks(work):
    """The checker can fail: on 11.4 assigning ITensor.dtype (read-only there) and the two-argument
    add_quantize (gone there) are violations; on 8.6 add_plugin_v3 does not exist."""
    bindings = BINDINGS / "11.4.0.106"
    if not (bindings / "tensorrt_bindings").is_dir():
        pytest.skip(f"TensorRT 11.4 bindings not installed at {bindings}")
    stubs = stubs_for(bindings, Path(work) / "stubs-check")
    code = f"""
import sys; sys.path.insert(0, {str(REPO / 'tests')!r})
import trt_standin as s
real = s.load_real_bindings({str(bindings)!r}, {str(stubs)!r})
trt, world = s.standin_module(real, s.creators_for(real))
net = trt.Builder(trt.Logger()).create_network(0)
x = net.add_input("x", trt.float32, (1, 2))
for attempt in (lambda: setattr(x, "dtype", trt.float16), lambda: net.add_quantize(x, x),
                lambda: net.add_shuffle(x, x), lambda: setattr(x, "name", 3)):
    try:
        attempt()
    except (AttributeError, TypeError):
        pass
print(len(s.violations)); print(s.violations)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    count, found = result.stdout.splitlines()[:2]
    assert count == "4", found
    assert "ITensor.dtype" in found and "read-only" in found and "add_quantize" in found
