"""SQuAD reading, feature windows and answer projection (helpers/data_processing.py).

Oracles: Hugging Face `tokenizers` for the [CLS] q [SEP] passage [SEP] windows and their token
to word map, hand-worked windows for the max-context rule, and the SQuAD dev answers themselves
for the projection of token spans back onto passage text.
"""
import json
import warnings

import numpy as np
import pytest

from conftest import TF_MODEL
from helpers.data_processing import (FeatureError, QuestionTruncatedWarning, SquadExample,
                                     SquadFormatError, compute_softmax, context_to_doc_tokens,
                                     convert_example_to_features, get_final_text,
                                     get_predictions, read_squad_examples)



# ---------------------------------------------------------------- reading SQuAD files

def test_context_to_doc_tokens_splits_on_whitespace_and_maps_characters():
    doc_tokens, char_to_word_offset = context_to_doc_tokens(" Hi  there\u202fyou\n(1990)")
    assert doc_tokens == ["Hi", "there", "you", "(1990)"]
    assert char_to_word_offset == [-1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                   3, 3, 3, 3, 3, 3]


def _split_by_characters(text):
    """The demo's definition, character by character: a word is a run of characters other than
    space, tab, CR, LF and U+202F; each character maps to the last word begun at or before it."""
    words, offsets, after_space = [], [], True
    for char in text:
        if char in " \t\r\n\u202f":
            after_space = True
        else:
            if after_space:
                words.append(char)
            else:
                words[-1] += char
            after_space = False
        offsets.append(len(words) - 1)
    return words, offsets


def test_context_to_doc_tokens_agrees_with_the_character_definition_on_every_dev_passage(dev_v11):
    dataset = json.loads(dev_v11.read_text(encoding="utf-8"))
    passages = [p["context"] for article in dataset["data"] for p in article["paragraphs"]]
    passages += ["", "   ", "\u202f", "a\u00a0b\u2009c", "\n\nend "]  # other Unicode spaces stay in words
    for passage in passages:
        assert context_to_doc_tokens(passage) == _split_by_characters(passage), passage[:60]


def test_read_dev_v11_first_example(dev_examples):
    assert len(dev_examples) == 10570
    first = dev_examples[0]
    assert first.qas_id == "56be4db0acb8001400a502ec"
    assert first.question_text == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first.answers == ["Denver Broncos", "Denver Broncos", "Denver Broncos"]
    assert first.orig_answer_text == "Denver Broncos"
    assert first.doc_tokens[first.start_position:first.end_position + 1] == ["Denver", "Broncos"]
    assert not first.is_impossible


def test_every_dev_answer_position_covers_its_answer_text(dev_examples):
    for example in dev_examples:
        words = " ".join(example.doc_tokens[example.start_position:example.end_position + 1])
        assert " ".join(context_to_doc_tokens(example.orig_answer_text)[0]) in words


def _dataset(context="Some passage.", qas=None):
    if qas is None:
        qas = [{"id": "q1", "question": "What?", "answers": [{"text": "Some", "answer_start": 0}]}]
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}


def test_read_v20_marks_unanswerable_questions():
    dataset = _dataset(qas=[
        {"id": "a", "question": "What?", "answers": [{"text": "passage", "answer_start": 5}],
         "is_impossible": False},
        {"id": "b", "question": "Why?", "answers": [], "is_impossible": True},
        {"id": "c", "question": "How?", "answers": []}])
    answerable, flagged, unanswered = read_squad_examples(dataset, version_2_with_negative=True)
    assert (answerable.is_impossible, answerable.start_position) == (False, 1)
    assert (flagged.is_impossible, flagged.orig_answer_text, flagged.start_position,
            flagged.end_position) == (True, "", -1, -1)
    assert unanswered.is_impossible
    assert not read_squad_examples(dataset)[2].is_impossible


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.pop("data"), '"data"'),
    (lambda d: d["data"][0].pop("paragraphs"), '"paragraphs"'),
    (lambda d: d["data"][0]["paragraphs"][0].pop("qas"), '"qas"'),
    (lambda d: d["data"][0]["paragraphs"][0].pop("context"), '"context"'),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("question"), '"question"'),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("id"), '"id"'),
    (lambda d: d["data"][0]["paragraphs"][0].update(context=" \n "), "empty context"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"].append(
        dict(d["data"][0]["paragraphs"][0]["qas"][0])), "appears twice"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start=99),
     "outside its context"),
])
def test_malformed_squad_raises_one_clear_line(tmp_path, mutate, expected):
    dataset = _dataset()
    mutate(dataset)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(dataset), encoding="utf-8")
    with pytest.raises(SquadFormatError) as caught:
        read_squad_examples(path)
    message = str(caught.value)
    assert expected in message and "\n" not in message and str(path) in message


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    (b'{"data": [\xff]}', "not UTF-8"),
    (b'{"data": [', "not valid JSON"),
])
def test_unreadable_squad_file_raises_one_clear_line(tmp_path, content, expected):
    path = tmp_path / "dev.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SquadFormatError, match=expected) as caught:
        read_squad_examples(path)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- features

@pytest.mark.slow
def test_dev_v11_yields_10833_features(dev_examples, tokenizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuestionTruncatedWarning)
        count = sum(len(convert_example_to_features(example, tokenizer, 384, 128, 64, index))
                    for index, example in enumerate(dev_examples))
    assert count == 10833


def _hand_example():
    doc_tokens, _ = context_to_doc_tokens("Unaffable tokenization (1990) was here.")
    return SquadExample(qas_id="hand", question_text="who?", doc_tokens=doc_tokens)


def test_windows_of_a_hand_checked_example(tokenizer):
    # Passage tokens 0-10: una ##ffa ##ble | token ##ization | ( 1990 ) | was | here .
    # 10 - 2 question tokens - 3 special tokens leaves 5 passage tokens per window; stride 2
    # gives windows over passage tokens 0-4, 2-6, 4-8 and 6-10. A token's max-context window
    # is the one where min(left, right) context is largest; ties (tokens 3, 5 and 7, with
    # 1 token on the short side in both windows) go to the earlier window.
    features = convert_example_to_features(_hand_example(), tokenizer, max_seq_length=10,
                                           doc_stride=2, max_query_length=64)
    question = ["[CLS]", "who", "?", "[SEP]"]
    assert [feature.tokens for feature in features] == [
        question + ["una", "##ffa", "##ble", "token", "##ization", "[SEP]"],
        question + ["##ble", "token", "##ization", "(", "1990", "[SEP]"],
        question + ["##ization", "(", "1990", ")", "was", "[SEP]"],
        question + ["1990", ")", "was", "here", ".", "[SEP]"]]
    assert [feature.token_to_orig_map for feature in features] == [
        {4: 0, 5: 0, 6: 0, 7: 1, 8: 1}, {4: 0, 5: 1, 6: 1, 7: 2, 8: 2},
        {4: 1, 5: 2, 6: 2, 7: 2, 8: 3}, {4: 2, 5: 2, 6: 3, 7: 4, 8: 4}]
    assert [feature.token_is_max_context for feature in features] == [
        {4: True, 5: True, 6: True, 7: True, 8: False},
        {4: False, 5: False, 6: True, 7: True, 8: False},
        {4: False, 5: False, 6: True, 7: True, 8: False},
        {4: False, 5: False, 6: True, 7: True, 8: True}]
    for index, feature in enumerate(features):
        assert feature.example_index == 0 and feature.doc_span_index == index
        for array in (feature.input_ids, feature.input_mask, feature.segment_ids):
            assert array.dtype == np.int32 and array.shape == (10,)
        assert feature.input_ids.tolist() == tokenizer.convert_tokens_to_ids(feature.tokens)
        assert feature.segment_ids.tolist() == [0] * 4 + [1] * 6
        assert feature.input_mask.tolist() == [1] * 10


def test_short_passage_is_zero_padded(tokenizer):
    example = SquadExample(qas_id="short", question_text="who?", doc_tokens=["Me."])
    (feature,) = convert_example_to_features(example, tokenizer, 12, 128, 64)
    assert feature.tokens == ["[CLS]", "who", "?", "[SEP]", "me", ".", "[SEP]"]
    assert feature.input_mask.tolist() == [1] * 7 + [0] * 5
    assert feature.segment_ids.tolist() == [0] * 4 + [1] * 3 + [0] * 5
    assert feature.input_ids[7:].tolist() == [0] * 5


@pytest.mark.slow
def test_windows_match_hugging_face_tokenizers(dev_examples, tokenizer):
    """Every window's ids, segment ids and token-to-word map, against `tokenizers`.

    HF's stride is the overlap between windows; BERT's doc_stride is the step, so the overlap
    is (passage tokens per window - doc_stride). Words are recovered from HF's character
    offsets into the space-joined passage.
    """
    from tokenizers import BertWordPieceTokenizer

    hf_tokenizer = BertWordPieceTokenizer(str(TF_MODEL / "vocab.txt"), lowercase=True)
    max_seq_length, doc_stride = 128, 32
    windows_checked = 0
    for example in dev_examples[:3000:6]:
        features = convert_example_to_features(example, tokenizer, max_seq_length, doc_stride,
                                               64)
        passage = " ".join(example.doc_tokens)
        _, char_to_word = context_to_doc_tokens(passage)
        num_query_tokens = len(tokenizer.tokenize(example.question_text))
        tokens_per_window = max_seq_length - num_query_tokens - 3
        hf_tokenizer.enable_truncation(max_seq_length, stride=tokens_per_window - doc_stride,
                                       strategy="only_second")
        encoding = hf_tokenizer.encode(example.question_text, passage)
        hf_windows = [encoding, *encoding.overflowing]
        assert len(features) == len(hf_windows), example.qas_id
        for feature, window in zip(features, hf_windows):
            length = int(feature.input_mask.sum())
            assert feature.input_ids[:length].tolist() == window.ids, example.qas_id
            assert feature.segment_ids[:length].tolist() == window.type_ids, example.qas_id
            hf_map = {index: char_to_word[start]
                      for index, ((start, _), type_id, token)
                      in enumerate(zip(window.offsets, window.type_ids, window.tokens))
                      if type_id == 1 and token != "[SEP]"}
            assert feature.token_to_orig_map == hf_map, example.qas_id
            windows_checked += 1
    assert windows_checked > 800


def test_long_question_is_truncated_with_a_warning(tokenizer):
    example = SquadExample(qas_id="long-q", question_text="why " * 70, doc_tokens=["Because."])
    with pytest.warns(QuestionTruncatedWarning, match=r"long-q has 70 tokens.*first 64"):
        (feature,) = convert_example_to_features(example, tokenizer, 384, 128, 64)
    assert feature.tokens == ["[CLS]"] + ["why"] * 64 + ["[SEP]", "because", ".", "[SEP]"]


def test_too_small_max_seq_length_raises(tokenizer):
    example = SquadExample(qas_id="q7", question_text="who is it?", doc_tokens=["Me."])
    assert convert_example_to_features(example, tokenizer, 8, 128, 64)  # 4 + 3 + 1 fits
    with pytest.raises(FeatureError, match=r"max_seq_length 7 .*q7.*max_seq_length >= 8") as caught:
        convert_example_to_features(example, tokenizer, 7, 128, 64)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- answer projection

@pytest.mark.parametrize("pred_text, orig_text, expected", [
    ("1990", "(1990)", "1990"),
    ("steve smith", "Steve Smith's", "Steve Smith"),
    ("krakow", "Kraków,", "Kraków"),
    ("denver broncos", "Denver Broncos", "Denver Broncos"),
    ("not there", "Denver Broncos", "Denver Broncos"),
])
def test_get_final_text(pred_text, orig_text, expected):
    assert get_final_text(pred_text, orig_text, do_lower_case=True) == expected


def test_get_final_text_without_lower_casing():
    assert get_final_text("Smith", "Smith's", do_lower_case=False) == "Smith"
    assert get_final_text("smith", "Smith's", do_lower_case=False) == "Smith's"


def test_compute_softmax_matches_numpy():
    scores = [3.0, -1.5, 0.25, 1000.0, 999.0]
    expected = np.exp(np.array(scores) - max(scores))
    expected /= expected.sum()
    assert compute_softmax(scores) == pytest.approx(expected.tolist(), rel=1e-12)
    assert compute_softmax([]) == []


def _peaked_logits(length, start_index, end_index, peak=10.0):
    start_logits = np.zeros(length, dtype=np.float32)
    end_logits = np.zeros(length, dtype=np.float32)
    start_logits[start_index] = peak
    end_logits[end_index] = peak
    return start_logits, end_logits


def test_max_context_rule_in_answer_selection(tokenizer):
    example = _hand_example()
    features = convert_example_to_features(example, tokenizer, 10, 2, 64)
    flat = _peaked_logits(10, 0, 0, peak=0.0)
    # "1990" is token 6 of window 2, where it has its maximum context...
    results = [flat, flat, _peaked_logits(10, 6, 6), flat]
    assert get_predictions(example, features, results, 20, 30).text == "1990"
    # ...and token 4 of window 3, where it does not: no answer may start there.
    results = [flat, flat, flat, _peaked_logits(10, 4, 4)]
    assert get_predictions(example, features, results, 20, 30).text != "1990"


def test_nbest_is_sorted_deduplicated_and_normalized(tokenizer):
    example = _hand_example()
    features = convert_example_to_features(example, tokenizer, 10, 2, 64)
    rng = np.random.default_rng(0)
    results = [(rng.normal(size=10), rng.normal(size=10)) for _ in features]
    prediction = get_predictions(example, features, results, n_best_size=5, max_answer_length=3)
    texts = [entry["text"] for entry in prediction.nbest]
    scores = [entry["start_logit"] + entry["end_logit"] for entry in prediction.nbest]
    assert len(texts) == len(set(texts)) <= 5
    assert scores == sorted(scores, reverse=True)
    assert sum(entry["probability"] for entry in prediction.nbest) == pytest.approx(1.0)
    assert prediction.text == texts[0] and prediction.null_score_diff is None
    assert all(len(text.split()) <= 3 for text in texts)


def test_squad_v2_null_answer_and_threshold(tokenizer):
    example = SquadExample(qas_id="v2", question_text="who?", doc_tokens=["Me", "again."])
    (feature,) = convert_example_to_features(example, tokenizer, 12, 128, 64)
    # Tokens: [CLS] who ? [SEP] me again . [SEP]; null score 3 + 2 = 5, "me" scores 1 + 1.5.
    start_logits = np.array([3.0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 0, 0])
    end_logits = np.array([2.0, 0, 0, 0, 1.5, 0, 0, 0, 0, 0, 0, 0])
    results = [(start_logits, end_logits)]
    null_wins = get_predictions(example, [feature], results, 20, 30,
                                version_2_with_negative=True)
    assert null_wins.text == "" and null_wins.null_score_diff == pytest.approx(2.5)
    assert (null_wins.start_logit, null_wins.end_logit) == (3.0, 2.0)
    answer_wins = get_predictions(example, [feature], results, 20, 30,
                                  version_2_with_negative=True, null_score_diff_threshold=2.5)
    assert answer_wins.text == "Me" and answer_wins.null_score_diff == pytest.approx(2.5)
    assert "" in [entry["text"] for entry in answer_wins.nbest]
    assert get_predictions(example, [feature], results, 20, 30).text == "Me"


def _gold_token_span(example, feature, tokenizer):
    """Token indexes of the example's first gold answer in this window, or None.

    As BERT's run_squad.py does for training: the answer's words give a token range, which is
    then narrowed to the tokens that spell the tokenized answer exactly.
    """
    in_answer = [index for index, word in feature.token_to_orig_map.items()
                 if example.start_position <= word <= example.end_position]
    words = {feature.token_to_orig_map[index] for index in in_answer}
    if words != set(range(example.start_position, example.end_position + 1)):
        return None
    answer_tokens = tokenizer.tokenize(example.orig_answer_text)
    first, last = min(in_answer), max(in_answer)
    for start in range(first, last + 1):
        end = start + len(answer_tokens) - 1
        if feature.tokens[start:end + 1] == answer_tokens and end <= last:
            return start, end
    return None


@pytest.mark.slow
def test_gold_spans_project_back_to_the_gold_answer_text(dev_examples, tokenizer):
    """Logits peaked on a gold answer's tokens must give back exactly that answer's text.

    This checks the whole projection (WordPiece detokenization, token-to-word map, undoing
    lower-casing and accent stripping in get_final_text) against the dataset itself.
    """
    checked = 0
    for example in dev_examples[::7]:
        features = convert_example_to_features(example, tokenizer, 384, 128, 64)
        spans = [(index, _gold_token_span(example, feature, tokenizer))
                 for index, feature in enumerate(features)]
        spans = [(index, span) for index, span in spans
                 if span and features[index].token_is_max_context[span[0]]]
        if not spans:
            continue  # the answer is part of a word piece, e.g. "1990" of "1990s"
        feature_index, (start, end) = spans[0]
        results = [_peaked_logits(384, 0, 0, peak=0.0) for _ in features]
        results[feature_index] = _peaked_logits(384, start, end)
        prediction = get_predictions(example, features, results, 20, 30)
        expected = " ".join(context_to_doc_tokens(example.orig_answer_text)[0])
        assert prediction.text == expected, example.qas_id
        assert prediction.start_logit == prediction.end_logit == 10.0
        assert prediction.probability > 0.99
        checked += 1
        if checked == 500:
            break
    assert checked == 500
