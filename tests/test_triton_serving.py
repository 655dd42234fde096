"""helpers/serving.py, the steps the Triton model bert_qa runs, against the pipeline inference.py
runs (helpers.answering.answer_examples) and the engine runner's packing of --varseqlen batches."""
import zlib

import numpy as np
import pytest

from helpers import serving
from helpers.answering import answer_examples
from helpers.engine_runner import pack_batch, unpack_logits
from inference import passage_examples

PASSAGE = ("Super Bowl 50 was an American football game to determine the champion of the National "
           "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion "
           "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24-10 "
           "to earn their third Super Bowl title. ") * 6  # several windows of 128 tokens
QUESTION = "Who did the Broncos defeat?"
OPTIONS = serving.AnswerOptions(max_seq_length=128, doc_stride=64)


def fake_logits(input_ids, segment_ids, input_mask):
    """Logits that depend only on each row's tokens, as a model's do."""
    rows = [np.random.default_rng(zlib.crc32(row.tobytes())).normal(size=(2, row.size)) for row in input_ids]
    return np.stack([r[0] for r in rows]).astype(np.float32), np.stack([r[1] for r in rows]).astype(np.float32)


def test_windows_and_answer_are_inference_pys(tokenizer):
    example, features = serving.question_windows(PASSAGE, QUESTION, "q", tokenizer, OPTIONS)
    assert len(features) > 2
    inputs = serving.padded_inputs(features)
    start, end = fake_logits(**inputs)
    served = serving.choose_answer(example, features, list(zip(start, end)), OPTIONS)
    local, = answer_examples(passage_examples(PASSAGE, [QUESTION]), tokenizer, fake_logits, batch_size=3,
                             max_seq_length=128, doc_stride=64).values()
    assert (served.text, served.probability, served.nbest) == (local.text, local.probability, local.nbest)


def test_packed_windows_match_the_engine_runners_packing(tokenizer):
    _, features = serving.question_windows(PASSAGE, QUESTION, "q", tokenizer, OPTIONS)
    inputs = serving.padded_inputs(features)
    input_ids, segment_ids, cu_seqlens = pack_batch(inputs["input_ids"], inputs["segment_ids"], inputs["input_mask"])
    packed_logits = np.random.default_rng(0).normal(size=(len(input_ids), 2)).astype(np.float32)
    expected = unpack_logits(packed_logits, cu_seqlens, OPTIONS.max_seq_length)
    for i, feature in enumerate(features):
        window = serving.packed_inputs(feature)
        begin, stop = cu_seqlens[i], cu_seqlens[i + 1]
        np.testing.assert_array_equal(window["input_ids"][0], input_ids[begin:stop])
        np.testing.assert_array_equal(window["segment_ids"][0], segment_ids[begin:stop])
        # Triton hands back each request's share of the packed output, [tokens, 2, 1, 1]
        start, end = serving.window_logits(packed_logits[begin:stop, :, None, None], OPTIONS.max_seq_length)
        np.testing.assert_array_equal(np.stack([start, end], axis=-1), expected[i])


@pytest.mark.parametrize("passage, question, message", [
    ("", QUESTION, "the passage is empty"),
    ("text", "\t", "the question is empty"),
    ("x" * (serving.MAX_PASSAGE_CHARS + 1), QUESTION, "more than the 1,000,000 served"),
])
def test_bad_text_is_refused(tokenizer, passage, question, message):
    with pytest.raises(serving.ServingError, match=message):
        serving.question_windows(passage, question, "q", tokenizer, OPTIONS)
