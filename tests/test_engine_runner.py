"""The engine runner's choice of optimization profile, on the CPU (tests/test_gpu.py runs it for real)."""
import types

import numpy as np
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


def test_packing_keeps_each_sequences_tokens_and_unpacking_puts_logits_back():
    """A packed engine sees the valid tokens one sequence after another; a per-token stand-in for it
    must give the padded layout's logits at every valid position after unpacking."""
    from helpers.engine_runner import PADDING_LOGIT, pack_batch, unpack_logits
    rng = np.random.default_rng(0)
    lengths = np.array([5, 1, 8, 3])
    mask = (np.arange(8) < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1, 1000, (4, 8)).astype(np.int32)
    segments = rng.integers(0, 2, (4, 8)).astype(np.int32)
    packed_ids, packed_segments, cu_seqlens = pack_batch(ids, segments, mask)
    assert cu_seqlens.tolist() == [0, 5, 6, 14, 17]
    assert packed_ids.tolist() == [t for row, n in zip(ids, lengths) for t in row[:n]]
    assert packed_segments.tolist() == [t for row, n in zip(segments, lengths) for t in row[:n]]
    per_token = lambda i, s: np.stack([i * 0.5 + s, -i + 2.0 * s], axis=-1)  # noqa: E731
    logits = unpack_logits(per_token(packed_ids, packed_segments), cu_seqlens, 8)
    padded = per_token(ids, segments)
    assert np.array_equal(logits[mask == 1], padded[mask == 1])
    assert (logits[mask == 0] == PADDING_LOGIT).all()  # never among the n best start or end logits


@pytest.mark.parametrize("mask", [[[1, 0, 1, 0]], [[0, 0, 0, 0]]])
def test_packing_refuses_masks_it_cannot_pack(mask):
    from helpers.engine_runner import pack_batch
    mask = np.array(mask, np.int32)
    with pytest.raises(ValueError, match="1s then 0s"):
        pack_batch(np.ones_like(mask), np.zeros_like(mask), mask)


def test_packed_engine_profiles_serve_up_to_b_sequences_of_up_to_s_tokens():
    """A --varseqlen engine's profile, read from its cu_seqlens and max_seqlen shapes."""
    runner = EngineRunner.__new__(EngineRunner)
    runner.packed = True
    shapes = {"cu_seqlens": ((2,), (9,), (9,)), "max_seqlen": ((384,), (384,), (384,))}
    runner.engine = type("Engine", (), {"get_tensor_profile_shape": lambda self, name, index: shapes[name]})()
    profile = runner._read_profile(0)
    assert profile == Profile(0, 1, 8, 1, 384)
    runner.profiles = [profile]
    assert runner.profile_for(3, 200) == profile
    with pytest.raises(TensorRTError, match="outside the engine's profiles"):
        runner.profile_for(9, 384)


# ---------------------------------------------------------------- submit(), with TensorRT and pycuda faked
# The fakes run each call at once and keep "device" memory in numpy arrays by address: enough to check
# that batches in flight on two slots never share buffers and that every Launch gets its own logits.

class FakeCuda:
    class MemoryError(Exception):
        pass

    class Stream:
        def __init__(self):
            self.handle, self.waits = id(self), []

        def wait_for_event(self, event):
            self.waits.append(event)

    class Event:
        def record(self, stream):
            self.stream = stream

        def synchronize(self):
            pass

    class Context:
        stack = []

        @staticmethod
        def get_current():
            return FakeCuda.Context()

        def push(self):
            FakeCuda.Context.stack.append(self)

        @staticmethod
        def pop():
            FakeCuda.Context.stack.pop()

    memory = {}

    @staticmethod
    def pagelocked_empty(shape, dtype):
        return np.zeros(shape, dtype)

    @classmethod
    def mem_alloc(cls, nbytes):
        buffer = np.zeros(nbytes, np.uint8)
        cls.memory[buffer.ctypes.data] = buffer
        return buffer.ctypes.data

    @classmethod
    def memcpy_htod_async(cls, address, host, stream):
        cls.memory[address][:host.nbytes] = np.frombuffer(np.ascontiguousarray(host).tobytes(), np.uint8)

    @classmethod
    def memcpy_dtoh_async(cls, host, address, stream):
        host[...] = np.frombuffer(cls.memory[address][:host.nbytes].tobytes(), host.dtype).reshape(host.shape)


class FakeTensorRT:
    __version__ = "fake"

    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    @staticmethod
    def nptype(dtype):
        return dtype


class FakeContext:
    def __init__(self, engine):
        self.engine, self.shapes, self.addresses = engine, {}, {}

    def set_optimization_profile_async(self, index, stream):
        self.profile = index

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)

    def get_tensor_shape(self, name):
        if name == "logits":
            batch, sequence = self.shapes["input_ids"]
            return (batch, sequence, 2)
        return self.shapes[name]

    def set_tensor_address(self, name, address):
        self.addresses[name] = address

    def _tensor(self, name, dtype):
        shape = self.get_tensor_shape(name)
        return FakeCuda.memory[self.addresses[name]][:int(np.prod(shape)) * 4].view(dtype).reshape(shape)

    def execute_async_v3(self, stream_handle):
        ids = self._tensor("input_ids", np.int32).astype(np.float32)
        segments = self._tensor("segment_ids", np.int32)
        logits = self._tensor("logits", np.float32)
        logits[..., 0], logits[..., 1] = ids * 0.5 + segments, -ids
        return True


class FakeEngine:
    names = ("input_ids", "segment_ids", "input_mask", "logits")
    num_io_tensors = 4
    num_optimization_profiles = 1

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return FakeTensorRT.TensorIOMode.OUTPUT if name == "logits" else FakeTensorRT.TensorIOMode.INPUT

    def get_tensor_dtype(self, name):
        return np.float32 if name == "logits" else np.int32

    def get_tensor_profile_shape(self, name, index):
        return (1, 16), (8, 16), (8, 16)

    def create_execution_context(self):
        return FakeContext(self)


def test_batches_in_flight_keep_their_own_buffers_and_logits(monkeypatch, tmp_path):
    import helpers.engine_runner as engine_runner
    monkeypatch.setattr(engine_runner, "import_tensorrt", lambda: FakeTensorRT)
    monkeypatch.setattr(engine_runner, "import_pycuda", lambda: FakeCuda)
    monkeypatch.setattr(engine_runner, "make_logger", lambda trt, verbose: None)
    FakeTensorRT.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda data: FakeEngine())
    path = tmp_path / "fake.engine"
    path.write_bytes(b"fake")
    runner = EngineRunner(path, in_flight=2)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 1000, (b, 16)).astype(np.int32), rng.integers(0, 2, (b, 16)).astype(np.int32),
                np.ones((b, 16), np.int32)) for b in (8, 3, 8, 1, 5)]
    with runner.thread_scope():
        launches = [runner.submit(*batch) for batch in batches]
        assert FakeCuda.Context.stack  # the runner's context is current in this scope
    assert not FakeCuda.Context.stack
    for (ids, segments, _), launch in zip(batches, launches):
        start, end = launch.result()
        np.testing.assert_array_equal(start, ids * 0.5 + segments)
        np.testing.assert_array_equal(end, -ids.astype(np.float32))
    assert runner(*batches[1])[0].shape == (3, 16)
