"""helpers/quantization.py: the project's own int8 calibration and the int8 simulation, against
numpy.percentile, the definition of fake quantization, transformers' BertModel hidden states and
the reference forward pass without an observer."""
import dataclasses
import json

import numpy as np
import pytest

from conftest import HF_MODEL, SQUAD_DIR, TF_MODEL, require
from helpers import names
from helpers import quantization as Q
from helpers.reference import Observer, ReferenceModel
from helpers.weights import BertConfig, load_weights, random_weights

TINY = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                  intermediate_size=64, vocab_size=100, max_position_embeddings=64)


def tiny_features(windows=3, seq=16, seed=0):
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(0, TINY.vocab_size, (windows, seq)).astype(np.int32)
    segment_ids = (np.arange(seq) >= seq // 2).astype(np.int32) * np.ones((windows, 1), np.int32)
    input_mask = np.ones((windows, seq), np.int32)
    input_mask[0, seq - 5:] = 0
    return input_ids, segment_ids, input_mask


@pytest.fixture(scope="module")
def tiny_scales():
    weights = random_weights(TINY, seed=3)
    return Q.calibrate_scales(TINY, weights, tiny_features(), progress=False)


# ---------------------------------------------------------------------------------------------
# Percentiles


def assert_percentile(histogram, values, q):
    """Within one bin of numpy.percentile, or, where the two order statistics it interpolates
    between lie bins apart (a sparse tail), between them give or take one bin."""
    exact = float(np.percentile(values, q))
    ordered = np.sort(values.reshape(-1))
    rank = q / 100 * (ordered.size - 1)
    low, high = ordered[int(np.floor(rank))], ordered[int(np.ceil(rank))]
    got = histogram.percentile(q)
    width = histogram.bin_width * (1 + 1e-6)
    assert abs(got - exact) <= width or low - width <= got <= high + width, (q, got, exact)


def test_histogram_percentiles_match_numpy_within_one_bin():
    rng = np.random.default_rng(0)
    # Heavy-tailed, signed, and arriving with growing range, so that the histogram doubles.
    chunks = [rng.standard_t(3, 50_000).astype(np.float32) * scale for scale in (0.1, 1, 30)]
    histogram = Q.RangeHistogram(bins=4096)
    for chunk in chunks:
        histogram.add(chunk.reshape(100, -1))
    values = np.abs(np.concatenate(chunks))
    assert histogram.total == values.size
    assert histogram.maximum == float(values.max())
    assert histogram.limit < 2 * values.max()
    for q in (0.0, 50, 90, 99, 99.9, 99.99, 100):
        assert_percentile(histogram, values, q)


def test_histogram_of_zeros_and_ties():
    histogram = Q.RangeHistogram(bins=16)
    histogram.add(np.zeros(10))
    assert histogram.percentile(99.99) == 0.0
    histogram.add(np.full(10, -2.0))
    assert histogram.maximum == 2.0
    assert abs(histogram.percentile(100) - 2.0) <= histogram.bin_width
    assert abs(histogram.percentile(25) - np.percentile([0] * 10 + [2] * 10, 25)) \
        <= histogram.bin_width
    with pytest.raises(Q.ScalesError, match="non-finite"):
        histogram.add(np.array([1.0, np.nan]))


# ---------------------------------------------------------------------------------------------
# Fake quantization, against its definition element by element


def definition(value, amax):
    s = amax / 127
    return min(max(round(value / s), -127), 127) * s  # Python's round: ties to even


def test_fake_quantize_per_tensor_is_the_definition():
    s = 2.0 ** -6  # a power of two, so that the ties below are exact in float32
    amax = np.float32(127 * s)
    x = np.array([0.0, 0.5 * s, 1.5 * s, 2.5 * s, -2.5 * s, 0.3, -1.0, 127 * s, 3.0, -100.0,
                  126.5 * s, 0.7 * s], np.float32)
    got = Q.fake_quantize(x, amax)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [definition(float(v), float(amax)) for v in x])
    np.testing.assert_array_equal(got[[1, 2, 3, 4, 8, 9, 10]],
                                  np.array([0, 2, 2, -2, 127, -127, 126]) * s)  # ties to even
    other = np.float32(2.54)  # a scale that float32 does not hold exactly
    np.testing.assert_allclose(Q.fake_quantize(x, other),
                               [definition(float(v), float(other)) for v in x], rtol=1e-6)


def test_fake_quantize_per_channel_and_weight_amax():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(8, 5)).astype(np.float32)
    kernel[:, 3] = 0.0  # a dead output channel
    amax = Q.weight_amax(kernel)
    assert amax.shape == (5,)
    for j in range(5):
        assert amax[j] == max(abs(float(v)) for v in kernel[:, j])
    got = Q.fake_quantize(kernel, amax)
    for i in range(8):
        for j in range(5):
            want = 0.0 if amax[j] == 0 else definition(float(kernel[i, j]), float(amax[j]))
            assert got[i, j] == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert np.all(np.abs(got - kernel) <= amax / 254 * (1 + 1e-5))  # at most half a step


# ---------------------------------------------------------------------------------------------
# The scales file


def test_scales_hold_every_named_tensor(tiny_scales):
    expected = {names.EMBEDDINGS} | {names.layer(i, part) for i in range(2)
                                     for part in names.LAYER_PARTS + ("attention_probs",)}
    assert set(tiny_scales.amax) == expected
    assert tiny_scales.model == TINY.to_dict()
    assert (tiny_scales.quantile, tiny_scales.qkv_max, tiny_scales.windows,
            tiny_scales.sequence_length) == (99.99, True, 3, 16)
    assert all(v > 0 for v in tiny_scales.amax.values())
    assert tiny_scales.scale("layer.1_gelu") == tiny_scales.amax["layer.1_gelu"] / 127
    with pytest.raises(Q.ScalesError, match="no tensor 'layer.7_gelu'"):
        tiny_scales.scale("layer.7_gelu")


def test_scales_file_round_trip(tiny_scales, tmp_path):
    path = tmp_path / "engine.scales.json"
    Q.save_scales(path, tiny_scales)
    data = json.loads(path.read_text())  # readable JSON, with the scales themselves too
    assert data["scale"]["embeddings"] == pytest.approx(data["amax"]["embeddings"] / 127)
    loaded = Q.load_scales(path, TINY, quantile=99.99, qkv_max=True, sequence_length=16)
    assert loaded == tiny_scales


@pytest.mark.parametrize("ask, message", [
    ({"quantile": 99.999}, "made with quantile 99.99, this build asks for 99.999"),
    ({"qkv_max": False}, "made with qkv_max True, this build asks for False"),
    ({"sequence_length": 384}, "made with sequence_length 16, this build asks for 384"),
])
def test_a_scales_file_made_another_way_is_refused(tiny_scales, tmp_path, ask, message):
    path = tmp_path / "engine.scales.json"
    Q.save_scales(path, tiny_scales)
    with pytest.raises(Q.ScalesError, match=f"{path}.*{message}.*delete it"):
        Q.load_scales(path, TINY, **ask)


def test_bad_scales_files_are_refused_in_one_line(tiny_scales, tmp_path):
    path = tmp_path / "engine.scales.json"
    Q.save_scales(path, tiny_scales)
    other = dataclasses.replace(TINY, num_attention_heads=8)
    with pytest.raises(Q.ScalesError, match=r"made for another model \(differs in "
                                            r"num_attention_heads\)"):
        Q.load_scales(path, other)
    with pytest.raises(Q.ScalesError, match="does not exist; calibrate with -j and -v"):
        Q.load_scales(tmp_path / "missing.json", TINY)
    data = json.loads(path.read_text())
    del data["amax"]["layer.1_output"]
    path.write_text(json.dumps(data))
    with pytest.raises(Q.ScalesError, match="lacks tensors or holds bad values \\(layer.1_output"):
        Q.load_scales(path, TINY)
    path.write_text("{not json")
    with pytest.raises(Q.ScalesError, match="cannot be read"):
        Q.load_scales(path, TINY)
    path.write_text(json.dumps({"format": "TRT-8601-EntropyCalibration2"}))
    with pytest.raises(Q.ScalesError, match="no bert-trt int8 scales file"):
        Q.load_scales(path, TINY)
    for error in (Q.ScalesError("x"),):
        assert "\n" not in str(error)


def test_qkv_max_takes_the_maximum_of_the_qkv_inputs_only():
    weights = random_weights(TINY, seed=3)
    recorder = Q.RangeRecorder()
    Q.record_ranges(TINY, weights, tiny_features(), [recorder], progress=False)
    for qkv_max in (False, True):
        scales = Q.scales_from_ranges(TINY, recorder.ranges, 99.0, qkv_max, 3, 16)
        for name, histogram in recorder.ranges.items():
            at_max = qkv_max and name in (names.EMBEDDINGS, "layer.0_output_layer_norm")
            want = histogram.maximum if at_max else histogram.percentile(99.0)
            assert scales.amax[name] == want, name
            assert scales.amax[name] <= histogram.maximum


# ---------------------------------------------------------------------------------------------
# The observer hook on the reference forward


class Everything(Observer):
    def __init__(self):
        self.seen = []

    def tensor(self, name, x):
        self.seen.append((name, x.shape))


def test_observer_sees_every_tensor_and_changes_nothing():
    weights = random_weights(TINY, seed=4)
    model = ReferenceModel(TINY, weights)
    features = tiny_features(windows=2)
    plain = model(*features)
    observer = Everything()
    observed = model(*features, observer=observer)
    for a, b in zip(plain, observed):
        np.testing.assert_array_equal(a, b)
    seen = [name for name, _ in observer.seen]
    assert seen[0] == names.EMBEDDINGS
    assert seen.count("layer.1_qkv") == 3  # query, key and value
    assert set(seen) == set(Q.calibrated_names(TINY))
    shapes = dict(observer.seen)
    assert shapes["layer.0_attention_probs"] == (2, 4, 16, 16)
    assert shapes["layer.0_intermediate"] == shapes["layer.0_gelu"] == (2, 16, 64)


def test_a_projection_input_replacement_reaches_the_projection_only():
    weights = random_weights(TINY, seed=5)
    for name in weights:
        if name.endswith(".bias"):
            weights[name] += 0.1
    model = ReferenceModel(TINY, weights)
    features = tiny_features(windows=1)

    class ZeroFfnDown(Observer):
        """The FFN down-projection of layer 1 multiplies zeros: it outputs its bias only."""
        def projection_input(self, projection, input_name, x):
            assert input_name == names.projection_input(int(projection[6]),
                                                        names.projection_kind(projection))
            return np.zeros_like(x) if projection == "layer.1_output" else x

        def tensor(self, name, x):
            if name == "layer.1_output":
                np.testing.assert_allclose(x, np.broadcast_to(weights["layer.1.output.bias"],
                                                              x.shape), atol=1e-7)

    changed = model(*features, observer=ZeroFfnDown())
    assert not np.allclose(changed[0], model(*features)[0])


def test_recorded_ranges_match_transformers_hidden_states():
    """Embeddings and every layer's output, as BertModel computes them, give the same maxima and
    percentiles as calibration records."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config, weights = load_weights(require(HF_MODEL))
    features = train_windows(HF_MODEL, 2)
    recorder = Q.RangeRecorder()
    Q.record_ranges(config, weights, features, [recorder], progress=False)
    model = transformers.BertModel.from_pretrained(HF_MODEL, dtype=torch.float32,
                                                   attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(features[0].astype(np.int64)),
                    token_type_ids=torch.from_numpy(features[1].astype(np.int64)),
                    attention_mask=torch.from_numpy(features[2].astype(np.int64)),
                    output_hidden_states=True)
    for index, states in enumerate(out.hidden_states):
        name = names.EMBEDDINGS if index == 0 else names.layer(index - 1, "output_layer_norm")
        values = np.abs(states.numpy())
        histogram = recorder.ranges[name]
        assert histogram.maximum == pytest.approx(float(values.max()), rel=1e-4), name
        # transformers' float32 differs from the reference by ~1e-5: far below one bin.
        assert_percentile(histogram, values, 99.99)
        assert_percentile(histogram, values, 50)


# ---------------------------------------------------------------------------------------------
# Calibration and simulation on the test models


def train_windows(model_dir, count):
    from helpers.calibrator import calibration_features
    return calibration_features(require(SQUAD_DIR / "train-v1.1.json"),
                                require(model_dir / "vocab.txt"), 384, count)


@pytest.mark.parametrize("model_dir", [TF_MODEL, HF_MODEL], ids=["tf-12x32", "hf-6x64"])
def test_calibration_on_the_test_models(model_dir, tmp_path):
    if model_dir == TF_MODEL:
        pytest.importorskip("tensorflow")
    config, weights = load_weights(require(model_dir))
    features = train_windows(model_dir, 3)
    scales = Q.calibrate_scales(config, weights, features, progress=False)
    assert set(scales.amax) == set(Q.calibrated_names(config))
    assert scales.windows == 3 and scales.sequence_length == 384
    for i in range(config.num_hidden_layers):
        assert 0 < scales.amax[names.layer(i, "attention_probs")] <= 1.0
        assert 0 < scales.amax[names.layer(i, "gelu")] < 100
    # The QKV inputs at their maximum lie above the quantile of a percentile-only calibration.
    percentile_only = Q.calibrate_scales(config, weights, features, qkv_max=False,
                                         progress=False)
    for name in Q.qkv_inputs(config):
        assert scales.amax[name] > percentile_only.amax[name]
    path = tmp_path / "model.scales.json"
    Q.save_scales(path, scales)
    assert Q.load_scales(path, config, sequence_length=384) == scales
    # int8 projections move the logits, but only a little.
    model = ReferenceModel(config, weights)
    quantized = Q.QuantizedModel(config, weights, scales)
    real = features[2][:2] == 1
    float_start, _ = model(*(f[:2] for f in features))
    int8_start, _ = quantized(*(f[:2] for f in features))
    error = np.abs(float_start - int8_start)[real]
    largest = np.abs(float_start[real]).max()
    print(f"{model_dir.name}: |start logit change| from int8: median {np.median(error):.3f}, "
          f"max {error.max():.3f}; largest |logit| {largest:.2f}")
    assert 0 < np.median(error) < 0.05 * largest and error.max() < 0.4 * largest


@pytest.mark.slow
def test_int8_simulation_keeps_f1_on_50_dev_questions():
    """The explicit int8 network of the HF model, simulated, on dev's first 50 questions."""
    from helpers.int8_simulation import SimulationOptions, simulate
    options = SimulationOptions(models=(str(require(HF_MODEL)),),
                                train_json=str(require(SQUAD_DIR / "train-v1.1.json")),
                                dev_json=str(require(SQUAD_DIR / "dev-v1.1.json")),
                                questions=50, whole="paragraph", calib_num=16,
                                progress=False)
    [result] = simulate(options)
    runs = result["runs"]
    print({name: round(run["f1"], 2) for name, run in runs.items()})
    assert result["questions"] >= 50
    assert runs["fp32"]["f1"] > 60
    for name in ("explicit", "implicit_emulated"):
        assert abs(runs[name]["f1_minus_fp32"]) < 4.0


def test_simulation_script_refuses_bad_input_in_one_line(tmp_path):
    import subprocess
    import sys
    from conftest import REPO
    script = str(REPO / "scripts" / "int8_simulation.py")
    common = ["-m", str(tmp_path), "-j", str(tmp_path / "train.json")]
    for extra, message in ((["--dev", str(tmp_path / "dev.json")], "cannot read SQuAD questions"),
                           (["--dev", "x", "--questions", "0"], "questions must be at least 1")):
        result = subprocess.run([sys.executable, script, *common, *extra], capture_output=True,
                                text=True)
        assert result.returncode == 2
        assert result.stderr.startswith("int8_simulation.py: error: ") and message in result.stderr
        assert result.stderr.count("\n") == 1
