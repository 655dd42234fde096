"""BERT's WordPiece tokenizer, token for token the algorithm of Google's original tokenization.py.

The checkpoints were pre-trained and fine-tuned with Google's tokenizer, so this module keeps its
public API whole (FullTokenizer, BasicTokenizer, WordpieceTokenizer, load_vocab, convert_by_vocab,
convert_tokens_to_ids, convert_ids_to_tokens, whitespace_tokenize, convert_to_unicode,
printable_text, validate_case_matches_checkpoint) and its exact behaviour. On all of SQuAD v1.1 it gives the same ids as Hugging Face `tokenizers`; the inputs on
which the two differ, where this module follows Google, are:

- Private-use characters (category Co): kept, so the word becomes [UNK]; Hugging Face drops them.
  Only categories Cc and Cf count as control characters here.
- A word-final capital sigma lower-cases to final sigma (Python's str.lower()); Hugging Face
  lower-cases character by character and gets the medial form.
- Words of 101 to 200 characters are split into word pieces; Hugging Face makes them [UNK].
- Special tokens written in the text, such as "[SEP]", are split like any other text
  ("[", "sep", "]"); Hugging Face matches them as special tokens.
"""
import collections
import functools
import re
import unicodedata
from helpers.errors import BertTrtError


class TokenizationError(BertTrtError, ValueError):
    """A vocabulary or token that the tokenizer cannot use; the message says what to fix."""


def convert_to_unicode(text):
    """Returns `text` as str, decoding bytes as UTF-8 and dropping bytes that are not."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise TokenizationError(f"cannot tokenize a {type(text).__name__}: pass str or UTF-8 bytes")


def printable_text(text):
    """`text` as str for printing or logging (Python 3: the same as convert_to_unicode)."""
    return convert_to_unicode(text)


# Google's pre-trained checkpoint folders whose casing is known, for validate_case_matches_checkpoint.
_UNCASED_CHECKPOINTS = ("uncased_L-24_H-1024_A-16", "uncased_L-12_H-768_A-12", "multilingual_L-12_H-768_A-12",
                        "chinese_L-12_H-768_A-12")
_CASED_CHECKPOINTS = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16", "multi_cased_L-12_H-768_A-12")


def validate_case_matches_checkpoint(do_lower_case, init_checkpoint):
    """Raises TokenizationError when `init_checkpoint` is in one of Google's pre-trained folders
    (".../uncased_L-12_H-768_A-12/bert_model.ckpt") whose casing is not `do_lower_case`. Other
    checkpoints say nothing by their name; helpers.models.model_casing reads their files."""
    match = re.match(r"^.*?([A-Za-z0-9_-]+)/bert_model\.ckpt", init_checkpoint or "")
    if match is None:
        return
    name = match.group(1)
    if name in _UNCASED_CHECKPOINTS and not do_lower_case:
        wanted, flag = "uncased", "--do-lower-case"
    elif name in _CASED_CHECKPOINTS and do_lower_case:
        wanted, flag = "cased", "--no-do-lower-case"
    else:
        return
    raise TokenizationError(f"checkpoint {init_checkpoint} is Google's {wanted} {name}, but do_lower_case is "
                            f"{bool(do_lower_case)}; pass {flag}")


def load_vocab(vocab_file):
    """Loads a vocab.txt (one token per line, UTF-8) into an OrderedDict token -> line number."""
    try:
        with open(vocab_file, "rb") as reader:
            data = reader.read()
    except OSError as error:
        raise TokenizationError(
            f"cannot read vocab file {vocab_file}: {error.strerror}; "
            "pass the vocab.txt that came with the model") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TokenizationError(
            f"vocab file {vocab_file} is not UTF-8 text (bad byte at offset {error.start}); "
            "pass the vocab.txt that came with the model") from None
    if not text:
        raise TokenizationError(
            f"vocab file {vocab_file} is empty; pass the vocab.txt that came with the model")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last token
    vocab = collections.OrderedDict()
    for index, line in enumerate(lines):
        token = line.strip()
        if token in vocab:
            # Google's loader silently kept the last line: one embedding row would never be used
            # and the token count would no longer match the model's vocab_size.
            raise TokenizationError(
                f"vocab file {vocab_file}: line {index + 1} repeats the token {token!r} of line "
                f"{vocab[token] + 1}; pass the vocab.txt that came with the model")
        vocab[token] = index
    return vocab


def whitespace_tokenize(text):
    """Splits text on any run of Unicode whitespace."""
    return text.split()


def convert_by_vocab(vocab, items):
    """[vocab[item] for item in items]: tokens to ids with a vocab, or ids to tokens with its inverse."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab, tokens):
    """Token ids of `tokens` in `vocab` (token -> id, as load_vocab gives)."""
    try:
        return convert_by_vocab(vocab, tokens)
    except KeyError as error:
        raise TokenizationError(
            f"token {error.args[0]!r} is not in the vocabulary; "
            "pass tokens produced by this tokenizer's tokenize()") from None


def convert_ids_to_tokens(inv_vocab, ids):
    """Tokens of `ids` in `inv_vocab` (id -> token, FullTokenizer.inv_vocab)."""
    try:
        return convert_by_vocab(inv_vocab, ids)
    except KeyError as error:
        raise TokenizationError(
            f"token id {error.args[0]!r} is not in the vocabulary of {len(inv_vocab)} "
            "tokens; pass ids produced by this tokenizer") from None


class FullTokenizer:
    """End-to-end tokenization: basic tokenization, then WordPiece on each resulting word."""

    # Passages repeat their words ("the", names, numbers): word_pieces() remembers up to this many.
    WORD_CACHE_SIZE = 1 << 17

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        if self.wordpiece_tokenizer.unk_token not in self.vocab:
            raise TokenizationError(
                f"vocab file {vocab_file} has no {self.wordpiece_tokenizer.unk_token} token; "
                "pass a BERT WordPiece vocab.txt")
        self._word_cache = {}  # a plain dict: the tokenizer stays picklable for worker processes

    def tokenize(self, text):
        return [sub_token
                for token in self.basic_tokenizer.tokenize(text)
                for sub_token in self.wordpiece_tokenizer.tokenize(token)]

    def word_pieces(self, word):
        """tokenize(word) as a tuple, remembered: for the words of passages, each tokenized once."""
        pieces = self._word_cache.get(word)
        if pieces is None:
            if len(self._word_cache) >= self.WORD_CACHE_SIZE:  # a long-running server's bound
                self._word_cache.clear()
            pieces = self._word_cache[word] = tuple(self.tokenize(word))
        return pieces

    def convert_tokens_to_ids(self, tokens):
        return convert_tokens_to_ids(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids):
        return convert_ids_to_tokens(self.inv_vocab, ids)


class BasicTokenizer:
    """Cleans text, isolates CJK characters and punctuation, optionally lower-cases and
    strips accents, and splits on whitespace."""

    def __init__(self, do_lower_case=True):
        self.do_lower_case = do_lower_case

    def tokenize(self, text):
        text = convert_to_unicode(text)
        text = self._clean_text(text)
        text = self._tokenize_chinese_chars(text)
        split_tokens = []
        for token in whitespace_tokenize(text):
            if self.do_lower_case:
                token = token.lower()
                token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token))
        return split_tokens

    def _clean_text(self, text):
        """Drops NUL, U+FFFD and control characters; turns every whitespace into a space."""
        return "".join(map(_clean_char, text))

    def _tokenize_chinese_chars(self, text):
        """Puts spaces around CJK ideographs so that each becomes a word of its own."""
        if text.isascii():
            return text
        return "".join(f" {char} " if _is_chinese_char(ord(char)) else char for char in text)

    def _run_strip_accents(self, text):
        """Decomposes characters (NFD) and drops the combining marks (category Mn)."""
        if text.isascii():
            return text
        return "".join(char for char in unicodedata.normalize("NFD", text)
                       if unicodedata.category(char) != "Mn")

    def _run_split_on_punc(self, text):
        """Splits a word into runs of non-punctuation and single punctuation characters."""
        output = []
        start = 0
        for position, char in enumerate(text):
            if _is_punctuation(char):
                if start < position:
                    output.append(text[start:position])
                output.append(char)
                start = position + 1
        if start < len(text):
            output.append(text[start:])
        return output


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece: a word becomes its longest vocabulary prefix, then
    the longest "##"-prefixed vocabulary piece of what is left, and so on; a word that cannot be
    covered this way, or is longer than max_input_chars_per_word, becomes unk_token."""

    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=200):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text):
        """Splits already basic-tokenized, whitespace-separated text into word pieces."""
        output_tokens = []
        for word in whitespace_tokenize(convert_to_unicode(text)):
            output_tokens.extend(self._tokenize_word(word))
        return output_tokens

    def _tokenize_word(self, word):
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            prefix = "##" if start > 0 else ""
            for end in range(len(word), start, -1):
                piece = prefix + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


@functools.cache
def _clean_char(char):
    """What _clean_text turns one character into: nothing, a space, or itself."""
    if char == "\0" or char == "\ufffd" or _is_control(char):
        return ""
    if _is_whitespace(char):
        return " "
    return char


def _is_whitespace(char):
    # \t, \n and \r are control characters (Cc) that text uses as whitespace.
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


@functools.cache
def _is_punctuation(char):
    # All non-alphanumeric printable ASCII counts, even "$", "^" or "`", which Unicode calls
    # symbols (S*), so that ASCII text splits consistently.
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
    """Whether code point `cp` is in a CJK Unified Ideographs block (or its compatibility
    blocks). Hangul, Hiragana and Katakana are not: those scripts separate words by spaces."""
    return (0x4E00 <= cp <= 0x9FFF
            or 0x3400 <= cp <= 0x4DBF
            or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F
            or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)
