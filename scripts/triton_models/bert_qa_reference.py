"""Triton Python-backend model `bert_qa_engine` made with `triton_repository.py -m`: the numpy
reference (helpers/reference.py) in place of a TensorRT engine, with a padded engine's inputs and
output, so that the whole repository serves, and is tested, on machines without a GPU.

The weights are model.npz beside this file (converted at generation time: the server then needs
neither TensorFlow nor safetensors), and helpers/ is the copy beside it.
"""
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from helpers.errors import BertTrtError  # noqa: E402  (the copy beside this file)
from helpers.reference import ReferenceModel  # noqa: E402
from helpers.weights import load_weights  # noqa: E402

INPUTS = ("input_ids", "segment_ids", "input_mask")


class TritonPythonModel:
    def initialize(self, args):
        self.model = ReferenceModel(*load_weights(os.path.join(HERE, "model.npz")))

    def execute(self, requests):
        # The dynamic batcher hands over several requests: run their rows as one batch, as an engine
        # would, and give each request its own rows back.
        arrays = {name: [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]
                  for name in INPUTS}
        rows = [len(a) for a in arrays["input_ids"]]
        try:
            start, end = self.model(*(np.concatenate(arrays[name]) for name in INPUTS))
        except (BertTrtError, ValueError) as e:
            error = pb_utils.TritonError(f"bert_qa_engine: {e}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        logits = np.stack([start, end], axis=-1).astype(np.float32)[..., None, None]  # [B, S, 2, 1, 1]
        responses = []
        offset = 0
        for count in rows:
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("cls_squad_logits", logits[offset:offset + count])]))
            offset += count
        return responses
