"""Triton Python-backend model `bert_qa`: passages and questions in, answers out.

Business-logic scripting (BLS), not an ensemble: one question becomes a number of windows that
depends on its passage (1 to thousands), the windows of one request may exceed the engine's batch,
and answer selection needs each window's token maps, which live here between the two steps. So
this model cuts the windows, sends them to `bert_qa_engine` in requests of at most the engine's
batch, all at once (the engine's dynamic batcher then batches them with other requests' windows),
and chooses the answers. The pipeline is helpers/serving.py, copied beside this file by
scripts/triton_repository.py, so the server needs nothing from the project's checkout.
"""
import asyncio
import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from helpers import serving  # noqa: E402  (the copy beside this file)
from helpers.errors import BertTrtError  # noqa: E402


def _strings(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    values = tensor.as_numpy().reshape(-1)
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    except UnicodeDecodeError as e:
        raise serving.ServingError(f"the {name} is not UTF-8 text ({e.reason} at byte {e.start})") from None


class TritonPythonModel:
    def initialize(self, args):
        with open(os.path.join(HERE, "bert_qa.json")) as f:
            setup = json.load(f)
        self.options = serving.AnswerOptions(**setup["options"])
        self.engine_model = setup["engine_model"]
        self.engine_max_batch = setup["engine_max_batch"]
        self.packed = setup["packed"]
        self.tokenizer = serving.make_tokenizer(os.path.join(HERE, "vocab.txt"), self.options)

    async def _engine_logits(self, features):
        """[(start, end)] per window, from bert_qa_engine."""
        if self.packed:  # one request per window: Triton's ragged batching packs them
            chunks = [[feature] for feature in features]
        else:
            chunks = [features[i:i + self.engine_max_batch]
                      for i in range(0, len(features), self.engine_max_batch)]
        requests = []
        for chunk in chunks:
            arrays = serving.packed_inputs(chunk[0]) if self.packed else serving.padded_inputs(chunk)
            requests.append(pb_utils.InferenceRequest(
                model_name=self.engine_model, requested_output_names=["cls_squad_logits"],
                inputs=[pb_utils.Tensor(name, array) for name, array in arrays.items()]))
        responses = await asyncio.gather(*(request.async_exec() for request in requests))
        results = []
        for response in responses:
            if response.has_error():
                raise serving.ServingError(f"{self.engine_model}: {response.error().message()}")
            logits = pb_utils.get_output_tensor_by_name(response, "cls_squad_logits").as_numpy()
            results += [serving.window_logits(row, self.options.max_seq_length) for row in logits]
        return results

    async def _answer(self, request):
        passages = _strings(request, "passage")
        questions = _strings(request, "question")
        if len(passages) != len(questions):
            raise serving.ServingError(f"got {len(passages)} passages and {len(questions)} questions; "
                                       "send one passage per question")
        asked = [serving.question_windows(p, q, str(i), self.tokenizer, self.options)
                 for i, (p, q) in enumerate(zip(passages, questions))]
        all_features = [feature for _, features in asked for feature in features]
        all_results = await self._engine_logits(all_features)
        predictions = []
        for example, features in asked:
            results, all_results = all_results[:len(features)], all_results[len(features):]
            predictions.append(serving.choose_answer(example, features, results, self.options))
        outputs = [
            pb_utils.Tensor("answer", np.array([[p.text.encode("utf-8")] for p in predictions], dtype=object)),
            pb_utils.Tensor("probability", np.array([[p.probability] for p in predictions], dtype=np.float32))]
        if "nbest" in request.requested_output_names():
            outputs.append(pb_utils.Tensor("nbest", np.array(
                [[json.dumps(p.nbest).encode("utf-8")] for p in predictions], dtype=object)))
        return pb_utils.InferenceResponse(output_tensors=outputs)

    async def _respond(self, request):
        try:
            return await self._answer(request)
        except (BertTrtError, ValueError) as e:  # the request's own problem: this request fails alone
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"bert_qa: {e}"))

    async def execute(self, requests):
        return list(await asyncio.gather(*(self._respond(request) for request in requests)))
