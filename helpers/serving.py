"""The question-answering steps that the Triton models call, in one place: text -> windows and
(windows, logits) -> answer.

The Triton model `bert_qa` (scripts/triton_models/) imports only this module of helpers/, so that
the pipeline it serves is the one inference.py runs, and a change of helpers' API is mended here
alone. It must import with numpy 1.26 too: Triton's Python-backend stub runs on numpy < 2.
"""
import numpy as np

from helpers.data_processing import (PADDING_LOGIT, AnswerOptions, SquadExample, context_to_doc_tokens,
                                     convert_example_to_features, get_predictions)
from helpers.errors import BertTrtError
from helpers.tokenization import FullTokenizer

# A longer passage is refused rather than cut into thousands of windows that hold up every other
# request: 1 MB of English is ~250,000 tokens, ~2,000 windows of 384.
MAX_PASSAGE_CHARS = 1_000_000
MAX_QUESTION_CHARS = 10_000


class ServingError(BertTrtError, ValueError):
    """A request the question-answering service cannot answer; the message says why."""


def make_tokenizer(vocab_path, options: AnswerOptions):
    return FullTokenizer(str(vocab_path), do_lower_case=options.do_lower_case)


def check_text(passage, question):
    """ServingError unless passage and question are non-empty text of a servable size."""
    if not passage.strip():
        raise ServingError("the passage is empty; send the text to answer from")
    if not question.strip():
        raise ServingError("the question is empty; send a question about the passage")
    if len(passage) > MAX_PASSAGE_CHARS:
        raise ServingError(f"the passage has {len(passage):,} characters, more than the "
                           f"{MAX_PASSAGE_CHARS:,} served; split it and ask each part")
    if len(question) > MAX_QUESTION_CHARS:
        raise ServingError(f"the question has {len(question):,} characters, more than the "
                           f"{MAX_QUESTION_CHARS:,} served")


def question_windows(passage, question, qas_id, tokenizer, options: AnswerOptions):
    """(example, features): the windows of the passage that the engine answers this question on."""
    check_text(passage, question)
    doc_tokens, _ = context_to_doc_tokens(passage)
    example = SquadExample(qas_id=qas_id, question_text=question, doc_tokens=doc_tokens)
    features = convert_example_to_features(example, tokenizer, options.max_seq_length,
                                           options.doc_stride, options.max_query_length)
    return example, features


def padded_inputs(features):
    """{input name: int32 [windows, max_seq_length]} for a padded engine."""
    return {"input_ids": np.stack([f.input_ids for f in features]),
            "segment_ids": np.stack([f.segment_ids for f in features]),
            "input_mask": np.stack([f.input_mask for f in features])}


def packed_inputs(feature):
    """{input name: int32 [1, tokens]} for one window of a packed (--varseqlen) engine, whose
    batch Triton's ragged batching assembles from one such request per window."""
    length = int(feature.input_mask.sum())
    return {"input_ids": feature.input_ids[None, :length],
            "segment_ids": feature.segment_ids[None, :length]}


def window_logits(logits, max_seq_length):
    """(start, end) logits of one window, each [max_seq_length], from an engine's output for it:
    [seq, 2, ...] padded, or [tokens, 2, ...] packed (the padding gets PADDING_LOGIT)."""
    pairs = np.asarray(logits, dtype=np.float32).reshape(-1, 2)
    padded = np.full((max_seq_length, 2), PADDING_LOGIT, np.float32)
    padded[:len(pairs)] = pairs
    return padded[:, 0], padded[:, 1]


def choose_answer(example, features, results, options: AnswerOptions):
    """The Prediction (text, probability, n-best) for `example` from each window's logits."""
    return get_predictions(example, features, results, options.n_best_size,
                           options.max_answer_length, do_lower_case=options.do_lower_case)
