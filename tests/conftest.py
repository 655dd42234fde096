"""Shared test fixtures: where the test data lives and how to skip without it."""
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BERT_TRT_SHARED", REPO.parent / "shared"))
SQUAD_DIR = SHARED / "data" / "squad"
MODELS_DIR = SHARED / "models"
TF_MODEL = MODELS_DIR / "minilm-l6-h384-squad11-tf"
HF_MODEL = MODELS_DIR / "minilm-l6-h384-a6-squad11-hf"


def require(path: Path) -> Path:
    """Skip the calling test, with the reason printed, when shared test data is absent."""
    if not path.exists():
        pytest.skip(f"test data not found: {path} (set BERT_TRT_SHARED to the shared/ folder)")
    return path


@pytest.fixture
def dev_v11():
    return require(SQUAD_DIR / "dev-v1.1.json")


def write_small_squad(path: Path) -> Path:
    """16 questions of SQuAD v1.1 dev (8 of each of the first article's first two passages), at path."""
    data = json.loads(require(SQUAD_DIR / "dev-v1.1.json").read_text())
    paragraphs = [dict(paragraph, qas=paragraph["qas"][:8]) for paragraph in data["data"][0]["paragraphs"][:2]]
    data["data"] = [dict(data["data"][0], paragraphs=paragraphs)]
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def tf_model():
    return require(TF_MODEL)


@pytest.fixture
def hf_model():
    return require(HF_MODEL)


@pytest.fixture(scope="session")
def tokenizer():
    """The uncased BERT WordPiece tokenizer of the test models."""
    from helpers.tokenization import FullTokenizer
    return FullTokenizer(str(require(TF_MODEL / "vocab.txt")))


@pytest.fixture(scope="session")
def dev_examples():
    from helpers.data_processing import read_squad_examples
    return read_squad_examples(require(SQUAD_DIR / "dev-v1.1.json"))


def write_cased_vocab(uncased_vocab: Path, path: Path) -> Path:
    """A cased vocabulary made from an uncased one: its tokens, then the capitalized form of each
    word and the upper-case form of each word of up to four letters (NFL, AFC), where new."""
    lines = uncased_vocab.read_text(encoding="utf-8").splitlines()
    seen = set(lines)
    for token in list(lines):
        if token.startswith(("[", "##")):
            continue
        for form in (token.capitalize(), token.upper() if len(token) <= 4 else token):
            if form not in seen:
                seen.add(form)
                lines.append(form)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
