"""The official SQuAD v1.1 and v2.0 evaluation metrics as importable functions, plus reading
and atomically writing the JSON files they use.

squad/evaluate-v1.1.py and squad/evaluate-v2.0.py are thin command lines over this module (their
file names have dashes, so tests and front ends import from here instead). The definitions are
those of the official scripts: answers are compared after normalize_answer; exact match and
token-level F1 take the maximum over the gold answers. The two versions differ in one corner:
v1.1 scores F1 0 when both normalized answers are empty, v2.0 scores it 1 (an empty answer is a
correct "no answer"), and v2.0 drops gold answers that normalize to nothing.

One deliberate difference from the official v2.0 script: a question without a prediction scores
0 and counts in the totals (the v1.1 rule), instead of being left out of the totals (which makes
the official v2.0 script crash in its HasAns/NoAns breakdown).
"""
import collections
import json
import re
import string
from pathlib import Path
from helpers.errors import BertTrtError


class EvaluationError(BertTrtError, ValueError):
    """An evaluation input that cannot be used; the message names the problem and the fix."""


_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction, ground_truth):
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction, ground_truth):
    """Token F1 of the normalized answers (SQuAD v1.1: 0 when nothing is shared)."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score_v2(prediction, ground_truth):
    """Token F1 as SQuAD v2.0 defines it: when either answer is empty, 1 if both are."""
    if not normalize_answer(prediction) or not normalize_answer(ground_truth):
        return float(normalize_answer(prediction) == normalize_answer(ground_truth))
    return f1_score(prediction, ground_truth)


def metric_max_over_ground_truths(metric, prediction, ground_truths):
    return max(metric(prediction, ground_truth) for ground_truth in ground_truths)


def iter_questions(dataset):
    """(question id, gold answer texts) for every question of a SQuAD "data" list."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"], [answer["text"] for answer in qa["answers"]]


def missing_predictions(dataset, predictions):
    """Ids of the questions that have no prediction, in dataset order."""
    return [qas_id for qas_id, _ in iter_questions(dataset) if qas_id not in predictions]


def evaluate_v1(dataset, predictions):
    """{"exact_match", "f1"} in percent over all questions; a missing prediction scores 0."""
    exact_match = f1 = 0.0
    total = 0
    for qas_id, ground_truths in iter_questions(dataset):
        total += 1
        if qas_id not in predictions:
            continue
        prediction = predictions[qas_id]
        exact_match += metric_max_over_ground_truths(exact_match_score, prediction,
                                                     ground_truths)
        f1 += metric_max_over_ground_truths(f1_score, prediction, ground_truths)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


def has_answer_by_id(dataset):
    """{question id: whether it has a gold answer} (v2.0: no answers means unanswerable)."""
    return {qas_id: bool(ground_truths) for qas_id, ground_truths in iter_questions(dataset)}


def raw_scores_v2(dataset, predictions):
    """Per-question exact match and F1 (v2.0 definitions), before any no-answer threshold."""
    exact_scores = {}
    f1_scores = {}
    for qas_id, ground_truths in iter_questions(dataset):
        ground_truths = [text for text in ground_truths if normalize_answer(text)] or [""]
        if qas_id not in predictions:
            exact_scores[qas_id] = f1_scores[qas_id] = 0.0
            continue
        prediction = predictions[qas_id]
        exact_scores[qas_id] = metric_max_over_ground_truths(exact_match_score, prediction,
                                                             ground_truths)
        f1_scores[qas_id] = metric_max_over_ground_truths(f1_score_v2, prediction,
                                                          ground_truths)
    return exact_scores, f1_scores


def apply_no_answer_threshold(scores, na_probs, has_answer, na_prob_thresh):
    """Scores after answering "" wherever the no-answer probability exceeds the threshold."""
    return {qas_id: float(not has_answer[qas_id]) if na_probs[qas_id] > na_prob_thresh else score
            for qas_id, score in scores.items()}


def _percentages(exact_scores, f1_scores, qas_ids):
    total = len(qas_ids)
    return {"exact": 100.0 * sum(exact_scores[qas_id] for qas_id in qas_ids) / total,
            "f1": 100.0 * sum(f1_scores[qas_id] for qas_id in qas_ids) / total,
            "total": total}


def find_best_threshold(predictions, scores, na_probs, has_answer):
    """Best total score (percent) and the no-answer threshold that reaches it.

    Questions are visited in increasing no-answer probability; answering every question up to
    a threshold and "" beyond it, the score starts as "all questions unanswered" and changes by
    each visited question's score (answerable) or by -1 when the model answered an
    unanswerable one.
    """
    score = best_score = sum(1 for qas_id in scores if not has_answer[qas_id])
    best_threshold = 0.0
    for qas_id in sorted(na_probs, key=lambda qas_id: na_probs[qas_id]):
        if qas_id not in scores:
            continue
        if has_answer[qas_id]:
            score += scores[qas_id]
        elif predictions.get(qas_id):
            score -= 1
        if score > best_score:
            best_score = score
            best_threshold = na_probs[qas_id]
    return 100.0 * best_score / len(scores), best_threshold


def precision_recall_curve(scores, na_probs, has_answer):
    """Precision/recall points of answering in order of increasing no-answer probability.

    Returns (precisions, recalls, average_precision_percent); a point is taken wherever a
    threshold can fall, i.e. after the last of equal probabilities.
    """
    num_answerable = sum(1 for value in has_answer.values() if value)
    ordered = sorted(na_probs, key=lambda qas_id: na_probs[qas_id])
    true_positives = 0.0
    precisions = [1.0]
    recalls = [0.0]
    average_precision = 0.0
    for rank, qas_id in enumerate(ordered):
        if has_answer[qas_id]:
            true_positives += scores[qas_id]
        is_last_of_tie = (rank == len(ordered) - 1
                          or na_probs[qas_id] != na_probs[ordered[rank + 1]])
        if is_last_of_tie:
            precision = true_positives / (rank + 1)
            recall = true_positives / num_answerable
            average_precision += precision * (recall - recalls[-1])
            precisions.append(precision)
            recalls.append(recall)
    return precisions, recalls, 100.0 * average_precision


def evaluate_v2(dataset, predictions, na_probs=None, na_prob_thresh=1.0):
    """The official v2.0 evaluation dict: exact, f1, total, HasAns_*, NoAns_*, and with
    na_probs also best_exact, best_exact_thresh, best_f1, best_f1_thresh."""
    has_answer = has_answer_by_id(dataset)
    exact_raw, f1_raw = raw_scores_v2(dataset, predictions)
    thresholds = na_probs if na_probs is not None else {qas_id: 0.0 for qas_id in has_answer}
    missing = [qas_id for qas_id in has_answer if qas_id not in thresholds]
    if missing:
        raise EvaluationError(f"the no-answer probability file has no entry for {len(missing)} "
                              f"questions (first: {missing[0]}); write one for every question")
    exact = apply_no_answer_threshold(exact_raw, thresholds, has_answer, na_prob_thresh)
    f1 = apply_no_answer_threshold(f1_raw, thresholds, has_answer, na_prob_thresh)
    result = _percentages(exact, f1, list(has_answer))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qas_ids = [qas_id for qas_id, value in has_answer.items() if value == wanted]
        if qas_ids:
            for key, value in _percentages(exact, f1, qas_ids).items():
                result[f"{prefix}_{key}"] = value
    if na_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = find_best_threshold(
            predictions, exact_raw, na_probs, has_answer)
        result["best_f1"], result["best_f1_thresh"] = find_best_threshold(
            predictions, f1_raw, na_probs, has_answer)
    return result


def _load_json(path, what):
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise EvaluationError(f"{what} not found: {path}") from None
    except OSError as error:
        raise EvaluationError(f"cannot read {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise EvaluationError(f"{what} {path} is not UTF-8; save it as UTF-8") from None
    except json.JSONDecodeError as error:
        raise EvaluationError(f"{what} {path} is not valid JSON: {error.msg} at line "
                              f"{error.lineno} column {error.colno}") from None


def _squad_type_error(path, where, expected, value):
    return EvaluationError(f"dataset file {path}: {where} must be {expected}, got "
                           f"{type(value).__name__} {_shortened(value)}; pass a SQuAD dev file")


def _shortened(value, limit=40):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_dataset(data, path):
    """Raise EvaluationError naming the exact JSON path (data[0].paragraphs[3].qas[1].id) of the
    first field that the metric reads and that is missing or of the wrong type."""
    def child(container, key, where, expected, kind):
        if key not in container:
            raise EvaluationError(f"dataset file {path}: {where} has no \"{key}\"; pass a SQuAD "
                                  f"dev file")
        value = container[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _squad_type_error(path, f"{where}.{key}", expected, value)
        return value

    for a, article in enumerate(data):
        if not isinstance(article, dict):
            raise _squad_type_error(path, f"data[{a}]", "an object", article)
        for p, paragraph in enumerate(child(article, "paragraphs", f"data[{a}]", "a list", list)):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise _squad_type_error(path, where, "an object", paragraph)
            for q, qa in enumerate(child(paragraph, "qas", where, "a list", list)):
                qa_where = f"{where}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise _squad_type_error(path, qa_where, "an object", qa)
                child(qa, "id", qa_where, "a string", str)
                for n, answer in enumerate(child(qa, "answers", qa_where, "a list", list)):
                    if not isinstance(answer, dict):
                        raise _squad_type_error(path, f"{qa_where}.answers[{n}]", "an object",
                                                answer)
                    child(answer, "text", f"{qa_where}.answers[{n}]", "a string", str)


def load_dataset(path):
    """The "data" list and "version" of a SQuAD file, checked to have ids and answer texts of
    the right types and at least one question."""
    dataset_json = _load_json(path, "dataset file")
    if not isinstance(dataset_json, dict) or not isinstance(dataset_json.get("data"), list):
        raise EvaluationError(f"dataset file {path} has no \"data\" list; pass a SQuAD "
                              f"dev-v1.1.json / dev-v2.0.json")
    check_dataset(dataset_json["data"], path)
    if not any(True for _ in iter_questions(dataset_json["data"])):
        raise EvaluationError(f"dataset file {path} has no questions; pass a SQuAD dev file")
    return dataset_json["data"], str(dataset_json.get("version", "unknown"))


def check_predictions_match(dataset, predictions, path):
    """Raise EvaluationError when no prediction names a question of the dataset (predictions of
    another dataset, or keyed by something else); returns the ids that match no question."""
    ids = {qas_id for qas_id, _ in iter_questions(dataset)}
    unknown = [qas_id for qas_id in predictions if qas_id not in ids]
    if len(unknown) == len(predictions):
        first = f" (first: {unknown[0]})" if unknown else ""
        raise EvaluationError(f"prediction file {path} answers none of the {len(ids)} questions "
                              f"of the dataset{first}; pass the predictions made for this "
                              f"dataset")
    return unknown


def check_expected_f1(expected_f1):
    """Raise EvaluationError unless expected_f1 is a percentage in (1, 100]: nan and values above
    100 would always fail or always pass, and 0.9 is almost surely a fraction meant as 90."""
    if not expected_f1 == expected_f1 or not 0 < expected_f1 <= 100:
        raise EvaluationError(f"expected F1 {expected_f1} is outside (0, 100]; give it in "
                              f"percent, e.g. 88.5")
    if expected_f1 <= 1:
        raise EvaluationError(f"expected F1 {expected_f1} is in percent, so this would pass "
                              f"almost anything; did you mean {expected_f1 * 100:g}?")


def load_predictions(path):
    """{question id: answer text} from a prediction file."""
    predictions = _load_json(path, "prediction file")
    if not isinstance(predictions, dict) or not all(isinstance(value, str)
                                                    for value in predictions.values()):
        raise EvaluationError(f"prediction file {path} must be a JSON object mapping question "
                              f"ids to answer strings")
    return predictions


def load_na_probs(path):
    """{question id: no-answer probability or score} from an --na-prob-file."""
    na_probs = _load_json(path, "no-answer probability file")
    if not isinstance(na_probs, dict) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool)
            for value in na_probs.values()):
        raise EvaluationError(f"no-answer probability file {path} must be a JSON object "
                              f"mapping question ids to numbers")
    for qas_id, value in na_probs.items():
        if value != value or value in (float("inf"), float("-inf")):
            raise EvaluationError(f"no-answer probability file {path} gives question {qas_id} "
                                  f"the value {value}; every value must be a finite number")
    return na_probs
