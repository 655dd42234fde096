"""helpers/calibrator.py: merging the scales of two TensorRT calibration caches."""
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
