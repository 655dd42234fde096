"""helpers/tokenization.py against Hugging Face `tokenizers` as the independent oracle.

The oracle is BertWordPieceTokenizer (Rust) with the same vocab.txt, lower-casing on and no
special tokens added. Where Google's algorithm, which the checkpoints were trained with, and
Hugging Face's genuinely differ, the test names the input and checks both behaviours.
"""
import json
import time

import pytest
from tokenizers import BertWordPieceTokenizer

from helpers import tokenization
from helpers.tokenization import (BasicTokenizer, FullTokenizer, TokenizationError,
                                  WordpieceTokenizer, convert_to_unicode, load_vocab,
                                  whitespace_tokenize)
from tests.conftest import HF_MODEL, SQUAD_DIR, require, write_cased_vocab

SMALL_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "want",
               "##ed", "runn", "##ing", ",", ".", "!", "$", "'", "(", ")", "a", "##b", "hello",
               "world", "naive", "cafe", "café", "中", "文", "ο", "##δ", "##ος", "##ο", "##σ",
               "##ς", "[", "]", "sep", "mask", "x", "##y", "aaa", "##aa", "##a"]


@pytest.fixture
def small_vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SMALL_VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def vocab_file():
    return require(HF_MODEL / "vocab.txt")


def hugging_face_tokens(vocab_file, text, lowercase=True):
    oracle = BertWordPieceTokenizer(str(vocab_file), lowercase=lowercase)
    return oracle.encode(text, add_special_tokens=False).tokens


def squad_texts(path, with_contexts=True):
    texts = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            if with_contexts:
                texts.append(paragraph["context"])
            texts.extend(qa["question"] for qa in paragraph["qas"])
    return texts


def mismatches_with_hugging_face(vocab_file, texts):
    """Token ids of every text from both tokenizers; returns the texts whose ids differ."""
    tokenizer = FullTokenizer(str(vocab_file), do_lower_case=True)
    oracle = BertWordPieceTokenizer(str(vocab_file), lowercase=True)
    expected = [encoding.ids for encoding in oracle.encode_batch(texts, add_special_tokens=False)]
    started = time.perf_counter()
    actual = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in texts]
    seconds = time.perf_counter() - started
    print(f"tokenized {len(texts)} texts in {seconds:.1f} s")
    return [text for text, ours, theirs in zip(texts, actual, expected) if ours != theirs], seconds


# Whole data sets.

@pytest.fixture
def cased_vocab_file(vocab_file, tmp_path):
    return write_cased_vocab(vocab_file, tmp_path / "cased-vocab.txt")


def test_remembered_word_pieces_of_every_dev_passage_word_match_hugging_face(vocab_file, dev_v11, monkeypatch):
    """word_pieces(), which passages are tokenized with, against Hugging Face on each word of dev's
    passages, first computed and then remembered, with the memory bound small enough to be reached."""
    from helpers.data_processing import context_to_doc_tokens
    passages = [p["context"] for a in json.loads(dev_v11.read_text(encoding="utf-8"))["data"] for p in a["paragraphs"]]
    words = sorted({word for passage in passages for word in context_to_doc_tokens(passage)[0]})
    assert len(words) > 5000
    reference = BertWordPieceTokenizer(str(vocab_file), lowercase=True)
    expected = {word: tuple(reference.encode(word, add_special_tokens=False).tokens) for word in words}
    monkeypatch.setattr(FullTokenizer, "WORD_CACHE_SIZE", 5000)
    tokenizer = FullTokenizer(vocab_file)
    for _ in range(2):
        assert [word for word in words if tokenizer.word_pieces(word) != expected[word]] == []


@pytest.mark.slow
def test_cased_tokenization_of_every_dev_v11_text_matches_hugging_face(cased_vocab_file, dev_v11):
    """do_lower_case=False (cased models) against transformers' BertTokenizerFast(do_lower_case=False)."""
    from transformers import BertTokenizerFast
    tokenizer = FullTokenizer(str(cased_vocab_file), do_lower_case=False)
    assert tokenizer.tokenize("The NFL's Denver Broncos") == ["The", "NFL", "'", "s", "Denver", "Broncos"]
    oracle = BertTokenizerFast(vocab=str(cased_vocab_file), do_lower_case=False)  # vocab=: 5.x ignores vocab_file=
    assert oracle.vocab_size == len(tokenizer.vocab) > 50000
    texts = squad_texts(dev_v11)
    expected = oracle(texts, add_special_tokens=False)["input_ids"]
    actual = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in texts]
    mismatches = [text for text, ours, theirs in zip(texts, actual, expected) if ours != theirs]
    assert mismatches == [], f"{len(mismatches)} of {len(texts)} texts differ, first: {mismatches[0][:200]!r}"
    cased_pieces = sum(any(c.isupper() for c in tokenizer.inv_vocab[i]) for ids in actual for i in ids)
    assert cased_pieces > 50000  # 71326: the test exercises the cased word pieces

def test_load_vocab_matches_hugging_face(vocab_file):
    vocab = load_vocab(vocab_file)
    oracle = BertWordPieceTokenizer(str(vocab_file), lowercase=True)
    assert len(vocab) == 30522
    assert dict(vocab) == oracle.get_vocab()
    assert list(vocab.values()) == list(range(len(vocab)))


@pytest.mark.slow
def test_every_dev_v11_question_and_context_matches_hugging_face(vocab_file, dev_v11):
    texts = squad_texts(dev_v11)
    assert len(texts) == 10570 + 2067
    mismatches, seconds = mismatches_with_hugging_face(vocab_file, texts)
    assert mismatches == [], f"{len(mismatches)} texts differ, first: {mismatches[0][:200]!r}"
    assert seconds < 60


@pytest.mark.slow
def test_every_train_v11_question_matches_hugging_face(vocab_file):
    texts = squad_texts(require(SQUAD_DIR / "train-v1.1.json"), with_contexts=False)
    assert len(texts) == 87599
    mismatches, _ = mismatches_with_hugging_face(vocab_file, texts)
    assert mismatches == [], f"{len(mismatches)} texts differ, first: {mismatches[0][:200]!r}"


# Focused behaviour, each checked against the oracle on a small vocabulary.

@pytest.mark.parametrize("text, expected", [
    ("UnAffable, wanted!", ["un", "##aff", "##able", ",", "want", "##ed", "!"]),
    ("Naïve CAFÉ", ["naive", "cafe"]),  # lower-cased, then accents stripped (NFD, drop Mn)
    ("a\u0301b", ["a", "##b"]),  # a lone combining accent disappears
    ("中文hello", ["中", "文", "hello"]),  # each CJK ideograph is a word of its own
    ("hello$(world)'", ["hello", "$", "(", "world", ")", "'"]),  # ASCII symbols count too
    ("hello\u2014world\u00bf", ["hello", "[UNK]", "world", "[UNK]"]),  # Unicode P* split off
    ("hel\x00lo\ufffd wor\u200bld\x07", ["hello", "world"]),  # NUL, U+FFFD, Cf, Cc dropped
    ("hello\tworld\u00a0running\u3000\r\n", ["hello", "world", "runn", "##ing"]),
    ("unknowable zzz", ["[UNK]", "[UNK]"]),  # no vocabulary prefix covers the whole word
    ("", []),
    (" \n\t ", []),
])
def test_full_tokenizer_on_small_vocab(small_vocab_file, text, expected):
    tokenizer = FullTokenizer(str(small_vocab_file))
    assert tokenizer.tokenize(text) == expected
    assert hugging_face_tokens(small_vocab_file, text) == expected


def test_without_lower_case_keeps_case_and_accents(small_vocab_file):
    tokenizer = FullTokenizer(str(small_vocab_file), do_lower_case=False)
    assert tokenizer.tokenize("café Naive") == ["café", "[UNK]"]
    assert hugging_face_tokens(small_vocab_file, "café Naive", lowercase=False) == ["café",
                                                                                     "[UNK]"]


def test_wordpiece_is_greedy_longest_match_first():
    vocab = {"[UNK]": 0, "a": 1, "ab": 2, "##b": 3, "##bc": 4, "##c": 5}
    wordpiece = WordpieceTokenizer(vocab)
    assert wordpiece.tokenize("abc") == ["ab", "##c"]
    assert wordpiece.tokenize("abbc a") == ["ab", "##bc", "a"]
    assert wordpiece.tokenize("abd") == ["[UNK]"]


def test_basic_tokenizer_and_whitespace_tokenize():
    assert BasicTokenizer(do_lower_case=True).tokenize(" HeLLo,  wörld! ") == [
        "hello", ",", "world", "!"]
    assert BasicTokenizer(do_lower_case=False).tokenize("HeLLo,wörld") == ["HeLLo", ",", "wörld"]
    assert whitespace_tokenize("  a\tb\n c  ") == ["a", "b", "c"]
    assert whitespace_tokenize("   ") == []


def test_bytes_are_decoded_as_utf8(small_vocab_file):
    tokenizer = FullTokenizer(str(small_vocab_file))
    assert tokenizer.tokenize("Café".encode("utf-8")) == ["cafe"]
    assert convert_to_unicode(b"caf\xc3\xa9\xff") == "café"  # invalid bytes are dropped
    with pytest.raises(TokenizationError, match="cannot tokenize a int"):
        convert_to_unicode(3)


def test_ids_round_trip_and_unknowns_are_named(small_vocab_file):
    tokenizer = FullTokenizer(str(small_vocab_file))
    tokens = tokenizer.tokenize("hello, world")
    ids = tokenizer.convert_tokens_to_ids(tokens)
    assert ids == [SMALL_VOCAB.index(token) for token in tokens]
    assert tokenizer.convert_ids_to_tokens(ids) == tokens
    with pytest.raises(TokenizationError, match=r"token 'goodbye' is not in the vocabulary"):
        tokenizer.convert_tokens_to_ids(["hello", "goodbye"])
    with pytest.raises(TokenizationError, match=r"token id 9999 is not in the vocabulary"):
        tokenizer.convert_ids_to_tokens([0, 9999])



def test_google_module_api_converts_with_a_vocab(vocab_file):
    """The module-level functions of Google's tokenization.py, as its own tests call them, give
    Hugging Face's ids."""
    vocab = tokenization.load_vocab(str(vocab_file))
    inv_vocab = {index: token for token, index in vocab.items()}
    tokens = tokenization.FullTokenizer(str(vocab_file)).tokenize("Unwanted, running BERT tokenizers!")
    oracle = BertWordPieceTokenizer(str(vocab_file), lowercase=True).encode(
        "Unwanted, running BERT tokenizers!", add_special_tokens=False)
    assert tokens == oracle.tokens
    assert tokenization.convert_tokens_to_ids(vocab, tokens) == oracle.ids
    assert tokenization.convert_ids_to_tokens(inv_vocab, oracle.ids) == tokens
    assert tokenization.convert_by_vocab(vocab, tokens) == oracle.ids
    with pytest.raises(TokenizationError, match="token 'Unwanted' is not in the vocabulary"):
        tokenization.convert_tokens_to_ids(vocab, ["Unwanted"])
    with pytest.raises(TokenizationError, match=r"token id -1 is not in the vocabulary of 30522 tokens"):
        tokenization.convert_ids_to_tokens(inv_vocab, [-1])
    assert tokenization.printable_text(b"caf\xc3\xa9") == "café"
    assert tokenization.whitespace_tokenize(" a\tb\n") == ["a", "b"]


def test_validate_case_matches_checkpoint():
    check = tokenization.validate_case_matches_checkpoint
    check(True, "models/uncased_L-12_H-768_A-12/bert_model.ckpt")
    check(False, "models/cased_L-24_H-1024_A-16/bert_model.ckpt")
    check(False, "models/fine-tuned/model.ckpt-8144")  # a name that says nothing
    check(True, None)
    with pytest.raises(TokenizationError, match="Google's uncased uncased_L-12_H-768_A-12.*pass --do-lower-case"):
        check(False, "models/uncased_L-12_H-768_A-12/bert_model.ckpt")
    with pytest.raises(TokenizationError, match="Google's cased multi_cased_L-12_H-768_A-12.*--no-do-lower-case"):
        check(True, "/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt")


# Bad vocabulary files.

def test_missing_vocab_file(tmp_path):
    with pytest.raises(TokenizationError, match="cannot read vocab file .*No such file"):
        FullTokenizer(str(tmp_path / "missing.txt"))


def test_vocab_file_that_is_a_directory(tmp_path):
    with pytest.raises(TokenizationError, match="cannot read vocab file"):
        load_vocab(tmp_path)


def test_vocab_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes("[UNK]\ncafé\n".encode("latin-1"))
    with pytest.raises(TokenizationError, match=r"is not UTF-8 text \(bad byte at offset 9\)"):
        load_vocab(path)


def test_empty_vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"")
    with pytest.raises(TokenizationError, match="is empty"):
        load_vocab(path)


def test_vocab_without_unknown_token(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(TokenizationError, match=r"has no \[UNK\] token"):
        FullTokenizer(str(path))


def test_vocab_line_numbers_are_ids(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[UNK]\r\nhello \nworld")  # CRLF, trailing space, no final newline
    assert list(load_vocab(path).items()) == [("[UNK]", 0), ("hello", 1), ("world", 2)]


# Inputs where Hugging Face differs from Google's algorithm; we follow Google.

def test_difference_greek_final_sigma(small_vocab_file):
    # Python's str.lower() maps a word-final capital sigma to final sigma, as Google's code
    # does; Hugging Face lower-cases character by character and gets the medial form.
    assert FullTokenizer(str(small_vocab_file)).tokenize("ΟΔΟΣ") == ["ο", "##δ", "##ος"]
    assert hugging_face_tokens(small_vocab_file, "ΟΔΟΣ") == ["ο", "##δ", "##ο", "##σ"]


def test_difference_private_use_character(small_vocab_file):
    # Google drops only Cc and Cf; Hugging Face also drops private-use U+E000 (category Co).
    assert FullTokenizer(str(small_vocab_file)).tokenize("a\ue000b") == ["[UNK]"]
    assert hugging_face_tokens(small_vocab_file, "a\ue000b") == ["a", "##b"]


def test_difference_special_tokens_written_in_text(small_vocab_file):
    # Hugging Face matches "[SEP]" in raw text as the special token; Google splits it.
    assert FullTokenizer(str(small_vocab_file)).tokenize("x [SEP] [MASK]") == [
        "x", "[", "sep", "]", "[", "mask", "]"]
    assert hugging_face_tokens(small_vocab_file, "x [SEP] [MASK]") == ["x", "[SEP]", "[MASK]"]


def test_difference_word_length_limit(small_vocab_file):
    # Google turns words of more than 200 characters into [UNK]; Hugging Face's limit is 100.
    tokenizer = FullTokenizer(str(small_vocab_file))
    word_150 = "a" * 150
    assert tokenizer.tokenize(word_150) == ["aaa"] + ["##aa"] * 73 + ["##a"]
    assert hugging_face_tokens(small_vocab_file, word_150) == ["[UNK]"]
    assert tokenizer.tokenize("a" * 200) == ["aaa"] + ["##aa"] * 98 + ["##a"]
    assert tokenizer.tokenize("a" * 201 + " x") == ["[UNK]", "x"]
