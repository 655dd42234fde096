"""SQuAD v1.1 / v2.0 scoring (helpers/squad_metrics.py and the squad/evaluate-*.py commands).

Oracles: the published scores of official leaderboard predictions (../shared/data/squad/
PROVENANCE.md), hand-worked metric cases, a brute-force threshold search, and a second,
algebraically different formulation of token F1.
"""
import html
import json
import random
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from conftest import REPO, SQUAD_DIR, require
from helpers.squad_metrics import (EvaluationError, evaluate_v1, evaluate_v2,
                                   exact_match_score, f1_score, f1_score_v2, find_best_threshold,
                                   has_answer_by_id, load_dataset, normalize_answer,
                                   raw_scores_v2)

REFERENCE = SQUAD_DIR / "reference-predictions"
EXPLORER_V2 = SQUAD_DIR / "v2.0-dev-explorer-html"
EVALUATE_V1 = REPO / "squad" / "evaluate-v1.1.py"
EVALUATE_V2 = REPO / "squad" / "evaluate-v2.0.py"


def _load(path):
    return json.loads(require(path).read_text(encoding="utf-8"))


def _run(script, *args):
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


# ---------------------------------------------------------------- the metric definitions

@pytest.mark.parametrize("text, expected", [
    ("The  Cat's hat!", "cats hat"),
    ("an apple, a pear and the plum", "apple pear and plum"),
    ("Theater anthem", "theater anthem"),
    ("  A\tB\nC ", "b c"),
    ("the", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_f1_and_exact_match_by_hand():
    assert f1_score("the big red dog", "red dog barked") == pytest.approx(2 / 3)
    assert f1_score("dog dog cat", "dog cat cat") == pytest.approx(2 / 3)
    assert f1_score("Denver Broncos", "the denver broncos.") == 1.0
    assert f1_score("blue", "red") == 0.0
    assert exact_match_score("The Denver Broncos!", "denver broncos") == 1.0
    assert exact_match_score("Denver", "denver broncos") == 0.0


def test_empty_answers_differ_between_v1_and_v2():
    # v1.1 gives 0 when nothing is shared, even two empty answers; v2.0 counts agreeing
    # empty answers (a correct "no answer") as 1.
    assert f1_score("the", "a") == 0.0
    assert f1_score_v2("the", "a") == 1.0
    assert f1_score_v2("", "something") == 0.0
    assert f1_score_v2("big red dog", "red dog barked") == pytest.approx(2 / 3)


def _f1_by_dice(prediction, ground_truth):
    """Token F1 as the Dice coefficient of the two token multisets: 2|P&G| / (|P| + |G|)."""
    prediction_tokens = sorted(normalize_answer(prediction).split())
    ground_truth_tokens = sorted(normalize_answer(ground_truth).split())
    shared = 0
    i = j = 0
    while i < len(prediction_tokens) and j < len(ground_truth_tokens):
        if prediction_tokens[i] == ground_truth_tokens[j]:
            shared += 1
            i += 1
            j += 1
        elif prediction_tokens[i] < ground_truth_tokens[j]:
            i += 1
        else:
            j += 1
    if shared == 0:
        return 0.0
    return 2 * shared / (len(prediction_tokens) + len(ground_truth_tokens))


def test_f1_agrees_with_a_second_formulation():
    dataset = _load(SQUAD_DIR / "dev-v1.1.json")["data"]
    predictions = _load(REFERENCE / "v1.1-dev_Logistic-Regression-Baseline_Stanford.json")
    pairs = [(predictions[qa["id"]], answer["text"])
             for article in dataset for paragraph in article["paragraphs"]
             for qa in paragraph["qas"] if qa["id"] in predictions for answer in qa["answers"]]
    for prediction, ground_truth in random.Random(0).sample(pairs, 3000):
        assert f1_score(prediction, ground_truth) == pytest.approx(
            _f1_by_dice(prediction, ground_truth), abs=1e-12)


# ---------------------------------------------------------------- SQuAD v1.1 published scores

@pytest.mark.parametrize("predictions_file, exact_match, f1", [
    ("v1.1-dev_BERT-ensemble_Google-AI-Language.json", 86.206, 92.196),
    ("v1.1-dev_Logistic-Regression-Baseline_Stanford.json", 40.142, 50.982),
])
def test_v11_reference_predictions_score_as_published(predictions_file, exact_match, f1):
    dataset = _load(SQUAD_DIR / "dev-v1.1.json")["data"]
    result = evaluate_v1(dataset, _load(REFERENCE / predictions_file))
    assert round(result["exact_match"], 3) == exact_match
    assert round(result["f1"], 3) == f1


def test_v11_command_line_and_expected_f1():
    dataset = require(SQUAD_DIR / "dev-v1.1.json")
    predictions = require(REFERENCE / "v1.1-dev_BERT-ensemble_Google-AI-Language.json")
    run = _run(EVALUATE_V1, dataset, predictions)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert set(result) == {"exact_match", "f1"}
    assert round(result["f1"], 3) == 92.196

    assert _run(EVALUATE_V1, dataset, predictions, 92.0).returncode == 0
    too_low = _run(EVALUATE_V1, dataset, predictions, 92.5)
    assert too_low.returncode == 1
    assert "below the expected 92.500" in too_low.stdout


def test_v11_command_line_reports_missing_predictions():
    run = _run(EVALUATE_V1, require(SQUAD_DIR / "dev-v1.1.json"),
               require(REFERENCE / "v1.1-dev_Logistic-Regression-Baseline_Stanford.json"))
    assert run.returncode == 0
    assert "13 unanswered questions will receive score 0" in run.stderr


@pytest.mark.parametrize("script", [EVALUATE_V1, EVALUATE_V2])
def test_bad_input_exits_2_with_one_line(tmp_path, script):
    dataset = require(SQUAD_DIR / "dev-v1.1.json")
    not_json = tmp_path / "predictions.json"
    not_json.write_text("{oops", encoding="utf-8")
    not_a_map = tmp_path / "list.json"
    not_a_map.write_text("[1, 2]", encoding="utf-8")
    no_data = tmp_path / "no-data.json"
    no_data.write_text('{"version": "1.1"}', encoding="utf-8")
    for args, expected in (((tmp_path / "missing.json", not_json), "not found"),
                           ((dataset, not_json), "not valid JSON"),
                           ((dataset, not_a_map), "mapping question ids to answer strings"),
                           ((no_data, not_a_map), 'no "data" list')):
        run = _run(script, *args)
        assert run.returncode == 2
        assert run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr


# ---------------------------------------------------------------- SQuAD v2.0 from explorer pages

class _ExplorerPageParser(HTMLParser):
    """Paragraphs of one SQuAD explorer article page, in the SQuAD JSON layout.

    A paragraph's context is the text of its <pre>; each question is a div.qa-wrap with the id
    in data-id, the question in strong.question and every gold answer in a span.answer
    (an unanswerable question has a span.no-answer instead).
    """

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.paragraphs = []
        self.no_answer_spans = 0
        self._capture = None  # (tag, what) while inside a context, question or answer
        self._text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "pre":
            self._start_capture(tag, "context")
        elif tag == "div" and "qa-wrap" in classes:
            self.paragraphs[-1]["qas"].append(
                {"id": attrs["data-id"], "question": None, "answers": []})
        elif tag == "strong" and "question" in classes:
            self._start_capture(tag, "question")
        elif tag == "span" and "answer" in classes:
            self._start_capture(tag, "answer")
        elif tag == "span" and "no-answer" in classes:
            self.no_answer_spans += 1

    def _start_capture(self, tag, what):
        self._capture = (tag, what)
        self._text = []

    def handle_data(self, data):
        if self._capture:
            self._text.append(data)

    def handle_entityref(self, name):
        self.handle_data(f"&{name};")

    def handle_charref(self, name):
        self.handle_data(f"&#{name};")

    def handle_endtag(self, tag):
        if not self._capture or tag != self._capture[0]:
            return
        text = html.unescape("".join(self._text))
        what = self._capture[1]
        self._capture = None
        if what == "context":
            self.paragraphs.append({"context": text, "qas": []})
        elif what == "question":
            self.paragraphs[-1]["qas"][-1]["question"] = text
        else:
            self.paragraphs[-1]["qas"][-1]["answers"].append({"text": text})


def _article_pages_in_order(index_page):
    parser_links = []

    class _IndexParser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href") or ""
            if tag == "a" and href.startswith("/SQuAD-explorer/explore/v2.0/dev/") \
                    and href.endswith(".html"):
                parser_links.append(href.rsplit("/", 1)[1])

    _IndexParser().feed(index_page)
    return list(dict.fromkeys(parser_links))


@pytest.fixture(scope="module")
def dev_v20():
    """dev-v2.0 as a dataset dict, rebuilt from the official explorer's pages."""
    index_page = require(EXPLORER_V2 / "index.html").read_text(encoding="utf-8")
    data = []
    no_answer_spans = 0
    for page in _article_pages_in_order(index_page):
        parser = _ExplorerPageParser()
        parser.feed((EXPLORER_V2 / page).read_text(encoding="utf-8"))
        parser.close()
        data.append({"title": page[:-len(".html")], "paragraphs": parser.paragraphs})
        no_answer_spans += parser.no_answer_spans
    return {"version": "v2.0", "data": data, "no_answer_spans": no_answer_spans}


def test_explorer_pages_give_the_official_v20_counts(dev_v20):
    data = dev_v20["data"]
    has_answer = has_answer_by_id(data)
    assert [article["title"] for article in data[:2]] == ["Normans",
                                                         "Computational_complexity_theory"]
    assert len(data) == 35
    assert sum(len(article["paragraphs"]) for article in data) == 1204
    assert len(has_answer) == 11873
    assert sum(has_answer.values()) == 5928
    assert dev_v20["no_answer_spans"] == 11873 - 5928
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                assert qa["question"]
                assert all(answer["text"] in paragraph["context"] for answer in qa["answers"])


@pytest.mark.parametrize("predictions_file, expected", [
    ("v2.0-dev_BERT-single_Google-AI-Language.json",
     {"exact": 78.742, "f1": 81.775, "HasAns_exact": 74.106, "HasAns_f1": 80.182,
      "NoAns_exact": 83.364, "NoAns_f1": 83.364}),
    ("v2.0-dev_BiDAF-SelfAttn-ELMo-single_AI2-modified-by-Stanford.json",
     {"exact": 65.704, "f1": 67.876, "HasAns_exact": 61.420, "HasAns_f1": 65.772,
      "NoAns_exact": 69.975, "NoAns_f1": 69.975}),
])
def test_v20_reference_predictions_score_as_published(dev_v20, predictions_file, expected):
    result = evaluate_v2(dev_v20["data"], _load(REFERENCE / predictions_file))
    assert {key: round(result[key], 3) for key in expected} == expected
    assert (result["total"], result["HasAns_total"], result["NoAns_total"]) == (11873, 5928,
                                                                              5945)


def test_v20_command_line(dev_v20, tmp_path):
    data_file = tmp_path / "dev-v2.0.json"
    data_file.write_text(json.dumps({"version": "v2.0", "data": dev_v20["data"]}),
                         encoding="utf-8")
    predictions = require(REFERENCE / "v2.0-dev_BERT-single_Google-AI-Language.json")
    run = _run(EVALUATE_V2, data_file, predictions)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert round(result["exact"], 3) == 78.742 and round(result["f1"], 3) == 81.775

    out_file = tmp_path / "eval.json"
    run = _run(EVALUATE_V2, data_file, predictions, "--out-file", out_file)
    assert run.returncode == 0 and run.stdout == ""
    assert json.loads(out_file.read_text(encoding="utf-8")) == result


def _sample_v20(dev_v20, num_paragraphs=60):
    paragraphs = [paragraph for article in dev_v20["data"]
                  for paragraph in article["paragraphs"]][::20][:num_paragraphs]
    return [{"title": "sample", "paragraphs": paragraphs}]


def test_best_threshold_equals_brute_force_search(dev_v20):
    data = _sample_v20(dev_v20)
    all_predictions = _load(REFERENCE / "v2.0-dev_BERT-single_Google-AI-Language.json")
    has_answer = has_answer_by_id(data)
    predictions = {qas_id: all_predictions[qas_id] for qas_id in has_answer}
    rng = random.Random(1)
    na_probs = {qas_id: rng.choice([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
                for qas_id in has_answer}
    result = evaluate_v2(data, predictions, na_probs)
    for metric in ("exact", "f1"):
        # Answering "" above each possible threshold, and everywhere (threshold below all).
        candidates = [-1.0] + sorted(set(na_probs.values()))
        brute_force = max(evaluate_v2(data, predictions, na_probs, threshold)[metric]
                          for threshold in candidates)
        assert result[f"best_{metric}"] == pytest.approx(brute_force)
        best_threshold = result[f"best_{metric}_thresh"]
        assert evaluate_v2(data, predictions, na_probs, best_threshold)[metric] == \
            pytest.approx(brute_force)


def test_v20_na_prob_file_threshold_and_plots(dev_v20, tmp_path):
    pytest.importorskip("matplotlib")
    data = _sample_v20(dev_v20)
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    all_predictions = _load(REFERENCE / "v2.0-dev_BERT-single_Google-AI-Language.json")
    has_answer = has_answer_by_id(data)
    # A no-answer "probability" that is right for most questions.
    na_probs = {qas_id: (0.2 if answerable else 0.8) if index % 5 else 0.5
                for index, (qas_id, answerable) in enumerate(has_answer.items())}
    predictions = {qas_id: all_predictions[qas_id] for qas_id in has_answer}
    (tmp_path / "pred.json").write_text(json.dumps(predictions), encoding="utf-8")
    (tmp_path / "na.json").write_text(json.dumps(na_probs), encoding="utf-8")
    run = _run(EVALUATE_V2, data_file, tmp_path / "pred.json", "--na-prob-file",
               tmp_path / "na.json", "--na-prob-thresh", 0.6, "--out-image-dir",
               tmp_path / "images")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result == pytest.approx(
        {**evaluate_v2(data, predictions, na_probs, 0.6), **{
            key: result[key] for key in ("pr_exact_ap", "pr_f1_ap", "pr_oracle_ap")}})
    assert 0 < result["pr_exact_ap"] <= result["pr_oracle_ap"] <= 100.0
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == [
        "na_prob_hist_hasAns.png", "na_prob_hist_noAns.png", "pr_exact.png", "pr_f1.png",
        "pr_oracle.png"]


def test_v20_missing_prediction_scores_zero(dev_v20):
    data = _sample_v20(dev_v20, num_paragraphs=5)
    has_answer = has_answer_by_id(data)
    predictions = {qas_id: "" for qas_id in has_answer}
    missing = next(qas_id for qas_id, answerable in has_answer.items() if not answerable)
    complete = evaluate_v2(data, predictions)
    del predictions[missing]
    partial = evaluate_v2(data, predictions)
    assert partial["total"] == complete["total"] == len(has_answer)
    assert partial["exact"] == pytest.approx(complete["exact"] - 100.0 / len(has_answer))
    exact_raw, _ = raw_scores_v2(data, predictions)
    assert exact_raw[missing] == 0.0


def test_na_probs_must_cover_every_question(dev_v20):
    data = _sample_v20(dev_v20, num_paragraphs=2)
    has_answer = has_answer_by_id(data)
    na_probs = {qas_id: 0.5 for qas_id in list(has_answer)[1:]}
    with pytest.raises(EvaluationError, match="no entry for 1 questions"):
        evaluate_v2(data, {qas_id: "" for qas_id in has_answer}, na_probs)


def test_find_best_threshold_by_hand():
    has_answer = {"a": True, "b": False, "c": True}
    predictions = {"a": "x", "b": "y", "c": "z"}
    scores = {"a": 1.0, "b": 0.0, "c": 0.5}
    na_probs = {"a": 0.1, "b": 0.2, "c": 0.3}
    # Answering nothing: 1/3 ("b" right). Answer a: 2/3. Answer a, b: 1/3. Answer all: 1.5/3.
    assert find_best_threshold(predictions, scores, na_probs, has_answer) == (
        pytest.approx(200 / 3), 0.1)


def test_load_dataset_rejects_a_non_squad_file(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"data": [{"title": "x"}]}', encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"data\[0\] has no \"paragraphs\""):
        load_dataset(path)
