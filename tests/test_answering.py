"""The answering pipeline (helpers/answering.py): batching, prediction files, a real model.

Oracles: per-example get_predictions on directly computed features (batching must not change
anything), and Hugging Face transformers' BertForQuestionAnswering on CPU with the test model,
whose published reference predictions the pipeline must reproduce.
"""
import json

import numpy as np
import pytest

from helpers.answering import AnsweringError, answer_examples, write_predictions
from helpers.data_processing import Prediction, convert_example_to_features, get_predictions
from helpers.tokenization import BasicTokenizer, FullTokenizer

MAX_SEQ_LENGTH = 128
DOC_STRIDE = 64



def fake_logits(input_ids, segment_ids, input_mask):
    """Deterministic logits that depend only on each row's own inputs."""
    positions = np.arange(input_ids.shape[1])
    start = np.sin(input_ids * 0.37 + positions * 0.11) + segment_ids
    end = np.cos(input_ids * 0.53 - positions * 0.07) + input_mask
    return start.astype(np.float32), end.astype(np.float32)


class RecordingLogits:
    def __init__(self):
        self.batch_sizes = []

    def __call__(self, input_ids, segment_ids, input_mask):
        for array in (input_ids, segment_ids, input_mask):
            assert array.dtype == np.int32 and array.shape[1] == MAX_SEQ_LENGTH
        self.batch_sizes.append(len(input_ids))
        return fake_logits(input_ids, segment_ids, input_mask)


def _answer(examples, tokenizer, logits_fn, batch_size, **options):
    return answer_examples(examples, tokenizer, logits_fn, batch_size=batch_size,
                           max_seq_length=MAX_SEQ_LENGTH, doc_stride=DOC_STRIDE, **options)


def test_batching_does_not_change_predictions(dev_examples, tokenizer):
    examples = dev_examples[:400:10]
    num_features = [len(convert_example_to_features(example, tokenizer, MAX_SEQ_LENGTH,
                                                    DOC_STRIDE, 64)) for example in examples]
    assert max(num_features) > 2  # some examples span several batches

    one_by_one = RecordingLogits()
    by_seven = RecordingLogits()
    predictions_1 = _answer(examples, tokenizer, one_by_one, batch_size=1)
    predictions_7 = _answer(examples, tokenizer, by_seven, batch_size=7)

    total = sum(num_features)
    assert one_by_one.batch_sizes == [1] * total
    assert by_seven.batch_sizes == [7] * (total // 7) + ([total % 7] if total % 7 else [])
    assert list(predictions_1) == [example.qas_id for example in examples]
    assert predictions_7 == predictions_1

    for example in examples[:10]:
        features = convert_example_to_features(example, tokenizer, MAX_SEQ_LENGTH, DOC_STRIDE, 64)
        start, end = fake_logits(np.stack([f.input_ids for f in features]),
                                 np.stack([f.segment_ids for f in features]),
                                 np.stack([f.input_mask for f in features]))
        expected = get_predictions(example, features, list(zip(start, end)), 20, 30)
        assert predictions_7[example.qas_id] == expected


def test_options_reach_answer_selection(dev_examples, tokenizer):
    examples = dev_examples[:20]
    short = _answer(examples, tokenizer, fake_logits, 4, n_best_size=3, max_answer_length=2)
    for prediction in short.values():
        assert len(prediction.nbest) <= 3
        assert all(len(entry["text"].split()) <= 2 for entry in prediction.nbest)
    v2 = _answer(examples, tokenizer, fake_logits, 4, version_2_with_negative=True,
                 null_score_diff_threshold=-1e9)
    assert all(prediction.text == "" for prediction in v2.values())
    assert all(prediction.null_score_diff is not None for prediction in v2.values())


def test_progress_bar(dev_examples, tokenizer, capsys):
    _answer(dev_examples[:5], tokenizer, fake_logits, 8, progress=True)
    assert "5/5" in capsys.readouterr().err
    _answer(dev_examples[:5], tokenizer, fake_logits, 8)
    assert capsys.readouterr().err == ""


def test_wrong_logits_shape_is_one_clear_line(dev_examples, tokenizer):
    def transposed(input_ids, segment_ids, input_mask):
        start, end = fake_logits(input_ids, segment_ids, input_mask)
        return start.T, end.T

    with pytest.raises(AnsweringError, match=r"expected \(3, 128\) each") as caught:
        _answer(dev_examples[:3], tokenizer, transposed, 3)
    assert "\n" not in str(caught.value)
    with pytest.raises(AnsweringError, match="batch_size"):
        _answer(dev_examples[:3], tokenizer, fake_logits, 0)


# ---------------------------------------------------------------- prediction files

def _prediction(text, null_score_diff=None):
    nbest = [{"text": text, "probability": 1.0, "start_logit": 2.0, "end_logit": 3.0}]
    return Prediction(text=text, probability=1.0, start_logit=2.0, end_logit=3.0, nbest=nbest,
                      null_score_diff=null_score_diff)


def test_write_predictions(tmp_path):
    predictions = {"q1": _prediction("Denver Broncos", -1.5), "q2": _prediction("", 4.0),
                   "q3": _prediction("Kraków", 0.0)}
    write_predictions(tmp_path / "predictions.json", predictions,
                      nbest_path=tmp_path / "nbest.json", null_odds_path=tmp_path / "null.json")
    assert json.loads((tmp_path / "predictions.json").read_text(encoding="utf-8")) == {
        "q1": "Denver Broncos", "q2": "", "q3": "Kraków"}
    assert json.loads((tmp_path / "nbest.json").read_text(encoding="utf-8"))["q1"] == \
        predictions["q1"].nbest
    assert json.loads((tmp_path / "null.json").read_text(encoding="utf-8")) == {
        "q1": -1.5, "q2": 4.0, "q3": 0.0}
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "nbest.json", "null.json", "predictions.json"]


def test_write_predictions_is_all_or_nothing(tmp_path):
    path = tmp_path / "predictions.json"
    path.write_text('{"old": "file"}', encoding="utf-8")
    unserializable = {"q1": _prediction("fine"), "q2": _prediction(object())}
    with pytest.raises(TypeError):
        write_predictions(path, unserializable)
    assert path.read_text(encoding="utf-8") == '{"old": "file"}'
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.json"]


def test_write_predictions_errors_are_one_line(tmp_path):
    with pytest.raises(AnsweringError, match="does the folder .* exist") as caught:
        write_predictions(tmp_path / "missing" / "predictions.json", {"q": _prediction("a")})
    assert "\n" not in str(caught.value)
    with pytest.raises(AnsweringError, match="only for SQuAD v2.0"):
        write_predictions(tmp_path / "p.json", {"q": _prediction("a")},
                          null_odds_path=tmp_path / "null.json")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- a real model

def _aligns_character_for_character(example):
    """Whether lower-casing and punctuation splitting keep every non-space character.

    Where they do not (dropped control characters, length-changing case maps), BERT's
    get_final_text falls back to whole words while the reference run used character offsets.
    """
    passage = " ".join(example.doc_tokens)
    tokens = BasicTokenizer(do_lower_case=True).tokenize(passage)
    return len("".join(tokens)) == len("".join(passage.split()))


@pytest.mark.slow
def test_hugging_face_model_reproduces_reference_predictions(hf_model, dev_examples):
    """BertForQuestionAnswering (CPU, float32) through answer_examples gives the answers of
    the GPU reference run.

    Only single-window questions whose passage aligns character for character are compared:
    the reference run selected answers across windows and mapped them to text its own way
    (it can pick a start outside its max-context window, and keeps character offsets where
    get_final_text falls back to whole words).
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertForQuestionAnswering.from_pretrained(
        str(hf_model), dtype=torch.float32).eval()
    tokenizer = FullTokenizer(str(hf_model / "vocab.txt"))
    reference = json.loads((hf_model / "reference_predictions_fp32.json").read_text(
        encoding="utf-8"))

    def model_logits(input_ids, segment_ids, input_mask):
        # Padding is masked out, so running only up to the longest row changes nothing.
        length = int(input_mask.sum(axis=1).max())
        with torch.no_grad():
            output = model(input_ids=torch.from_numpy(input_ids[:, :length]).long(),
                           token_type_ids=torch.from_numpy(segment_ids[:, :length]).long(),
                           attention_mask=torch.from_numpy(input_mask[:, :length]).long())
        start = np.full(input_ids.shape, -10000.0, dtype=np.float32)
        end = np.full(input_ids.shape, -10000.0, dtype=np.float32)
        start[:, :length] = output.start_logits.numpy()
        end[:, :length] = output.end_logits.numpy()
        return start, end

    examples = [example for example in dev_examples[::97]
                if len(convert_example_to_features(example, tokenizer, 384, 128, 64)) == 1
                and _aligns_character_for_character(example)][:40]
    assert len(examples) == 40
    predictions = answer_examples(examples, tokenizer, model_logits, batch_size=8)
    assert {qas_id: prediction.text for qas_id, prediction in predictions.items()} == \
        {example.qas_id: reference[example.qas_id] for example in examples}
