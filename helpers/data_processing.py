"""SQuAD examples, BERT input features and answer selection.

Follows Google BERT's run_squad.py (which NVIDIA's TensorRT demo follows too): a passage is split
on whitespace into words ("doc tokens"), every word is WordPiece-tokenized, and the passage is
cut into overlapping windows of at most max_seq_length tokens laid out as
[CLS] question [SEP] passage-window [SEP]. The model's start/end logits over a window's tokens
are projected back onto the original words, and from there onto the original characters.
"""
import functools
import json
import math
import re
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


# The logit of positions a model did not compute (packed engines' padding, windows run at a narrower
# width): far below any real logit, so no answer starts or ends there.
PADDING_LOGIT = -10000.0


@dataclass(frozen=True)
class AnswerOptions:
    """How examples become windows and windows' logits become answers (run_squad.py's flags)."""
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0
    do_lower_case: bool = True
    nbest: bool = True  # map every n-best entry to text (for the n-best file and probabilities)


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

    tokens is the unpadded token sequence: [CLS] question [SEP] passage-window [SEP]. The
    window's passage tokens are tokens[passage_start:passage_start + len(token_to_word)];
    token_to_word[j] is the index in example.doc_tokens of the word passage token j came from,
    and max_context[j] whether this window is the one where that token has the most context on
    both sides (answers may only start at such tokens, so overlapping windows do not vote twice).
    input_ids / input_mask / segment_ids are int32 arrays of length max_seq_length.
    """
    example_index: int
    doc_span_index: int
    tokens: list
    passage_start: int
    token_to_word: np.ndarray
    max_context: np.ndarray
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray

    @property
    def length(self):
        """The number of real (unpadded) tokens."""
        return len(self.tokens)

    @property
    def token_to_orig_map(self):
        """{index in tokens: word index in example.doc_tokens}, for the passage tokens."""
        return {self.passage_start + j: int(word) for j, word in enumerate(self.token_to_word)}

    @property
    def token_is_max_context(self):
        """{index in tokens: whether this window gives that passage token its best context}."""
        return {self.passage_start + j: bool(best) for j, best in enumerate(self.max_context)}


@dataclass
class Prediction:
    """The chosen answer for one example, with the n-best list it was chosen from.

    probability is the softmax of start_logit + end_logit over the n-best entries. Both
    probability and nbest are None when the n-best list was not asked for (get_predictions
    with nbest=False), which spares mapping every candidate back to passage text.
    null_score_diff (SQuAD v2.0 only, else None) is the null score minus the best non-null
    score; the answer is "" when it exceeds the threshold.
    """
    text: str
    probability: float
    start_logit: float
    end_logit: float
    nbest: list
    null_score_diff: float = None


# The whitespace that separates words in passages: the demo's four characters and U+202F (narrow
# no-break space), which separates words in a few SQuAD passages. Other Unicode spaces stay inside words.
_WORD = re.compile("[^ \t\r\n\u202f]+")


def context_to_doc_tokens(text):
    """Split a passage into words on whitespace.

    Returns (doc_tokens, char_to_word_offset), where char_to_word_offset[i] is the index of the
    word that character i belongs to (whitespace belongs to the word before it, or -1 at the
    start).
    """
    words = list(_WORD.finditer(text))
    # Character i belongs to the last word starting at or before it: a running count of word starts.
    starts = np.zeros(len(text), np.int64)
    starts[[word.start() for word in words]] = 1
    return [word.group() for word in words], (np.cumsum(starts) - 1).tolist()


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


@dataclass(frozen=True)
class _TokenizedPassage:
    tokens: tuple        # the passage's WordPiece tokens
    ids: np.ndarray      # their vocabulary ids, int32
    token_to_word: np.ndarray  # the doc_tokens index of each token's word, int32


@functools.lru_cache(maxsize=8)
def _tokenize_document(tokenizer, doc_tokens):
    # Consecutive questions usually share a passage: tokenize each passage once.
    token_to_word = []
    all_doc_tokens = []
    for word_index, word in enumerate(doc_tokens):
        sub_tokens = tokenizer.word_pieces(word)
        token_to_word.extend([word_index] * len(sub_tokens))
        all_doc_tokens.extend(sub_tokens)
    return _TokenizedPassage(tuple(all_doc_tokens),
                             np.asarray(tokenizer.convert_tokens_to_ids(all_doc_tokens), np.int32),
                             np.asarray(token_to_word, np.int32))


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


def _max_context_spans(doc_spans, num_doc_tokens):
    """For each passage token, the index of the span that gives it its best context.

    A span's score for a token is the smaller of its left and right context, plus a small bonus
    for longer spans; ties go to the earlier span (run_squad.py's _check_is_max_context). Each
    span only scores its own tokens, so this is linear in the tokens the spans hold.
    """
    best_score = np.full(num_doc_tokens, -np.inf)
    best_span = np.full(num_doc_tokens, -1, np.int64)
    for index, (start, length) in enumerate(doc_spans):
        positions = np.arange(start, start + length)
        score = np.minimum(positions - start, start + length - 1 - positions) + 0.01 * length
        better = score > best_score[start:start + length]
        best_score[start:start + length][better] = score[better]
        best_span[start:start + length][better] = index
    return best_span


def convert_example_to_features(example, tokenizer, max_seq_length, doc_stride,
                                max_query_length, example_index=0):
    """Turn one example into one SquadFeatures per passage window.

    A question longer than max_query_length tokens is truncated to its first max_query_length
    tokens, as BERT's run_squad.py does (the model was fine-tuned that way); a
    QuestionTruncatedWarning naming the question id and both lengths says so. A max_seq_length
    too small for the question, the three special tokens and one passage token raises
    FeatureError. The work is linear in the passage's tokens, however long it is.
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
    passage = _tokenize_document(tokenizer, tuple(example.doc_tokens))
    if not passage.tokens:
        raise FeatureError(f"the passage of question {example.qas_id} has no tokens after "
                           f"cleaning; give it some text")

    doc_spans = _doc_spans(len(passage.tokens), max_tokens_per_span, doc_stride)
    best_span = _max_context_spans(doc_spans, len(passage.tokens))
    head = ["[CLS]", *query_tokens, "[SEP]"]
    head_ids = tokenizer.convert_tokens_to_ids(head)
    sep_id = head_ids[-1]
    passage_start = len(head)
    features = []
    for span_index, (span_start, span_length) in enumerate(doc_spans):
        span_end = span_start + span_length
        tokens = [*head, *passage.tokens[span_start:span_end], "[SEP]"]
        length = len(tokens)
        input_ids = np.zeros(max_seq_length, np.int32)
        input_ids[:passage_start] = head_ids
        input_ids[passage_start:length - 1] = passage.ids[span_start:span_end]
        input_ids[length - 1] = sep_id
        input_mask = np.zeros(max_seq_length, np.int32)
        input_mask[:length] = 1
        segment_ids = np.zeros(max_seq_length, np.int32)
        segment_ids[passage_start:length] = 1
        features.append(SquadFeatures(
            example_index=example_index,
            doc_span_index=span_index,
            tokens=tokens,
            passage_start=passage_start,
            token_to_word=passage.token_to_word[span_start:span_end],
            max_context=best_span[span_start:span_end] == span_index,
            input_ids=input_ids,
            input_mask=input_mask,
            segment_ids=segment_ids))
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
    return _aligned_text(pred_text, orig_text, tok_text)


def _aligned_text(pred_text, orig_text, tok_text):
    """get_final_text, given tok_text, the basic tokenization of orig_text joined by spaces."""
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
    return np.argsort(-logits, kind="stable")[:n_best_size]


class _SpanTexts:
    """The answer text of candidate spans of one example, each passage word basic-tokenized once.

    Basic tokenization works word by word (it splits on whitespace first), so the tokenization
    of a span of words is the words' tokenizations one after another, and get_final_text's
    re-tokenization of the span can reuse them.
    """

    def __init__(self, example, do_lower_case):
        self.example = example
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.word_tokens = {}

    def _basic_tokens(self, word_index):
        if word_index not in self.word_tokens:
            self.word_tokens[word_index] = self.basic_tokenizer.tokenize(
                self.example.doc_tokens[word_index])
        return self.word_tokens[word_index]

    def __call__(self, feature, start_index, end_index):
        tok_text = " ".join(feature.tokens[start_index:end_index + 1])
        pred_text = " ".join(tok_text.replace(" ##", "").replace("##", "").split())
        first_word = int(feature.token_to_word[start_index - feature.passage_start])
        last_word = int(feature.token_to_word[end_index - feature.passage_start])
        orig_text = " ".join(self.example.doc_tokens[first_word:last_word + 1])
        basic_text = " ".join(token for word in range(first_word, last_word + 1)
                              for token in self._basic_tokens(word))
        return _aligned_text(pred_text, orig_text, basic_text)


class NonFiniteLogitsError(BertTrtError, ValueError):
    """The model gave NaN or infinite logits: its weights, engine or precision are broken."""


def _scored_spans(features, results, n_best_size, max_answer_length):
    """Every candidate span of every feature, in run_squad.py's order, with its logits.

    In each feature the n_best_size highest start and end logits are paired (start rank, then
    end rank, as run_squad.py's two loops); a pair counts when both ends are passage tokens, the
    start has its maximum context in this feature, and the span is 0 to max_answer_length - 1
    tokens long. Returns (feature index, start index, end index, start logit, end logit) arrays.
    """
    columns = [[] for _ in range(5)]
    for feature_index, (feature, (start_logits, end_logits)) in enumerate(zip(features, results)):
        start_indexes = _best_indexes(start_logits, n_best_size)
        end_indexes = _best_indexes(end_logits, n_best_size)
        first, count = feature.passage_start, len(feature.token_to_word)
        start_ok = (start_indexes >= first) & (start_indexes < first + count)
        start_ok[start_ok] = feature.max_context[start_indexes[start_ok] - first]
        end_ok = (end_indexes >= first) & (end_indexes < first + count)
        span = end_indexes[None, :] - start_indexes[:, None]
        ok = start_ok[:, None] & end_ok[None, :] & (span >= 0) & (span < max_answer_length)
        start_rank, end_rank = np.nonzero(ok)  # row-major: the order of run_squad.py's loops
        starts, ends = start_indexes[start_rank], end_indexes[end_rank]
        columns[0].append(np.full(len(starts), feature_index))
        columns[1].append(starts)
        columns[2].append(ends)
        columns[3].append(start_logits[starts])
        columns[4].append(end_logits[ends])
    return [np.concatenate(column) for column in columns]


def get_predictions(example, features, results, n_best_size, max_answer_length,
                    do_lower_case=True, version_2_with_negative=False,
                    null_score_diff_threshold=0.0, nbest=True):
    """Choose the answer to `example` from the model's logits over its features.

    results[i] is (start_logits, end_logits) for features[i], each of length max_seq_length.
    In every feature the n_best_size highest start and end logits are paired; a pair counts
    when both ends are passage tokens, the start has its maximum context in this feature, and
    the span is at most max_answer_length tokens. Candidates from all features are ranked by
    start_logit + end_logit (ties: the earlier candidate) and mapped to text; repeated texts
    are kept once. For SQuAD v2.0 the null answer ([CLS], index 0) of the feature with the
    smallest null score competes too, and the answer is "" when null score minus best non-null
    score > null_score_diff_threshold. This is run_squad.py's rule, answer for answer.

    With nbest=False only the candidates the answer depends on are mapped to text (one for
    SQuAD v1.1), and the Prediction's nbest and probability are None. NaN or infinite logits
    raise NonFiniteLogitsError.
    """
    if not features or len(features) != len(results):
        raise ValueError(f"question {example.qas_id}: got {len(features)} features and "
                         f"{len(results)} results; need one result per feature, at least one")
    results = [(np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64))
               for start, end in results]
    for start_logits, end_logits in results:
        if not (np.isfinite(start_logits).all() and np.isfinite(end_logits).all()):
            raise NonFiniteLogitsError(
                f"the model gave NaN or infinite logits for question {example.qas_id}; check "
                f"the weights (helpers.weights refuses non-finite ones) and the engine's precision")
    feature_ids, start_ids, end_ids, start_values, end_values = _scored_spans(
        features, results, n_best_size, max_answer_length)
    null_score = null_start_logit = null_end_logit = None
    if version_2_with_negative:
        null_scores = [start[0] + end[0] for start, end in results]
        null_feature = int(np.argmin(null_scores))  # the first of equal minima, as run_squad.py
        null_score = null_scores[null_feature]
        null_start_logit = float(results[null_feature][0][0])
        null_end_logit = float(results[null_feature][1][0])
        # The null candidate comes after every span, so it loses ties to them.
        feature_ids = np.append(feature_ids, null_feature)
        start_ids = np.append(start_ids, 0)
        end_ids = np.append(end_ids, 0)
        start_values = np.append(start_values, null_start_logit)
        end_values = np.append(end_values, null_end_logit)
    order = np.argsort(-(start_values + end_values), kind="stable")
    span_text = _SpanTexts(example, do_lower_case)

    def ranked_entries():
        """n-best entries, best first: distinct texts, at most n_best_size of them."""
        seen_texts = set()
        for candidate in order:
            if len(seen_texts) >= n_best_size:
                return
            start_index = int(start_ids[candidate])
            text = (span_text(features[feature_ids[candidate]], start_index, int(end_ids[candidate]))
                    if start_index > 0 else "")
            if text in seen_texts:
                continue
            seen_texts.add(text)
            yield {"text": text, "start_logit": float(start_values[candidate]),
                   "end_logit": float(end_values[candidate])}

    if not nbest:
        return _answer_only(ranked_entries(), version_2_with_negative, null_score,
                            null_start_logit, null_end_logit, null_score_diff_threshold)

    entries = list(ranked_entries())
    if version_2_with_negative and all(entry["text"] for entry in entries):
        entries.append({"text": "", "start_logit": null_start_logit, "end_logit": null_end_logit})
    if not entries:
        # No valid span at all (e.g. every logit points at the question): say so in the text
        # rather than fail, as run_squad.py does.
        entries.append({"text": "empty", "start_logit": 0.0, "end_logit": 0.0})

    probabilities = compute_softmax([entry["start_logit"] + entry["end_logit"]
                                     for entry in entries])
    entries = [{"text": entry["text"], "probability": probability,
                "start_logit": entry["start_logit"], "end_logit": entry["end_logit"]}
               for entry, probability in zip(entries, probabilities)]

    if not version_2_with_negative:
        return _prediction_from_entry(entries[0], entries)
    best_non_null = next((entry for entry in entries if entry["text"]), None)
    null_entry = next(entry for entry in entries if not entry["text"])
    if best_non_null is None:
        return _prediction_from_entry(null_entry, entries, null_score_diff=math.inf)
    score_diff = float(null_score - best_non_null["start_logit"] - best_non_null["end_logit"])
    if score_diff > null_score_diff_threshold:
        return _prediction_from_entry(null_entry, entries, null_score_diff=score_diff)
    return _prediction_from_entry(best_non_null, entries, null_score_diff=score_diff)


def _answer_only(entries, version_2_with_negative, null_score, null_start_logit, null_end_logit,
                 null_score_diff_threshold):
    """get_predictions' answer, reading only as many n-best entries as it depends on."""
    if not version_2_with_negative:
        best = next(entries, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0})
        return _prediction_from_entry(dict(best, probability=None), None)
    null_entry = best_non_null = None
    for entry in entries:
        if entry["text"]:
            best_non_null = entry
            break
        null_entry = null_entry or entry
    if best_non_null is None:
        score_diff = math.inf
    else:
        score_diff = null_score - best_non_null["start_logit"] - best_non_null["end_logit"]
        if score_diff <= null_score_diff_threshold:
            return _prediction_from_entry(dict(best_non_null, probability=None), None,
                                          null_score_diff=float(score_diff))
    # The null answer wins: its entry is the first n-best entry without text.
    null_entry = null_entry or next((entry for entry in entries if not entry["text"]), None)
    null_entry = null_entry or {"text": "", "start_logit": null_start_logit,
                                "end_logit": null_end_logit}
    return _prediction_from_entry(dict(null_entry, probability=None), None,
                                  null_score_diff=float(score_diff))


def _prediction_from_entry(entry, nbest, null_score_diff=None):
    return Prediction(text=entry["text"], probability=entry["probability"],
                      start_logit=entry["start_logit"], end_logit=entry["end_logit"],
                      nbest=nbest, null_score_diff=null_score_diff)
