"""One way to run a BERT-QA engine, shared by inference.py, perf.py and the notebook.

An EngineRunner deserializes an engine, checks it against the running TensorRT, and runs
batches of (input_ids, segment_ids, input_mask) through the optimization profile that fits
them: page-locked host buffers, device buffers, asynchronous copies and execute_async_v3 on
a CUDA stream, with tensors addressed by name. Engines built with --varseqlen take the same
batches: the runner packs their tokens and unpacks the logits.

Besides the synchronous call, submit() launches a batch and returns at once, with a handle whose
result() waits for its logits. The runner has `in_flight` slots, each a stream with its own
execution contexts and buffers, used in turn: a batch is staged and launched on one slot while
the previous ones still run on the others.
"""
import atexit
import contextlib
import os
import threading
from dataclasses import dataclass

import numpy as np

from helpers.data_processing import PADDING_LOGIT
from helpers.trt_common import (INPUT_NAMES, PACKED_INPUT_NAMES, EngineInfo, TensorRTError, import_pycuda,
                                import_tensorrt, input_shapes, make_logger)


def pack_batch(input_ids, segment_ids, input_mask):
    """(input_ids, segment_ids) of the valid tokens, one sequence after another, and cu_seqlens.

    Each row's valid tokens must come first (input_mask 1...1 0...0), as in BERT's features.
    """
    lengths = input_mask.sum(axis=1)
    positions = np.arange(input_mask.shape[1])
    if np.any(input_mask != (positions < lengths[:, None])) or np.any(lengths < 1):
        raise ValueError("a packed (--varseqlen) engine needs each input_mask row to be 1s then 0s, "
                         "with at least one 1")
    valid = input_mask.astype(bool)
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return input_ids[valid], segment_ids[valid], cu_seqlens


def unpack_logits(packed, cu_seqlens, sequence):
    """(tokens, 2) logits -> (batch, sequence, 2).

    Padding, which a packed engine never sees, gets PADDING_LOGIT: answer selection takes the n
    best logits of all positions, and padding must not crowd real tokens out of them.
    """
    batch = len(cu_seqlens) - 1
    logits = np.full((batch, sequence, 2), PADDING_LOGIT, np.float32)
    for b in range(batch):
        start, end = cu_seqlens[b], cu_seqlens[b + 1]
        logits[b, :end - start] = packed[start:end]
    return logits


@dataclass(frozen=True)
class Profile:
    """The shapes one optimization profile serves: batch min..max at sequence min..max."""
    index: int
    min_batch: int
    max_batch: int
    min_sequence: int
    max_sequence: int

    def fits(self, batch, sequence):
        return (self.min_batch <= batch <= self.max_batch
                and self.min_sequence <= sequence <= self.max_sequence)

    def __str__(self):
        seq = (str(self.max_sequence) if self.min_sequence == self.max_sequence
               else f"{self.min_sequence}-{self.max_sequence}")
        batch = str(self.max_batch) if self.min_batch == self.max_batch else f"{self.min_batch}-{self.max_batch}"
        return f"batch {batch} at sequence {seq}"


class ProfileBinding:
    """An execution context bound to one profile, with `slots` sets of buffers for its largest
    shapes: a batch can be staged in one set while the context runs on another (use())."""

    def __init__(self, trt, cuda, engine, profile, stream, slots=1):
        self.profile = profile
        self.stream = stream
        self.cuda = cuda
        self.context = engine.create_execution_context()
        if self.context is None:
            raise TensorRTError("TensorRT could not create an execution context (out of GPU memory?)")
        self.context.set_optimization_profile_async(profile.index, stream.handle)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name, shape in self.input_shapes(profile.max_batch, profile.max_sequence).items():
            self.context.set_input_shape(name, shape)
        self.slot_host, self.slot_device = [], []
        for _ in range(slots):
            host, device = {}, {}
            for name in names:
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                try:
                    host[name] = cuda.pagelocked_empty(shape, dtype)
                    device[name] = cuda.mem_alloc(max(host[name].nbytes, 1))
                except cuda.MemoryError:
                    raise TensorRTError(
                        f"not enough memory for the buffers of {profile} ({name}); lower the batch size "
                        f"(-b) or the sequence length (-s), or rebuild the engine for smaller ones") from None
            self.slot_host.append(host)
            self.slot_device.append(device)
        self.use(0, stream)
        self.shape = (profile.max_batch, profile.max_sequence)

    def use(self, slot, stream):
        """Stage, copy and run the next batch in the buffers of `slot`, on `stream`."""
        self.host, self.device, self.stream = self.slot_host[slot], self.slot_device[slot], stream
        for name, buffer in self.device.items():
            self.context.set_tensor_address(name, int(buffer))

    def input_shapes(self, batch, sequence):
        return input_shapes(batch, sequence)

    def set_shape(self, batch, sequence):
        """Tell the context the input shape; later copies move batch x sequence elements."""
        if (batch, sequence) != self.shape:
            for name, shape in self.input_shapes(batch, sequence).items():
                self.context.set_input_shape(name, shape)
            self.shape = (batch, sequence)

    def _view(self, name):
        """The leading part of a host buffer that holds the current shape, contiguous."""
        shape = tuple(self.context.get_tensor_shape(name))
        size = int(np.prod(shape))
        return self.host[name].reshape(-1)[:size].reshape(shape)

    def stage_inputs(self, arrays):
        for name, array in zip(INPUT_NAMES, arrays):
            self._view(name)[...] = array

    def copy_inputs_async(self):
        for name in self.inputs:
            self.cuda.memcpy_htod_async(self.device[name], self._view(name), self.stream)

    def execute_async(self):
        if not self.context.execute_async_v3(stream_handle=self.stream.handle):
            raise TensorRTError("TensorRT failed to run the engine (execute_async_v3 returned False)")

    def copy_outputs_async(self):
        for name in self.outputs:
            self.cuda.memcpy_dtoh_async(self._view(name), self.device[name], self.stream)

    def output(self, name):
        return self._view(name)

    def logits(self, name):
        """The start and end logits of the staged batch, (batch, sequence, 2)."""
        return self.logits_reader(name)()

    def logits_reader(self, name):
        """A function giving the staged batch's logits once they are copied back, whatever is
        staged in the meantime."""
        view, shape = self._view(name), self.shape
        return lambda: view.reshape(shape + (2,))


class PackedBinding(ProfileBinding):
    """A binding of a --varseqlen engine: batches are packed when staged, logits unpacked.

    max_seqlen's shape, always the profile's sequence length, picks the attention kernel; its
    contents are never read.
    """

    def input_shapes(self, batch, sequence, tokens=None):
        return input_shapes(batch, self.profile.max_sequence, packed=True,
                            tokens=batch * sequence if tokens is None else tokens)

    def set_shape(self, batch, sequence):
        self.shape = (batch, sequence)  # the token count is known once a batch is staged

    def stage_inputs(self, arrays):
        input_ids, segment_ids, self.cu_seqlens = pack_batch(*arrays)
        for name, shape in self.input_shapes(self.shape[0], self.shape[1], len(input_ids)).items():
            self.context.set_input_shape(name, shape)
        self._view("input_ids")[...] = input_ids
        self._view("segment_ids")[...] = segment_ids
        self._view("cu_seqlens")[...] = self.cu_seqlens

    def logits_reader(self, name):
        view, cu_seqlens, sequence = self._view(name), self.cu_seqlens, self.shape[1]
        return lambda: unpack_logits(view.reshape(-1, 2), cu_seqlens, sequence)


class Launch:
    """A batch launched by EngineRunner.submit(); result() waits for its logits (once)."""

    def __init__(self, done, read_logits):
        self.done, self.read_logits = done, read_logits
        self.lock = threading.Lock()
        self.logits = None

    def result(self):
        """(start_logits, end_logits), float32 [batch, sequence] each."""
        with self.lock:
            if self.logits is None:
                self.done.synchronize()  # pycuda lets other threads run while it waits
                logits = self.read_logits()
                self.logits = logits[..., 0].copy(), logits[..., 1].copy()
                self.read_logits = None
        return self.logits


class EngineRunner:
    """Runs a BERT-QA engine: `start, end = runner(input_ids, segment_ids, input_mask)`."""

    def __init__(self, engine_path, verbose=False, in_flight=2):
        engine_path = os.fspath(engine_path)
        if not os.path.isfile(engine_path):
            raise TensorRTError(f"engine file not found: {engine_path}; build one with builder.py")
        self.trt = trt = import_tensorrt()
        self.cuda = import_pycuda()
        self.info = EngineInfo.load(engine_path)
        if self.info and self.info.tensorrt_version != trt.__version__:
            raise TensorRTError(
                f"{engine_path} was built by TensorRT {self.info.tensorrt_version}, but this is TensorRT "
                f"{trt.__version__}; rebuild the engine with builder.py here")
        self.logger = make_logger(trt, verbose)
        self.runtime = trt.Runtime(self.logger)
        with open(engine_path, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise TensorRTError(
                f"TensorRT {trt.__version__} could not load {engine_path}: not an engine, or built by another "
                "TensorRT version; rebuild it with builder.py")
        self.packed = "cu_seqlens" in self._tensor_names()
        missing = [n for n in (PACKED_INPUT_NAMES if self.packed else INPUT_NAMES) if n not in self._tensor_names()]
        if missing:
            raise TensorRTError(f"{engine_path} is not a BERT-QA engine from builder.py: no input {missing[0]}")
        self.output_name = next(n for n in self._tensor_names()
                                if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.profiles = [self._read_profile(i) for i in range(self.engine.num_optimization_profiles)]
        self.cuda_context = self.cuda.Context.get_current()
        self.in_flight = max(int(in_flight), 1)
        self._streams = [self.cuda.Stream() for _ in range(self.in_flight)]
        self.stream = self._streams[0]  # the synchronous path's (and perf.py's) stream
        self._bindings = {}
        self._pending = [None] * self.in_flight
        self._next_slot = 0
        self._last_run = None  # the event after the latest launch's execution
        atexit.register(self.close)  # before pycuda's own exit handler drops the CUDA context

    def close(self):
        """Free contexts, engine and runtime in that order (TensorRT crashes on another order)."""
        for binding in getattr(self, "_bindings", {}).values():
            binding.context = None
        self._bindings = {}
        self.engine = None
        self.runtime = None

    def _tensor_names(self):
        return [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]

    def _read_profile(self, index):
        if self.packed:  # any batch of 1..B sequences of up to S tokens
            _, _, offsets = self.engine.get_tensor_profile_shape("cu_seqlens", index)
            _, _, padded = self.engine.get_tensor_profile_shape("max_seqlen", index)
            return Profile(index, 1, offsets[0] - 1, 1, padded[0])
        low, _, high = self.engine.get_tensor_profile_shape(INPUT_NAMES[0], index)
        return Profile(index, low[0], high[0], low[1], high[1])

    @property
    def max_batch_size(self):
        return max(p.max_batch for p in self.profiles)

    @property
    def sequence_lengths(self):
        return sorted({p.max_sequence for p in self.profiles})

    def profile_for(self, batch, sequence):
        """The profile with the smallest batch range that serves (batch, sequence)."""
        fitting = [p for p in self.profiles if p.fits(batch, sequence)]
        if not fitting:
            served = "; ".join(str(p) for p in self.profiles)
            raise TensorRTError(f"batch {batch} at sequence {sequence} is outside the engine's profiles "
                                f"({served}); rebuild with builder.py -b/-s, or use a smaller batch")
        return min(fitting, key=lambda p: (p.max_batch, p.max_sequence))

    def binding(self, batch, sequence):
        """The context and buffers for (batch, sequence), created on first use.

        One context per profile: TensorRT 8.6 lets only one context at a time hold a profile.
        """
        profile = self.profile_for(batch, sequence)
        if profile.index not in self._bindings:
            kind = PackedBinding if self.packed else ProfileBinding
            self._bindings[profile.index] = kind(self.trt, self.cuda, self.engine, profile, self.stream,
                                                 self.in_flight)
        b = self._bindings[profile.index]
        b.set_shape(batch, sequence)
        return b

    @contextlib.contextmanager
    def thread_scope(self):
        """Make the runner's CUDA context current in a thread other than the one that made it."""
        self.cuda_context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    def submit(self, input_ids, segment_ids, input_mask):
        """Stage and launch a batch on the next slot; returns its Launch at once.

        Each slot has its own stream and buffers; the slot's previous batch is waited for first,
        since its buffers are reused. Copies of one slot overlap the run of another, but runs
        follow each other (an event orders each after the one before): contexts of one engine
        share nothing, but one profile's context must not run twice at once.
        """
        arrays = [np.ascontiguousarray(a, np.int32) for a in (input_ids, segment_ids, input_mask)]
        if arrays[0].ndim != 2 or any(a.shape != arrays[0].shape for a in arrays):
            raise ValueError("input_ids, segment_ids and input_mask must be [batch, sequence] arrays of one shape")
        slot = self._next_slot
        self._next_slot = (slot + 1) % self.in_flight
        if self._pending[slot] is not None:
            self._pending[slot].result()
        stream = self._streams[slot]
        b = self.binding(*arrays[0].shape)
        b.use(slot, stream)
        b.stage_inputs(arrays)
        b.copy_inputs_async()
        if self._last_run is not None:
            stream.wait_for_event(self._last_run)
        b.execute_async()
        self._last_run = self.cuda.Event()
        self._last_run.record(stream)
        b.copy_outputs_async()
        done = self.cuda.Event()
        done.record(stream)
        self._pending[slot] = Launch(done, b.logits_reader(self.output_name))
        return self._pending[slot]

    def __call__(self, input_ids, segment_ids, input_mask):
        """Start and end logits, float32 [batch, sequence] each."""
        return self.submit(input_ids, segment_ids, input_mask).result()
