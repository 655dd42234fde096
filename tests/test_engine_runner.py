"""The engine runner's choice of optimization profile, on the CPU (tests/test_gpu.py runs it for real)."""
import pytest

from helpers.engine_runner import EngineRunner, Profile
from helpers.trt_common import TensorRTError


def runner_with(profiles):
    runner = EngineRunner.__new__(EngineRunner)  # no engine: only the profile logic is exercised
    runner.profiles = profiles
    return runner


# As builder.py writes them for -b 1 -b 8 -b 32 -s 128 -s 384: each serves batch 1..B at exactly S.
PROFILES = [Profile(i, 1, b, s, s) for i, (s, b) in enumerate((s, b) for s in (128, 384) for b in (1, 8, 32))]


@pytest.mark.parametrize("batch,sequence,expected", [
    (1, 128, (1, 128)), (2, 128, (8, 128)), (8, 128, (8, 128)), (9, 128, (32, 128)), (32, 128, (32, 128)),
    (1, 384, (1, 384)), (20, 384, (32, 384)),
])
def test_smallest_profile_that_fits(batch, sequence, expected):
    profile = runner_with(PROFILES).profile_for(batch, sequence)
    assert (profile.max_batch, profile.max_sequence) == expected


@pytest.mark.parametrize("batch,sequence", [(33, 128), (1, 385), (0, 128), (3, 200)])
def test_outside_every_profile_is_a_one_line_error(batch, sequence):
    with pytest.raises(TensorRTError) as error:
        runner_with(PROFILES).profile_for(batch, sequence)
    message = str(error.value)
    assert "\n" not in message
    assert f"batch {batch} at sequence {sequence} is outside the engine's profiles" in message
    assert "batch 1-8 at sequence 128; batch 1-32 at sequence 128; batch 1 at sequence 384" in message
    assert "rebuild with builder.py -b/-s" in message


def test_runner_properties_and_profile_text():
    runner = runner_with([Profile(0, 1, 1, 128, 128), Profile(1, 1, 64, 128, 128)])
    assert runner.max_batch_size == 64
    assert runner.sequence_lengths == [128]
    assert str(runner.profiles[1]) == "batch 1-64 at sequence 128"


def test_missing_engine_file_is_a_one_line_error(tmp_path):
    with pytest.raises(TensorRTError, match="engine file not found: .*none.engine; build one with builder.py"):
        EngineRunner(tmp_path / "none.engine")
