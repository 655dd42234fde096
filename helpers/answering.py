"""The question-answering pipeline every front end uses: examples in, predictions out.

The model is any function from int32 inputs to start/end logits (a TensorRT engine, the numpy
reference model, PyTorch), so the same feature packing and answer selection serve all of them.
"""
from pathlib import Path

import numpy as np
from tqdm import tqdm

from helpers.data_processing import convert_example_to_features, get_predictions
from helpers.files import write_json_atomically
from helpers.errors import BertTrtError


class AnsweringError(BertTrtError, ValueError):
    """A pipeline input or output that cannot be used; the message names the problem."""


class _PendingExample:
    """An example whose features are queued or running; done when every feature has logits."""

    def __init__(self, example, features):
        self.example = example
        self.features = features
        self.results = [None] * len(features)

    def is_done(self):
        return all(result is not None for result in self.results)


def _run_batch(rows, logits_fn, max_seq_length):
    """Run one batch of (pending example, feature index) rows and store each row's logits."""
    features = [pending.features[index] for pending, index in rows]
    input_ids = np.stack([feature.input_ids for feature in features])
    segment_ids = np.stack([feature.segment_ids for feature in features])
    input_mask = np.stack([feature.input_mask for feature in features])
    start_logits, end_logits = logits_fn(input_ids, segment_ids, input_mask)
    start_logits = np.asarray(start_logits)
    end_logits = np.asarray(end_logits)
    expected_shape = (len(rows), max_seq_length)
    if start_logits.shape != expected_shape or end_logits.shape != expected_shape:
        raise AnsweringError(f"logits_fn returned start/end logits of shapes "
                             f"{start_logits.shape} and {end_logits.shape}; expected "
                             f"{expected_shape} each")
    for row, (pending, index) in enumerate(rows):
        pending.results[index] = (start_logits[row], end_logits[row])


def answer_examples(examples, tokenizer, logits_fn, *, batch_size, max_seq_length=384,
                    doc_stride=128, max_query_length=64, n_best_size=20, max_answer_length=30,
                    version_2_with_negative=False, null_score_diff_threshold=0.0,
                    progress=False):
    """Answer every example; returns {qas_id: Prediction} in example order.

    Examples are turned into features as they are needed, and the features of consecutive
    examples are packed into batches of up to batch_size rows, so every batch but the last is
    full. logits_fn(input_ids, segment_ids, input_mask) gets int32 arrays of shape
    [b, max_seq_length] with b <= batch_size (a fixed-batch engine must pad the last batch
    itself) and returns (start_logits, end_logits), each [b, max_seq_length]. Answers are
    mapped back to passage text with the tokenizer's own do_lower_case setting.
    """
    if batch_size < 1:
        raise AnsweringError(f"batch_size must be at least 1, got {batch_size}")
    predictions = {}
    pending_examples = []
    queued_rows = []
    bar = tqdm(total=len(examples) if hasattr(examples, "__len__") else None,
               unit="question", disable=not progress)

    def finish_done_examples():
        while pending_examples and pending_examples[0].is_done():
            pending = pending_examples.pop(0)
            predictions[pending.example.qas_id] = get_predictions(
                pending.example, pending.features, pending.results, n_best_size,
                max_answer_length, do_lower_case=tokenizer.basic_tokenizer.do_lower_case,
                version_2_with_negative=version_2_with_negative,
                null_score_diff_threshold=null_score_diff_threshold)
            bar.update(1)

    def run_queued_batches(flush):
        while len(queued_rows) >= batch_size or (flush and queued_rows):
            rows = queued_rows[:batch_size]
            del queued_rows[:batch_size]
            _run_batch(rows, logits_fn, max_seq_length)
            finish_done_examples()

    with bar:
        for example_index, example in enumerate(examples):
            features = convert_example_to_features(example, tokenizer, max_seq_length,
                                                   doc_stride, max_query_length, example_index)
            pending = _PendingExample(example, features)
            pending_examples.append(pending)
            queued_rows.extend((pending, index) for index in range(len(features)))
            run_queued_batches(flush=False)
        run_queued_batches(flush=True)
    return predictions


def _write_json(path, obj):
    try:
        write_json_atomically(path, obj)
    except OSError as error:
        raise AnsweringError(f"cannot write {path}: {error.strerror} (does the folder "
                             f"{Path(path).parent} exist and is it writable?)") from None


def write_predictions(path, predictions, nbest_path=None, null_odds_path=None):
    """Write {qas_id: answer text} to path, and optionally the n-best lists and null odds.

    Each file is written atomically. The null odds ({qas_id: null_score_diff}, the
    --na-prob-file of evaluate-v2.0.py) exist only for SQuAD v2.0 predictions.
    """
    if null_odds_path is not None and any(prediction.null_score_diff is None
                                          for prediction in predictions.values()):
        raise AnsweringError("null odds exist only for SQuAD v2.0 predictions; answer with "
                             "version_2_with_negative=True or drop the null odds file")
    _write_json(path, {qas_id: prediction.text
                                  for qas_id, prediction in predictions.items()})
    if nbest_path is not None:
        _write_json(nbest_path, {qas_id: prediction.nbest
                                            for qas_id, prediction in predictions.items()})
    if null_odds_path is not None:
        _write_json(null_odds_path, {qas_id: prediction.null_score_diff
                                                for qas_id, prediction in predictions.items()})
