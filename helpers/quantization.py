"""int8 calibration without TensorRT, and int8 simulated on the CPU.

Calibration runs the numpy reference (helpers/reference.py) over token windows of SQuAD train and
records the range of every named tensor (helpers/names.py): the embeddings, each part of every
encoder layer, and each layer's softmax output ("attention_probs"). A tensor's int8 range, its
amax, is a quantile of |x| over every value of every window, padding included, which is what
TensorRT's legacy calibrator sees; as in NVIDIA's demo the default quantile is 99.99%. With
qkv_max the inputs of the QKV projections take their maximum instead: their rare large values are
what the quantile clips, and clipping them cost 1.9-2.6 F1 of the test models
(results/int8_simulation.md).

Quantiles of ~10^8 values per tensor come from a histogram of |x| per tensor, bounded in memory
whatever the number of windows (see RangeHistogram). The scales go to a JSON file that later builds
reuse, like TensorRT's calibration cache.

Simulation: QuantizedModel is the same reference forward with every encoder projection int8, as an
explicitly quantized engine runs it: the input per tensor with its calibrated scale, the weights per
output channel, everything else float32.
"""
import json
import math
from dataclasses import dataclass

import numpy as np

from helpers import names
from helpers.errors import BertTrtError
from helpers.files import write_json_atomically
from helpers.reference import Observer, ReferenceModel
from helpers.weights import BertConfig

INT8_MAX = 127
SCALES_FORMAT = "bert-trt int8 scales"
SCALES_VERSION = 1
ATTENTION_PROBS = "attention_probs"  # the softmax output of each layer's attention
HISTOGRAM_BINS = 1 << 14
CALIBRATION_BATCH = 8  # windows per reference forward; the ranges do not depend on it

# The weight matrices of each encoder layer's projections (canonical names of helpers/weights.py).
PROJECTION_WEIGHTS = {"qkv": ("attention.query", "attention.key", "attention.value"),
                      "attention_output": ("attention.output",),
                      "intermediate": ("intermediate",),
                      "output": ("output",)}


class ScalesError(BertTrtError, ValueError):
    """A scales file that cannot be used, or scales that lack a tensor; the message names the fix."""


def calibrated_names(config: BertConfig) -> list:
    """Every tensor a Scales of this model holds, in the order the network computes them."""
    parts = names.LAYER_PARTS[:1] + (ATTENTION_PROBS,) + names.LAYER_PARTS[1:]
    return [names.EMBEDDINGS] + [names.layer(i, part) for i in range(config.num_hidden_layers)
                                 for part in parts]


def qkv_inputs(config: BertConfig) -> list:
    """The tensors the QKV projections read: what qkv_max scales by their maximum."""
    return [names.projection_input(i, "qkv") for i in range(config.num_hidden_layers)]


@dataclass(frozen=True)
class Scales:
    """int8 ranges of one model's named tensors, and how they were made.

    amax: tensor name (helpers/names.py) -> the largest |x| int8 represents (scale = amax / 127);
    a projection's output is taken with its bias added, as the reference computes it.
    model: BertConfig.to_dict() of the model they were calibrated on.
    quantile: the percentile (99.99 means 99.99%) of |x| each amax is; qkv_max: whether the QKV
    projections' inputs take their maximum instead; windows and sequence_length: the calibration
    data, windows of sequence_length tokens.
    """
    amax: dict
    model: dict
    quantile: float
    qkv_max: bool
    windows: int
    sequence_length: int

    def scale(self, name) -> float:
        """The int8 scale of tensor `name`: int8 value q stands for q * scale."""
        if name not in self.amax:
            raise ScalesError(f"the int8 scales have no tensor {name!r}; calibrate again for "
                              f"this network")
        return self.amax[name] / INT8_MAX


# ---------------------------------------------------------------------------------------------
# Ranges


class RangeHistogram:
    """Streaming histogram of |x| over [0, limit) in `bins` equal bins, and the exact maximum.

    limit starts at the first nonzero maximum and doubles whenever a value reaches it, merging bins
    pairwise, so it stays below twice the maximum. A quantile read from it is within one bin
    (at most 2 * max / bins) of the exact one, numpy.percentile's linear interpolation between two
    order statistics, or, where those two lie bins apart (a sparse tail), between them give or
    take one bin. Memory: bins * 8 bytes per tensor, whatever the number of windows.
    """

    def __init__(self, bins=HISTOGRAM_BINS):
        if bins < 2 or bins % 2:
            raise ValueError(f"a RangeHistogram needs an even number of bins, got {bins}")
        self.bins = bins
        self.counts = np.zeros(bins, np.int64)
        self.limit = 0.0
        self.maximum = 0.0
        self.total = 0

    @property
    def bin_width(self) -> float:
        return self.limit / self.bins

    def add(self, x):
        magnitude = np.abs(np.asarray(x, np.float32).reshape(-1))
        if magnitude.size == 0:
            return
        largest = float(magnitude.max())
        if not math.isfinite(largest):
            raise ScalesError("calibration met a non-finite activation; check the model's weights")
        self.total += magnitude.size
        self.maximum = max(self.maximum, largest)
        if largest == 0.0:
            self.counts[0] += magnitude.size
            return
        if self.limit == 0.0:
            self.limit = largest * (1 + 2.0 ** -20)  # the maximum falls inside the last bin
        while largest >= self.limit:
            self.counts = np.concatenate([self.counts.reshape(-1, 2).sum(axis=1),
                                          np.zeros(self.bins // 2, np.int64)])
            self.limit *= 2
        index = (magnitude * np.float32(self.bins / self.limit)).astype(np.intp)
        np.minimum(index, self.bins - 1, out=index)  # float32 rounding at the top edge
        self.counts += np.bincount(index, minlength=self.bins)

    def percentile(self, q) -> float:
        """The q-th percentile (0 <= q <= 100) of the |x| seen, interpolated within its bin."""
        if self.total == 0:
            raise ScalesError("calibration saw no values of a tensor; give it at least one window")
        if self.maximum == 0.0:
            return 0.0
        rank = q / 100 * (self.total - 1)  # numpy.percentile's position, 0-based
        cumulative = np.cumsum(self.counts)
        index = int(np.searchsorted(cumulative, rank, side="right"))
        below = cumulative[index - 1] if index else 0
        inside = (rank - below + 0.5) / self.counts[index]  # a bin's values spread evenly in it
        return float(min((index + min(inside, 1.0)) * self.bin_width, self.maximum))


class RangeRecorder(Observer):
    """Observer that keeps a RangeHistogram of each named tensor the forward pass shows."""

    def __init__(self, bins=HISTOGRAM_BINS):
        self.bins = bins
        self.ranges = {}

    def tensor(self, name, x):
        if name not in self.ranges:
            self.ranges[name] = RangeHistogram(self.bins)
        self.ranges[name].add(x)


class _Recorders(Observer):
    """Several observers on one forward pass."""

    def __init__(self, observers):
        self.observers = observers

    def tensor(self, name, x):
        for observer in self.observers:
            observer.tensor(name, x)


def check_features(features) -> tuple:
    """(input_ids, segment_ids, input_mask), each [windows, seq]; ScalesError when unusable."""
    if len(features) != 3:
        raise ScalesError("calibration features must be (input_ids, segment_ids, input_mask)")
    arrays = tuple(np.asarray(a) for a in features)
    if arrays[0].ndim != 2 or arrays[0].shape[0] == 0 or \
            any(a.shape != arrays[0].shape for a in arrays):
        raise ScalesError(f"calibration features must be three [windows, seq] arrays with at "
                          f"least one window; got shapes {[a.shape for a in arrays]}")
    return arrays


def record_ranges(config: BertConfig, weights: dict, features, recorders, progress=True,
                  batch_size=CALIBRATION_BATCH):
    """Run the float32 reference over every window of `features`, showing each tensor to every
    RangeRecorder in `recorders`, with a progress bar over the windows."""
    from tqdm import tqdm

    input_ids, segment_ids, input_mask = check_features(features)
    model = ReferenceModel(config, weights)
    observer = _Recorders(list(recorders))
    with tqdm(total=len(input_ids), unit="window", desc="int8 calibration",
              disable=not progress) as bar:
        for start in range(0, len(input_ids), batch_size):
            rows = slice(start, start + batch_size)
            model(input_ids[rows], segment_ids[rows], input_mask[rows], observer)
            bar.update(len(input_ids[rows]))


def scales_from_ranges(config: BertConfig, ranges: dict, quantile, qkv_max, windows,
                       sequence_length) -> Scales:
    """Scales from the RangeHistograms of every calibrated tensor of `config`."""
    missing = [name for name in calibrated_names(config) if name not in ranges]
    if missing:
        raise ScalesError(f"calibration saw no values of {', '.join(missing[:3])}; the forward "
                          f"pass and the network's names disagree")
    maxima = set(qkv_inputs(config)) if qkv_max else set()
    amax = {name: ranges[name].maximum if name in maxima else ranges[name].percentile(quantile)
            for name in calibrated_names(config)}
    return Scales(amax=amax, model=config.to_dict(), quantile=float(quantile),
                  qkv_max=bool(qkv_max), windows=int(windows),
                  sequence_length=int(sequence_length))


def _check_quantile(quantile):
    if not 0 < quantile <= 100:
        raise ScalesError(f"the calibration quantile is a percentile in (0, 100], got "
                          f"{quantile}; the demo's is 99.99")


def calibrate_scales(config: BertConfig, weights: dict, features, quantile=99.99, qkv_max=True,
                     progress=True) -> Scales:
    """int8 scales of every named tensor from float32 reference runs over `features`
    ((input_ids, segment_ids, input_mask), each [windows, seq], as from
    helpers.calibrator.calibration_features): amax is the `quantile` percentile of |x| over all
    positions, or with qkv_max the maximum for the QKV projections' inputs."""
    _check_quantile(quantile)
    input_ids = check_features(features)[0]
    recorder = RangeRecorder()
    record_ranges(config, weights, features, [recorder], progress)
    return scales_from_ranges(config, recorder.ranges, quantile, qkv_max, len(input_ids),
                              input_ids.shape[1])


# ---------------------------------------------------------------------------------------------
# The scales file


def save_scales(path, scales: Scales):
    """Write `scales` to a readable JSON file, whole or not at all."""
    write_json_atomically(path, {
        "format": SCALES_FORMAT, "version": SCALES_VERSION,
        "model": scales.model, "quantile": scales.quantile, "qkv_max": scales.qkv_max,
        "windows": scales.windows, "sequence_length": scales.sequence_length,
        "amax": scales.amax,
        "scale": {name: amax / INT8_MAX for name, amax in scales.amax.items()},
    })


def load_scales(path, config: BertConfig, *, quantile=None, qkv_max=None,
                sequence_length=None) -> Scales:
    """The scales in file `path`, checked to be of `config`'s model and, for each of quantile,
    qkv_max and sequence_length that is given, made that way; ScalesError names the file and the
    fix otherwise."""
    fix = "delete it to calibrate again, or give the scales file made for this build"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ScalesError(f"int8 scales file {path} does not exist; calibrate with -j and -v "
                          f"to write it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ScalesError(f"int8 scales file {path} cannot be read ({e}); {fix}") from None
    fields = ("model", "quantile", "qkv_max", "windows", "sequence_length", "amax")
    if not isinstance(data, dict) or data.get("format") != SCALES_FORMAT or \
            data.get("version") != SCALES_VERSION or any(f not in data for f in fields):
        raise ScalesError(f"{path} is no bert-trt int8 scales file (version {SCALES_VERSION}); "
                          f"{fix}")
    if data["model"] != config.to_dict():
        differing = sorted(k for k in set(data["model"]) | set(config.to_dict())
                           if data["model"].get(k) != config.to_dict().get(k))
        raise ScalesError(f"int8 scales file {path} was made for another model (differs in "
                          f"{', '.join(differing)}); {fix}")
    wanted = {"quantile": quantile, "qkv_max": qkv_max, "sequence_length": sequence_length}
    for field, value in wanted.items():
        if value is not None and data[field] != value:
            raise ScalesError(f"int8 scales file {path} was made with {field} {data[field]}, "
                              f"this build asks for {value}; {fix}")
    amax = data["amax"] if isinstance(data["amax"], dict) else {}
    missing = [name for name in calibrated_names(config) if name not in amax]
    if missing or not all(
            isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in amax.values()):
        raise ScalesError(f"int8 scales file {path} lacks tensors or holds bad values "
                          f"({', '.join(missing[:3]) or 'non-finite or negative amax'}); {fix}")
    return Scales(amax={name: float(v) for name, v in amax.items()}, model=data["model"],
                  quantile=float(data["quantile"]), qkv_max=bool(data["qkv_max"]),
                  windows=int(data["windows"]), sequence_length=int(data["sequence_length"]))


# ---------------------------------------------------------------------------------------------
# Fake quantization


def weight_amax(kernel) -> np.ndarray:
    """Per output channel amax of a kernel [in, out]: max |W| over the input axis, [out]."""
    return np.abs(np.asarray(kernel)).max(axis=0)


def fake_quantize(x, amax) -> np.ndarray:
    """x rounded to int8 and back: clip(round(x / s), -127, 127) * s with s = amax / 127, per
    tensor (amax a number) or per channel of the last axis (amax [channels]). Rounding is to
    nearest, ties to even, as TensorRT's quantize layer does. A zero amax gives zeros."""
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    scale = np.asarray(amax, dtype) / dtype.type(INT8_MAX)
    live = scale > 0
    q = np.divide(x, np.where(live, scale, dtype.type(1)), dtype=dtype)  # a fresh array
    np.rint(q, out=q)
    np.clip(q, -INT8_MAX, INT8_MAX, out=q)
    q *= np.where(live, scale, dtype.type(0))
    return q


def quantized_weights(config: BertConfig, weights: dict) -> dict:
    """`weights` with the kernel of every encoder projection fake-quantized per output channel."""
    out = dict(weights)
    for i in range(config.num_hidden_layers):
        for matrices in PROJECTION_WEIGHTS.values():
            for matrix in matrices:
                name = f"layer.{i}.{matrix}.kernel"
                out[name] = fake_quantize(weights[name], weight_amax(weights[name]))
    return out


class ProjectionQuantizer(Observer):
    """Observer that hands each encoder projection its input fake-quantized with the tensor's
    int8 scale (per tensor), as a Q/DQ pair before the projection does."""

    def __init__(self, scales: Scales):
        self.scales = scales

    def projection_input(self, projection, input_name, x):
        self.scales.scale(input_name)  # ScalesError for a tensor the scales lack
        return fake_quantize(x, self.scales.amax[input_name])


class QuantizedModel:
    """BERT-QA with every encoder projection in int8, simulated in float32 on the CPU:
    model(input_ids, segment_ids, input_mask) -> (start, end), like ReferenceModel."""

    def __init__(self, config: BertConfig, weights: dict, scales: Scales):
        if scales.model != config.to_dict():
            raise ScalesError("the int8 scales were calibrated for another model; calibrate "
                              "again for this one")
        self.reference = ReferenceModel(config, quantized_weights(config, weights))
        self.quantizer = ProjectionQuantizer(scales)

    def __call__(self, input_ids, segment_ids, input_mask) -> tuple:
        return self.reference(input_ids, segment_ids, input_mask, self.quantizer)


def quantized_logits(config: BertConfig, weights: dict, scales: Scales, input_ids, segment_ids,
                     input_mask) -> tuple:
    """(start, end) logits of the int8 simulation (QuantizedModel) on one batch of features."""
    return QuantizedModel(config, weights, scales)(input_ids, segment_ids, input_mask)
