"""helpers/calibrator.py: merging the scales of two TensorRT calibration caches, and the casing of its features."""
import pytest

from helpers.calibrator import with_scales_from
from helpers.trt_common import TensorRTError

# The legacy calibrator's header (quantile and regression cutoff), then one scale per tensor as
# the big-endian hex of a float32, as TensorRT 8.6 wrote them on the H200.
PERCENTILE = (b"0 3ff0000000000000 3fefff2e48e8a71e\n"
              b"embeddings: 3d625ca8\nlayer.0_qkv: 3e069354\nlayer.0_output_layer_norm: 3d40c2da\n"
              b"cls_squad_logits: 3d7de92c\n")
MAXIMA = (b"TRT-8601-MinMaxCalibration\n"
          b"embeddings: 3d48bb00\nlayer.0_qkv: 3e800000\nlayer.0_output_layer_norm: 3d80a153\n"
          b"cls_squad_logits: 3e000000\n")


def test_named_scales_come_from_the_other_cache_and_the_rest_stays():
    merged = with_scales_from(PERCENTILE, MAXIMA, ["embeddings", "layer.0_output_layer_norm"])
    assert merged == (b"0 3ff0000000000000 3fefff2e48e8a71e\n"
                      b"embeddings: 3d48bb00\nlayer.0_qkv: 3e069354\nlayer.0_output_layer_norm: 3d80a153\n"
                      b"cls_squad_logits: 3d7de92c\n")
    assert with_scales_from(PERCENTILE, MAXIMA, []) == PERCENTILE


def test_a_tensor_missing_from_either_cache_is_an_error():
    with pytest.raises(TensorRTError, match="lack the tensor.* layer.5_output_layer_norm; delete them"):
        with_scales_from(PERCENTILE, MAXIMA, ["embeddings", "layer.5_output_layer_norm"])


def test_calibration_features_are_tokenized_with_the_models_casing(dev_v11, hf_model, tmp_path):
    """A cased model is calibrated on cased token ids: those of the pipeline's own features."""
    from helpers.calibrator import calibration_features
    from helpers.data_processing import convert_example_to_features, read_squad_examples
    from helpers.tokenization import FullTokenizer
    from tests.conftest import write_cased_vocab

    vocab = str(write_cased_vocab(hf_model / "vocab.txt", tmp_path / "vocab.txt"))
    cased_ids, _, _ = calibration_features(str(dev_v11), vocab, 128, 3, do_lower_case=False)
    uncased_ids, _, _ = calibration_features(str(dev_v11), vocab, 128, 3, do_lower_case=True)
    example = read_squad_examples(str(dev_v11))[0]
    expected = convert_example_to_features(example, FullTokenizer(vocab, do_lower_case=False), 128, 128, 64)
    assert cased_ids[0].tolist() == [int(i) for i in expected[0].input_ids]
    assert cased_ids.tolist() != uncased_ids.tolist()
