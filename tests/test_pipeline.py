"""The parallel, length-sorted SQuAD pipeline (helpers/answering.py) and its answer selection.

Oracles: run_squad.py's candidate loops written out plainly (for the vectorized scoring and its
tie-break), the brute-force max-context rule, and the single-process pipeline itself for the
parallel and length-sorted paths (they must not change one answer). Dev subsets keep CPU time low.
"""
import json
import os

import numpy as np
import pytest

from conftest import REPO, write_small_squad
from helpers.answering import (AnsweringError, AnswerOptions, answer_examples, make_features, plan_batches,
                               select_answers)
from helpers.data_processing import (NonFiniteLogitsError, SquadExample, _doc_spans, _max_context_spans,
                                     convert_example_to_features, get_final_text, get_predictions)
from helpers.stand_in import StandIn
from helpers.tokenization import FullTokenizer
from test_cli import assert_one_line_error, run


def run_squad_prediction(example, features, results, n_best_size, max_answer_length, version_2=False):
    """run_squad.py's write_predictions for one example, loop for loop: (text, null score diff)."""
    candidates, null = [], None
    for feature_index, (feature, (start, end)) in enumerate(zip(features, results)):
        start, end = [float(x) for x in start], [float(x) for x in end]
        if version_2 and (null is None or start[0] + end[0] < null[0]):
            null = (start[0] + end[0], feature_index, start[0], end[0])
        best_starts = sorted(range(len(start)), key=lambda i: start[i], reverse=True)[:n_best_size]
        best_ends = sorted(range(len(end)), key=lambda i: end[i], reverse=True)[:n_best_size]
        for s in best_starts:
            for e in best_ends:
                if (s in feature.token_to_orig_map and e in feature.token_to_orig_map
                        and feature.token_is_max_context.get(s) and s <= e < s + max_answer_length):
                    candidates.append((start[s] + end[e], feature_index, s, e, start[s], end[e]))
    if version_2:
        candidates.append((null[2] + null[3], null[1], 0, 0, null[2], null[3]))
    candidates.sort(key=lambda c: c[0], reverse=True)
    nbest, seen = [], set()
    for _, feature_index, s, e, start_logit, end_logit in candidates:
        if len(nbest) >= n_best_size:
            break
        text = ""
        if s > 0:
            feature = features[feature_index]
            tok_text = " ".join(" ".join(feature.tokens[s:e + 1]).replace(" ##", "").replace("##", "").split())
            words = example.doc_tokens[feature.token_to_orig_map[s]:feature.token_to_orig_map[e] + 1]
            text = get_final_text(tok_text, " ".join(words), True)
        if text not in seen:
            seen.add(text)
            nbest.append((text, start_logit + end_logit))
    if not version_2:
        return (nbest[0][0] if nbest else "empty"), None
    best_non_null = next((score for text, score in nbest if text), None)
    if best_non_null is None:
        return "", float("inf")
    diff = null[0] - best_non_null
    return ("" if diff > 0.0 else next(text for text, _ in nbest if text)), diff


@pytest.mark.parametrize("version_2", [False, True])
def test_answers_are_run_squads_with_ties_and_without_nbest(dev_examples, tokenizer, version_2):
    """Logits rounded to halves tie often; the vectorized selection must break ties as run_squad.py."""
    rng = np.random.default_rng(7)
    for example in dev_examples[:600:6]:
        features = convert_example_to_features(example, tokenizer, 128, 64, 64)
        results = [tuple(np.round(rng.normal(0, 2, (2, 128)) * 2) / 2) for _ in features]
        expected = run_squad_prediction(example, features, results, 20, 30, version_2)
        full = get_predictions(example, features, results, 20, 30, version_2_with_negative=version_2)
        fast = get_predictions(example, features, results, 20, 30, version_2_with_negative=version_2, nbest=False)
        assert (full.text, full.null_score_diff) == expected, example.qas_id
        assert (fast.text, fast.null_score_diff, fast.nbest, fast.probability) == (*expected, None, None)


def test_max_context_is_the_brute_force_rule():
    for tokens, per_span, stride in [(1000, 200, 64), (997, 61, 128), (50, 50, 10), (400, 123, 17), (3, 1, 1)]:
        spans = _doc_spans(tokens, per_span, stride)
        best = _max_context_spans(spans, tokens)
        for position in range(tokens):
            scores = [(min(position - start, start + length - 1 - position) + 0.01 * length, -index)
                      for index, (start, length) in enumerate(spans) if start <= position < start + length]
            assert best[position] == -max(scores)[1]


def _answer(examples, tokenizer, logits_fn, **options):
    return answer_examples(examples, tokenizer, logits_fn, batch_size=options.pop("batch_size", 16),
                           max_seq_length=options.pop("max_seq_length", 128), doc_stride=64, **options)


def test_parallel_pipeline_gives_the_single_process_answers(dev_examples, tokenizer):
    examples = dev_examples[:1500:5]
    one = _answer(examples, tokenizer, StandIn(0))
    two = _answer(examples, tokenizer, StandIn(0), jobs=2)
    assert list(two) == [example.qas_id for example in examples]
    assert two == one
    v2_options = dict(version_2_with_negative=True, null_score_diff_threshold=-5.0)  # null wins some
    texts = _answer(examples, tokenizer, StandIn(0), jobs=2, nbest=False, **v2_options)
    v2 = _answer(examples, tokenizer, StandIn(0), **v2_options)
    assert {k: (p.text, p.null_score_diff) for k, p in texts.items()} == \
        {k: (p.text, p.null_score_diff) for k, p in v2.items()}
    assert {p.text for p in v2.values()} & {""} and {p.text for p in v2.values()} - {""}


class WidthRecorder:
    def __init__(self):
        self.batches = []
        self.stand_in = StandIn(0)

    def __call__(self, input_ids, segment_ids, input_mask):
        self.batches.append((input_ids.shape[1], input_mask.sum(axis=1)))
        return self.stand_in(input_ids, segment_ids, input_mask)


def test_sorted_by_length_runs_each_window_at_the_smallest_width_and_keeps_the_answers(dev_examples, tokenizer):
    examples = dev_examples[:900:4]
    plain = _answer(examples, tokenizer, StandIn(0), max_seq_length=384, nbest=False)
    recorder = WidthRecorder()
    sorted_ = _answer(examples, tokenizer, recorder, max_seq_length=384, nbest=False, jobs=2,
                      sort_by_length=True, sequence_lengths=[128, 256, 384])
    assert sorted_ == plain
    widths = {width for width, _ in recorder.batches}
    assert widths == {128, 256, 384}
    for width, lengths in recorder.batches:
        assert lengths.max() <= width and lengths.min() > {128: 0, 256: 128, 384: 256}[width]
    assert sum(len(lengths) for _, lengths in recorder.batches) == sum(
        len(convert_example_to_features(example, tokenizer, 384, 64, 64)) for example in examples)


def test_pure_functions_and_the_batch_plan(dev_examples, tokenizer):
    examples = dev_examples[:30]
    options = AnswerOptions(max_seq_length=128, doc_stride=64, nbest=False)
    windows = make_features(examples, tokenizer, options)
    assert windows.input_ids.shape == (len(windows.lengths), 128)
    assert (windows.input_mask().sum(axis=1) == windows.lengths).all()
    start, end = StandIn(0)(windows.input_ids, windows.segment_ids, windows.input_mask())
    answers = select_answers(examples, windows, start, end, options)
    assert [a.text for a in answers] == [p.text for p in _answer(examples, tokenizer, StandIn(0),
                                                                  nbest=False).values()]
    plan = plan_batches(np.array([100, 300, 20, 384, 129]), 2, [128, 256, 384])
    assert plan == [(128, [0, 2]), (256, [4]), (384, [1, 3])]


def test_non_finite_logits_stop_the_run(dev_examples, tokenizer):
    def nan_logits(input_ids, segment_ids, input_mask):
        start, end = StandIn(0)(input_ids, segment_ids, input_mask)
        start[-1, 20] = np.nan
        return start, end

    with pytest.raises(NonFiniteLogitsError, match="NaN or infinite logits for question"):
        _answer(dev_examples[:20], tokenizer, nan_logits, jobs=2)


def test_memory_error_names_the_batch_and_sequence(dev_examples, tokenizer):
    def too_big(input_ids, segment_ids, input_mask):
        raise MemoryError

    with pytest.raises(AnsweringError, match="batch of 16 windows of 128 tokens; lower the batch size"):
        _answer(dev_examples[:40], tokenizer, too_big)


class DyingTokenizer(FullTokenizer):
    """Kills its process on one question, as the kernel's OOM killer would."""

    def tokenize(self, text):
        if text.startswith("DIE"):
            os._exit(3)
        return super().tokenize(text)


def test_a_worker_that_dies_is_reported_with_its_question(dev_examples, tokenizer):
    dying = DyingTokenizer(str(REPO.parent / "shared/models/minilm-l6-h384-squad11-tf/vocab.txt"))
    examples = list(dev_examples[:40])
    examples[25] = SquadExample("the-dying-one", "DIE now", examples[25].doc_tokens)
    with pytest.raises(AnsweringError, match=r"died \(exit status 3\) while on question the-dying-one"):
        _answer(examples, dying, StandIn(0), jobs=2)


def test_a_worker_error_is_the_one_line_error(dev_examples, tokenizer):
    examples = list(dev_examples[:40])
    examples[30] = SquadExample("too-long", "why " * 200, examples[30].doc_tokens)
    with pytest.raises(Exception, match="leaves no room for the passage of question too-long"):
        _answer(examples, tokenizer, StandIn(0), jobs=2, max_seq_length=64, max_query_length=100)


# ---------------------------------------------------------------- front ends

@pytest.fixture
def small_squad(tmp_path):
    return write_small_squad(tmp_path / "small.json")


def test_perf_squad_with_a_stand_in(small_squad, tf_model, tmp_path):
    result = run("perf.py", "--squad", small_squad, "-v", tf_model / "vocab.txt", "--stand-in", 1, "-b", 4,
                 "-s", 128, "-s", 384, "--sort-by-length", "--jobs", 2, "--json", tmp_path / "squad.json")
    assert result.returncode == 0, result.stderr
    row = json.loads((tmp_path / "squad.json").read_text())["squad"]
    assert row["questions"] == 16 and row["widths"] == [128, 384] and row["jobs"] == 2
    for key in ("questions_per_s", "windows_per_s", "tokens_per_s", "host_s", "engine_s", "end_to_end_s"):
        assert row[key] > 0
    assert 0 < row["padding_fraction"] < 1
    assert row["engine_s"] >= row["batches"] * 0.001


def test_perf_squad_bad_input(small_squad, tf_model):
    vocab = tf_model / "vocab.txt"
    assert_one_line_error(run("perf.py", "--squad", small_squad, "-v", vocab, "--stand-in", -1),
                          "--stand-in must be 0 or more")
    assert_one_line_error(run("perf.py", "--squad", small_squad, "-v", vocab, "--stand-in", 0, "--jobs", 0),
                          "--jobs must be 1 or more")
    assert_one_line_error(run("perf.py", "--squad", small_squad, "--stand-in", 0), "pass its vocab.txt with -v")
    assert_one_line_error(run("perf.py", "--stand-in", 0), "go with --squad")


def test_inference_squad_writes_nbest_and_checks_outputs_first(small_squad, tf_model, tmp_path):
    assert_one_line_error(run("inference.py", "-m", tf_model / "model.ckpt-4149", "-sq", small_squad, "--jobs", 0),
                          "--jobs must be 1 or more")
    missing = tmp_path / "missing" / "nbest.json"
    assert_one_line_error(run("inference.py", "-m", tf_model / "model.ckpt-4149", "-sq", small_squad,
                              "-o", tmp_path / "p.json", "--nbest-file", missing), "does not exist", "n-best")
    assert not (tmp_path / "p.json").exists()
    result = run("inference.py", "-m", tf_model / "model.ckpt-4149", "-s", 128, "-sq", small_squad, "--jobs", 2,
                 "--no-progress", "-o", tmp_path / "p.json", "--nbest-file", tmp_path / "nbest.json")
    assert result.returncode == 0, result.stderr
    predictions = json.loads((tmp_path / "p.json").read_text())
    nbest = json.loads((tmp_path / "nbest.json").read_text())
    assert list(predictions) == list(nbest) and len(predictions) == 16
    assert all(nbest[q][0]["text"] == text for q, text in predictions.items())
