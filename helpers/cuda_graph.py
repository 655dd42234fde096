"""CUDA graph capture and replay through the driver API (pycuda has no binding for it).

A graph replays the kernels of one inference with a single launch, which removes the CPU's
per-kernel launch cost from small batches. TensorRT allows capturing execute_async_v3 once
it has run at least once with the same shapes.
"""
import ctypes
from helpers.errors import BertTrtError

CAPTURE_MODE_THREAD_LOCAL = 1


class CudaGraphError(BertTrtError, RuntimeError):
    pass


def _driver():
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        raise CudaGraphError(f"the CUDA driver library could not be loaded: {e}") from None


def _check(status, what):
    if status != 0:
        raise CudaGraphError(f"{what} failed with CUDA driver error {status}")


class CudaGraph:
    """Everything `enqueue(stream)` puts on the stream, captured once and replayed by launch()."""

    def __init__(self, stream, enqueue):
        self.lib = _driver()
        self.stream = ctypes.c_void_p(stream.handle)
        self.graph = ctypes.c_void_p()
        self.exec = ctypes.c_void_p()
        _check(self.lib.cuStreamBeginCapture_v2(self.stream, CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture")
        try:
            enqueue()
        finally:
            status = self.lib.cuStreamEndCapture(self.stream, ctypes.byref(self.graph))
        _check(status, "cuStreamEndCapture")
        _check(self.lib.cuGraphInstantiateWithFlags(ctypes.byref(self.exec), self.graph, ctypes.c_ulonglong(0)),
               "cuGraphInstantiate")

    def launch(self):
        _check(self.lib.cuGraphLaunch(self.exec, self.stream), "cuGraphLaunch")

    def __del__(self):
        if getattr(self, "exec", None):
            self.lib.cuGraphExecDestroy(self.exec)
        if getattr(self, "graph", None):
            self.lib.cuGraphDestroy(self.graph)
