"""INT8 post-training calibration on real SQuAD features.

TensorRT runs the network in fp32 on a few hundred token windows and records the range of
every activation; as in NVIDIA's demo, a legacy calibrator takes the 99.99th percentile of
each range. The result goes to a calibration cache, which later builds read instead of
calibrating again. A second pass with TensorRT's min-max calibrator gives each range's maximum,
for tensors whose rare large values the percentile clips (see `with_scales_from`).
"""
import os

import numpy as np

from helpers import names
from helpers.errors import InputError
from helpers.files import write_atomically
from helpers.trt_common import TensorRTError, import_pycuda, import_tensorrt


def calibration_features(squad_json, vocab_file, max_seq_length, count, max_query_length=64, doc_stride=128,
                         do_lower_case=True):
    """The first `count` token windows of a SQuAD file, as three int32 [count, seq] arrays, tokenized
    with the model's casing."""
    from helpers.data_processing import convert_example_to_features, read_squad_examples
    from helpers.tokenization import FullTokenizer

    tokenizer = FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    rows = []
    for example in read_squad_examples(squad_json):
        for f in convert_example_to_features(example, tokenizer, max_seq_length, doc_stride, max_query_length):
            rows.append((f.input_ids, f.segment_ids, f.input_mask))
            if len(rows) == count:
                return tuple(np.stack(col).astype(np.int32) for col in zip(*rows))
    if not rows:
        raise InputError(f"{squad_json} has no questions to calibrate on; pass a SQuAD file with questions (-j)")
    return tuple(np.stack(col).astype(np.int32) for col in zip(*rows))


def make_calibrator(cache_path, squad_json, vocab_file, max_seq_length, count, max_query_length=64,
                    doc_stride=128, algorithm="percentile", do_lower_case=True):
    """A TensorRT calibrator feeding batches of one window; reads `cache_path` if it exists.

    algorithm: "percentile" (the demo's legacy calibrator, 99.99th percentile) or "max".
    """
    trt = import_tensorrt()
    base = {"percentile": trt.IInt8LegacyCalibrator, "max": trt.IInt8MinMaxCalibrator}[algorithm]

    class SquadCalibrator(base):
        def __init__(self):
            base.__init__(self)
            self.features = None
            self.position = 0
            self.device = {}

        def _load(self):
            if squad_json is None or vocab_file is None:
                raise TensorRTError(f"no calibration cache at {cache_path}: give -j SQUAD_JSON and -v VOCAB_FILE")
            self.features = calibration_features(squad_json, vocab_file, max_seq_length, count,
                                                 max_query_length, doc_stride, do_lower_case)
            cuda = import_pycuda()
            self.cuda = cuda
            self.device = {name: cuda.mem_alloc(4 * max_seq_length)
                           for name in names.INPUT_NAMES}

        def get_batch_size(self):
            return 1

        def get_batch(self, tensor_names):
            if self.features is None:
                self._load()
            if self.position >= len(self.features[0]):
                return None
            arrays = dict(zip(names.INPUT_NAMES, self.features))
            for name in tensor_names:
                self.cuda.memcpy_htod(self.device[name], np.ascontiguousarray(arrays[name][self.position]))
            self.position += 1
            return [int(self.device[name]) for name in tensor_names]

        def read_calibration_cache(self):
            if cache_path and os.path.exists(cache_path):
                with open(cache_path, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            write_atomically(cache_path, bytes(cache))

    if algorithm == "max":
        return SquadCalibrator()

    class PercentileCalibrator(SquadCalibrator):
        def get_quantile(self):
            return 0.9999

        def get_regression_cutoff(self):
            return 1.0

        def read_histogram_cache(self, length):
            return None

        def write_histogram_cache(self, data, length):
            return None

    return PercentileCalibrator()


def _scale_lines(cache):
    """(header, [(tensor name, hex scale)]) of a TensorRT calibration cache."""
    header, *lines = cache.decode("ascii").splitlines()
    return header, [tuple(line.rsplit(": ", 1)) for line in lines if line.strip()]


def with_scales_from(cache, other, names):
    """`cache` with the scales of tensors `names` taken from the cache `other`, header kept.

    Used to give the inputs of the QKV projections the range maximum (from a min-max pass)
    while every other tensor keeps the percentile.
    """
    header, scales = _scale_lines(cache)
    replacements = dict(_scale_lines(other)[1])
    missing = [n for n in names if n not in replacements or n not in dict(scales)]
    if missing:
        raise TensorRTError(f"calibration caches lack the tensor(s) {', '.join(missing)}; delete them and rebuild")
    merged = [(name, replacements[name] if name in names else value) for name, value in scales]
    return "\n".join([header] + [f"{name}: {value}" for name, value in merged]).encode("ascii") + b"\n"
