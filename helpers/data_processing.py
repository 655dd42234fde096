"""SQuAD examples, BERT input features and answer selection.

Follows Google BERT's run_squad.py (which NVIDIA's TensorRT demo follows too): a passage is split
on whitespace into words ("doc tokens"), every word is WordPiece-tokenized, and the passage is
cut into overlapping windows of at most max_seq_length tokens laid out as
[CLS] question [SEP] passage-window [SEP]. The model's start/end logits over a window's tokens
are projected back onto the original words, and from there onto the original characters.
"""
import collections
import functools
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.tokenization import BasicTokenizer
from helpers.errors import BertTrtError


class SquadFormatError(BertTrtError, ValueError):
    """A SQuAD file or dict that cannot be read; the message names the problem and the fix."""


class FeatureError(BertTrtError, ValueError):
    """An example that cannot be turned into model inputs with the requested sizes."""


class QuestionTruncatedWarning(UserWarning):
    """A question had more than max_query_length tokens and was cut, as BERT does."""


@dataclass
class SquadExample:
    """One question about one passage.

    doc_tokens are the passage's whitespace-separated words. answers are the gold answer texts
    (empty when unknown or unanswerable). orig_answer_text / start_position / end_position locate
    the first gold answer at word level (inclusive), for calibration or training; they are None
    when no answer offset is known, and "" / -1 / -1 for an unanswerable v2.0 question.
    """
    qas_id: str
    question_text: str
    doc_tokens: list
    answers: list = field(default_factory=list)
    orig_answer_text: str = None
    start_position: int = None
    end_position: int = None
    is_impossible: bool = False


@dataclass
class SquadFeatures:
    """Model inputs for one window of one example.

    tokens is the unpadded token sequence. token_to_orig_map maps the index of each passage
    token in `tokens` to the index of the word in example.doc_tokens it came from;
    token_is_max_context says whether this window is the one where that token has the most
    context on both sides (answers may only start at such tokens, so overlapping windows do not
    vote twice). input_ids / input_mask / segment_ids are int32 arrays of length max_seq_length.
    """
    example_index: int
    doc_span_index: int
    tokens: list
    token_to_orig_map: dict
    token_is_max_context: dict
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray


@dataclass
class Prediction:
    """The chosen answer for one example, with the n-best list it was chosen from.

    probability is the softmax of start_logit + end_logit over the n-best entries.
    null_score_diff (SQuAD v2.0 only, else None) is the null score minus the best non-null
    score; the answer is "" when it exceeds the threshold.
    """
    text: str
    probability: float
    start_logit: float
    end_logit: float
    nbest: list
    null_score_diff: float = None


def _is_whitespace(char):
    # U+202F (narrow no-break space) separates words in a few SQuAD passages.
    return char in " \t\r\n" or ord(char) == 0x202F


def context_to_doc_tokens(text):
    """Split a passage into words on whitespace.

    Returns (doc_tokens, char_to_word_offset), where char_to_word_offset[i] is the index of the
    word that character i belongs to (whitespace belongs to the word before it, or -1 at the
    start).
    """
    doc_tokens = []
    char_to_word_offset = []
    previous_is_whitespace = True
    for char in text:
        if _is_whitespace(char):
            previous_is_whitespace = True
        else:
            if previous_is_whitespace:
                doc_tokens.append(char)
            else:
                doc_tokens[-1] += char
            previous_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


def _load_squad_json(path):
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SquadFormatError(
            f"SQuAD file not found: {path} (download it with scripts/download_squad.sh)") from None
    except OSError as error:
        raise SquadFormatError(f"cannot read SQuAD file {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SquadFormatError(
            f"SQuAD file {path} is not UTF-8 (byte {error.start}); save it as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SquadFormatError(
            f"SQuAD file {path} is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}") from None


# The JSON types of the fields read, by key; "id" may be a number in hand-made files.
FIELD_TYPES = {"data": (list, "a list"), "paragraphs": (list, "a list"), "context": (str, "a string"),
               "qas": (list, "a list"), "id": ((str, int), "a string"), "question": (str, "a string"),
               "answers": (list, "a list"), "text": (str, "a string"),
               "answer_start": (int, "an integer"), "is_impossible": (bool, "true or false")}


def _field(container, key, where, source, default=KeyError):
    """container[key], checked to be of its SQuAD type; the message names its exact JSON path."""
    if not isinstance(container, dict):
        raise SquadFormatError(f"{source}: {where} must be an object, got "
                               f"{type(container).__name__}; expected the SQuAD layout "
                               f"data[].paragraphs[].{{context, qas[].{{id, question}}}}")
    if key not in container:
        if default is not KeyError:
            return default
        raise SquadFormatError(f"{source}: {where} has no \"{key}\" key; expected the SQuAD "
                               f"layout data[].paragraphs[].{{context, qas[].{{id, question}}}}")
    value = container[key]
    kind, expected = FIELD_TYPES[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        shown = json.dumps(value, ensure_ascii=False)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        path = f"{where}.{key}" if where != "the top level" else key
        raise SquadFormatError(f"{source}: {path} must be {expected}, got "
                               f"{type(value).__name__} {shown}; fix that field of the file")
    return value


def read_squad_examples(path_or_dict, version_2_with_negative=False):
    """Read a SQuAD v1.1 or v2.0 file (or its already parsed dict) into SquadExamples.

    Questions without "answers" are allowed (plain inference input). With
    version_2_with_negative, a question is unanswerable when "is_impossible" says so, or, without
    that key, when it has no answers.
    """
    if isinstance(path_or_dict, dict):
        source = "SQuAD dict"
        dataset = path_or_dict
    else:
        source = str(path_or_dict)
        dataset = _load_squad_json(path_or_dict)
    examples = []
    seen_ids = set()
    for article_index, article in enumerate(_field(dataset, "data", "the top level", source)):
        paragraphs = _field(article, "paragraphs", f"data[{article_index}]", source)
        for paragraph_index, paragraph in enumerate(paragraphs):
            where = f"data[{article_index}].paragraphs[{paragraph_index}]"
            context = _field(paragraph, "context", where, source)
            if not context.strip():
                raise SquadFormatError(f"{source}: {where} has an empty context; every passage "
                                       f"needs text")
            doc_tokens, char_to_word_offset = context_to_doc_tokens(context)
            for qa_index, qa in enumerate(_field(paragraph, "qas", where, source)):
                qa_where = f"{where}.qas[{qa_index}]"
                qas_id = str(_field(qa, "id", qa_where, source))
                if qas_id in seen_ids:
                    raise SquadFormatError(f"{source}: question id {qas_id} appears twice; "
                                           f"ids must be unique")
                seen_ids.add(qas_id)
                examples.append(_make_example(qa, qas_id, doc_tokens, char_to_word_offset,
                                              context, version_2_with_negative, qa_where, source))
    return examples


def _make_example(qa, qas_id, doc_tokens, char_to_word_offset, context,
                  version_2_with_negative, where, source):
    question_text = _field(qa, "question", where, source)
    answers = _field(qa, "answers", where, source, default=[])
    answer_texts = [_field(answer, "text", f"{where}.answers[{index}]", source)
                    for index, answer in enumerate(answers)]
    is_impossible = False
    if version_2_with_negative:
        is_impossible = _field(qa, "is_impossible", where, source, default=not answers)
    example = SquadExample(qas_id=qas_id, question_text=question_text, doc_tokens=doc_tokens,
                           answers=answer_texts, is_impossible=is_impossible)
    if is_impossible:
        example.orig_answer_text, example.start_position, example.end_position = "", -1, -1
    elif answers and "answer_start" in answers[0]:
        text = answers[0]["text"]
        start = _field(answers[0], "answer_start", f"{where}.answers[0]", source)
        if not 0 <= start < start + len(text) <= len(context):
            raise SquadFormatError(f"{source}: {where}.answers[0].answer_start is {start}, outside its "
                                   f"context of {len(context)} characters")
        example.orig_answer_text = text
        example.start_position = char_to_word_offset[start]
        example.end_position = char_to_word_offset[start + len(text) - 1]
    return example


@functools.lru_cache(maxsize=8)
def _tokenize_document(tokenizer, doc_tokens):
    # Consecutive questions usually share a passage: tokenize each passage once.
    token_to_word = []
    word_to_first_token = []
    all_doc_tokens = []
    for word_index, word in enumerate(doc_tokens):
        word_to_first_token.append(len(all_doc_tokens))
        for sub_token in tokenizer.tokenize(word):
            token_to_word.append(word_index)
            all_doc_tokens.append(sub_token)
    return tuple(all_doc_tokens), tuple(token_to_word), tuple(word_to_first_token)


def _doc_spans(num_doc_tokens, max_tokens_per_span, doc_stride):
    """(start, length) windows over the passage tokens, each doc_stride after the previous."""
    spans = []
    start = 0
    while True:
        length = min(num_doc_tokens - start, max_tokens_per_span)
        spans.append((start, length))
        if start + length == num_doc_tokens:
            return spans
        start += min(length, doc_stride)


def _is_max_context(doc_spans, span_index, position):
    """Whether span `span_index` gives token `position` its best context.

    The score is the smaller of the left and right context, plus a small bonus for longer
    spans; ties go to the earlier span.
    """
    best_score = None
    best_span_index = None
    for index, (start, length) in enumerate(doc_spans):
        end = start + length - 1
        if not start <= position <= end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score = score
            best_span_index = index
    return span_index == best_span_index


def _padded_int32(values, length):
    array = np.zeros(length, dtype=np.int32)
    array[:len(values)] = values
    return array


def convert_example_to_features(example, tokenizer, max_seq_length, doc_stride,
                                max_query_length, example_index=0):
    """Turn one example into one SquadFeatures per passage window.

    A question longer than max_query_length tokens is truncated to its first max_query_length
    tokens, as BERT's run_squad.py does (the model was fine-tuned that way); a
    QuestionTruncatedWarning naming the question id and both lengths says so. A max_seq_length
    too small for the question, the three special tokens and one passage token raises
    FeatureError.
    """
    if max_query_length < 1 or doc_stride < 1:
        raise FeatureError(f"max_query_length ({max_query_length}) and doc_stride "
                           f"({doc_stride}) must be at least 1")
    query_tokens = tokenizer.tokenize(example.question_text)
    if len(query_tokens) > max_query_length:
        warnings.warn(f"question {example.qas_id} has {len(query_tokens)} tokens; using its "
                      f"first {max_query_length} (max_query_length)", QuestionTruncatedWarning,
                      stacklevel=2)
        query_tokens = query_tokens[:max_query_length]
    # [CLS] question [SEP] ... [SEP]
    max_tokens_per_span = max_seq_length - len(query_tokens) - 3
    if max_tokens_per_span < 1:
        raise FeatureError(
            f"max_seq_length {max_seq_length} leaves no room for the passage of question "
            f"{example.qas_id} ({len(query_tokens)} question tokens + 3 special tokens); use "
            f"max_seq_length >= {len(query_tokens) + 4} or a smaller max_query_length")
    all_doc_tokens, token_to_word, _ = _tokenize_document(tokenizer, tuple(example.doc_tokens))
    if not all_doc_tokens:
        raise FeatureError(f"the passage of question {example.qas_id} has no tokens after "
                           f"cleaning; give it some text")

    doc_spans = _doc_spans(len(all_doc_tokens), max_tokens_per_span, doc_stride)
    features = []
    for span_index, (span_start, span_length) in enumerate(doc_spans):
        tokens = ["[CLS]", *query_tokens, "[SEP]"]
        segment_ids = [0] * len(tokens)
        token_to_orig_map = {}
        token_is_max_context = {}
        for doc_position in range(span_start, span_start + span_length):
            token_to_orig_map[len(tokens)] = token_to_word[doc_position]
            token_is_max_context[len(tokens)] = _is_max_context(doc_spans, span_index,
                                                                doc_position)
            tokens.append(all_doc_tokens[doc_position])
        tokens.append("[SEP]")
        segment_ids += [1] * (len(tokens) - len(segment_ids))
        input_ids = tokenizer.convert_tokens_to_ids(tokens)
        features.append(SquadFeatures(
            example_index=example_index,
            doc_span_index=span_index,
            tokens=tokens,
            token_to_orig_map=token_to_orig_map,
            token_is_max_context=token_is_max_context,
            input_ids=_padded_int32(input_ids, max_seq_length),
            input_mask=_padded_int32([1] * len(input_ids), max_seq_length),
            segment_ids=_padded_int32(segment_ids, max_seq_length)))
    return features


def _strip_spaces(text):
    """Text without spaces, and a map from its character indexes to those of `text`."""
    chars = []
    no_space_to_original = {}
    for index, char in enumerate(text):
        if char == " ":
            continue
        no_space_to_original[len(chars)] = index
        chars.append(char)
    return "".join(chars), no_space_to_original


def get_final_text(pred_text, orig_text, do_lower_case):
    """Project a predicted, normalized answer back onto the original passage text.

    pred_text is the detokenized WordPiece span (lower-cased, accents stripped, punctuation
    split off); orig_text is the original words that span covers. The answer is the part of
    orig_text that lines up with pred_text once spaces are ignored, so "(1990)" with a predicted
    "1990" gives "1990" and casing is restored. When the two do not line up character for
    character, orig_text is returned whole.
    """
    tok_text = " ".join(BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text))
    start_position = tok_text.find(pred_text)
    if start_position == -1:
        return orig_text
    end_position = start_position + len(pred_text) - 1

    orig_no_space, orig_no_space_to_original = _strip_spaces(orig_text)
    tok_no_space, tok_no_space_to_original = _strip_spaces(tok_text)
    if len(orig_no_space) != len(tok_no_space):
        return orig_text
    tok_original_to_no_space = {original: no_space for no_space, original
                                in tok_no_space_to_original.items()}

    orig_start = orig_no_space_to_original.get(tok_original_to_no_space.get(start_position))
    orig_end = orig_no_space_to_original.get(tok_original_to_no_space.get(end_position))
    if orig_start is None or orig_end is None:
        return orig_text
    return orig_text[orig_start:orig_end + 1]


def compute_softmax(scores):
    """Softmax of a list of floats, computed stably; [] for []."""
    if not scores:
        return []
    max_score = max(scores)
    exps = [math.exp(score - max_score) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def _best_indexes(logits, n_best_size):
    # A stable sort keeps the lower index first among equal logits, as run_squad.py does.
    return np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")[:n_best_size].tolist()


_Candidate = collections.namedtuple(
    "_Candidate", ["feature_index", "start_index", "end_index", "start_logit", "end_logit"])


def _candidate_text(example, feature, candidate, do_lower_case):
    tok_text = " ".join(feature.tokens[candidate.start_index:candidate.end_index + 1])
    tok_text = " ".join(tok_text.replace(" ##", "").replace("##", "").split())
    first_word = feature.token_to_orig_map[candidate.start_index]
    last_word = feature.token_to_orig_map[candidate.end_index]
    orig_text = " ".join(example.doc_tokens[first_word:last_word + 1])
    return get_final_text(tok_text, orig_text, do_lower_case)


def get_predictions(example, features, results, n_best_size, max_answer_length,
                    do_lower_case=True, version_2_with_negative=False,
                    null_score_diff_threshold=0.0):
    """Choose the answer to `example` from the model's logits over its features.

    results[i] is (start_logits, end_logits) for features[i], each of length max_seq_length.
    In every feature the n_best_size highest start and end logits are paired; a pair counts
    when both ends are passage tokens, the start has its maximum context in this feature, and
    the span is at most max_answer_length tokens. Candidates from all features are ranked by
    start_logit + end_logit and mapped to text; repeated texts are kept once. For SQuAD v2.0
    the null answer ([CLS], index 0) of the feature with the smallest null score competes too,
    and the answer is "" when null score minus best non-null score > null_score_diff_threshold.
    """
    if not features or len(features) != len(results):
        raise ValueError(f"question {example.qas_id}: got {len(features)} features and "
                         f"{len(results)} results; need one result per feature, at least one")
    candidates = []
    null_score = None
    null_start_logit = null_end_logit = 0.0
    null_feature_index = 0
    for feature_index, (feature, (start_logits, end_logits)) in enumerate(zip(features, results)):
        start_logits = np.asarray(start_logits, dtype=np.float64).tolist()
        end_logits = np.asarray(end_logits, dtype=np.float64).tolist()
        if version_2_with_negative:
            feature_null_score = start_logits[0] + end_logits[0]
            if null_score is None or feature_null_score < null_score:
                null_score = feature_null_score
                null_feature_index = feature_index
                null_start_logit, null_end_logit = start_logits[0], end_logits[0]
        end_indexes = _best_indexes(end_logits, n_best_size)
        for start_index in _best_indexes(start_logits, n_best_size):
            if start_index not in feature.token_to_orig_map:
                continue
            if not feature.token_is_max_context.get(start_index, False):
                continue
            for end_index in end_indexes:
                if end_index not in feature.token_to_orig_map:
                    continue
                if not 0 <= end_index - start_index < max_answer_length:
                    continue
                candidates.append(_Candidate(feature_index, start_index, end_index,
                                             start_logits[start_index], end_logits[end_index]))
    if version_2_with_negative:
        candidates.append(_Candidate(null_feature_index, 0, 0, null_start_logit, null_end_logit))
    candidates.sort(key=lambda candidate: candidate.start_logit + candidate.end_logit,
                    reverse=True)

    nbest = []
    seen_texts = set()
    for candidate in candidates:
        if len(nbest) >= n_best_size:
            break
        if candidate.start_index > 0:
            text = _candidate_text(example, features[candidate.feature_index], candidate,
                                   do_lower_case)
        else:
            text = ""
        if text in seen_texts:
            continue
        seen_texts.add(text)
        nbest.append({"text": text, "start_logit": candidate.start_logit,
                      "end_logit": candidate.end_logit})
    if version_2_with_negative and "" not in seen_texts:
        nbest.append({"text": "", "start_logit": null_start_logit, "end_logit": null_end_logit})
    if not nbest:
        # No valid span at all (e.g. every logit points at the question): say so in the text
        # rather than fail, as run_squad.py does.
        nbest.append({"text": "empty", "start_logit": 0.0, "end_logit": 0.0})

    probabilities = compute_softmax([entry["start_logit"] + entry["end_logit"]
                                     for entry in nbest])
    nbest = [{"text": entry["text"], "probability": probability,
              "start_logit": entry["start_logit"], "end_logit": entry["end_logit"]}
             for entry, probability in zip(nbest, probabilities)]

    if not version_2_with_negative:
        return _prediction_from_entry(nbest[0], nbest)
    best_non_null = next((entry for entry in nbest if entry["text"]), None)
    if best_non_null is None:
        null_entry = next(entry for entry in nbest if not entry["text"])
        return _prediction_from_entry(null_entry, nbest, null_score_diff=math.inf)
    score_diff = null_score - best_non_null["start_logit"] - best_non_null["end_logit"]
    if score_diff > null_score_diff_threshold:
        null_entry = next(entry for entry in nbest if not entry["text"])
        return _prediction_from_entry(null_entry, nbest, null_score_diff=score_diff)
    return _prediction_from_entry(best_non_null, nbest, null_score_diff=score_diff)


def _prediction_from_entry(entry, nbest, null_score_diff=None):
    return Prediction(text=entry["text"], probability=entry["probability"],
                      start_logit=entry["start_logit"], end_logit=entry["end_logit"],
                      nbest=nbest, null_score_diff=null_score_diff)
