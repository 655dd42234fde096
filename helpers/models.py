"""Where a model comes from, and how its text is cased.

`resolve_model` turns what a user passes as -m into a local path: a path that exists is taken as
it is; otherwise a Hugging Face Hub id, ORG/NAME[@REVISION], is fetched into the Hub cache
(HF_HUB_CACHE, ~/.cache/huggingface/hub by default) with only the files this project reads, and
its snapshot folder is returned. With HF_HUB_OFFLINE=1 the cache alone answers.

`model_casing` decides whether the model's tokenizer lower-cases: tokenizer_config.json beside
the model says so where it exists; otherwise the vocabulary does, as an uncased vocabulary has no
upper-case word pieces (its text was lower-cased before the vocabulary was made).

    python -m helpers.models ORG/NAME[@REVISION]   # download into the Hub cache, print the folder
"""
import argparse
import json
import os
import re
import sys
from pathlib import Path

from helpers.errors import BertTrtError

# What builder.py and inference.py read of a Hub model; the sharded safetensors form as well.
HUB_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
             "special_tokens_map.json", "model.safetensors.index.json", "model-*-of-*.safetensors")
# A Hub name part: letters, digits, '-', '_', '.'; not starting or ending with '-' or '.', no '--'
# or '..' (huggingface_hub's own rule), at most 96 characters.
_NAME = r"(?![^/@]*(?:--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"({_NAME})/({_NAME})(?:@([A-Za-z0-9_./-]+))?")


class ModelError(BertTrtError, ValueError):
    """A model that cannot be found, fetched, or whose casing contradicts itself; one line."""


class CasingContradiction(ModelError):
    """tokenizer_config.json and the vocabulary disagree on whether the model is cased."""


def _names_a_hub_id(text):
    """Whether `text`, which is no local path, was meant as a Hub id (and not as a path)."""
    if "@" in text:
        return True
    return (text.count("/") == 1 and not text.startswith(("/", ".", "~"))
            and not text.endswith(("/", ".npz", ".index", ".json", ".safetensors")))


def _exists_locally(path):
    # A TF checkpoint is also named by its prefix, which is no file itself.
    return os.path.exists(path) or os.path.isfile(path + ".index")


def parse_hub_id(text):
    """(repo id, revision or None) of ORG/NAME[@REVISION], or a one-line ModelError."""
    match = _HUB_ID.fullmatch(text)
    if not match:
        raise ModelError(f"{text!r} is neither a local path nor a Hugging Face Hub id of the form "
                         "ORG/NAME[@REVISION] (letters, digits, '-', '_', '.'); pass an existing "
                         "checkpoint, model folder or .npz, or a Hub id such as "
                         "deepset/bert-base-cased-squad2")
    org, name, revision = match.groups()
    return f"{org}/{name}", revision


def resolve_model(path_or_id):
    """The local path of -m: itself when it exists, else the Hub cache's snapshot of the Hub id."""
    text = os.fspath(path_or_id)
    if _exists_locally(text):
        return text
    if not _names_a_hub_id(text):
        raise ModelError(f"no such file or directory: {text}; pass a TensorFlow checkpoint prefix, "
                         "a Hugging Face model folder, a .npz, or a Hub id ORG/NAME")
    repo_id, revision = parse_hub_id(text)
    return download(repo_id, revision, path_hint=text)


def download(repo_id, revision=None, path_hint=None):
    """The snapshot folder of a Hub model holding HUB_FILES (those it has), fetched if not cached."""
    try:
        import huggingface_hub
        from huggingface_hub import constants, errors
    except ImportError as e:
        raise ModelError(f"a Hugging Face Hub id needs huggingface_hub ({e}); "
                         "pip install -r requirements.txt") from None
    named = f"{repo_id}@{revision}" if revision else repo_id
    local = f"there is no local path {path_hint}, and " if path_hint else ""
    offline = constants.HF_HUB_OFFLINE
    if not offline:
        print(f"fetching {named} from the Hugging Face Hub into {constants.HF_HUB_CACHE}", file=sys.stderr)
    try:
        folder = huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=list(HUB_FILES))
    except errors.GatedRepoError:
        raise ModelError(f"{local}{named} is a gated Hugging Face model: accept its terms on "
                         f"https://huggingface.co/{repo_id} and log in (hf auth login, or set HF_TOKEN)") from None
    except errors.RepositoryNotFoundError:
        raise ModelError(f"{local}the Hugging Face Hub has no model {repo_id} (or it is private: log in "
                         "with hf auth login, or set HF_TOKEN); check the name") from None
    except errors.RevisionNotFoundError:
        raise ModelError(f"{local}the Hugging Face model {repo_id} has no revision {revision!r}; "
                         "pass a branch, tag or commit it has") from None
    except errors.LocalEntryNotFoundError:
        if offline:
            raise ModelError(f"{local}{named} is not in the Hugging Face Hub cache {constants.HF_HUB_CACHE} "
                             "and HF_HUB_OFFLINE=1: download it once online (scripts/download_model.sh hf "
                             f"{named}), or set HF_HUB_CACHE to the cache that holds it") from None
        raise ModelError(f"{local}cannot reach the Hugging Face Hub to fetch {named}, and it is not "
                         f"cached in {constants.HF_HUB_CACHE}; check the network, or set HF_HUB_CACHE "
                         "to a cache that holds it") from None
    except (errors.HfHubHTTPError, OSError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot fetch {named} from the Hugging Face Hub: {first_line}") from None
    _check_snapshot(Path(folder), named)
    return folder


def _check_snapshot(folder, named):
    if not any((folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
        raise ModelError(f"the Hugging Face model {named} has no model.safetensors (only PyTorch or "
                         "TensorFlow weights?); pick a revision that ships safetensors, or convert it "
                         "with transformers' save_pretrained(safe_serialization=True) and pass that folder")
    for name in ("config.json", "vocab.txt"):
        if not (folder / name).is_file():
            raise ModelError(f"the Hugging Face model {named} has no {name}; it is not a BERT WordPiece "
                             "model this project can build")


def model_folder(model_path):
    """The folder that holds a model given as a folder, a TF checkpoint prefix, or a file."""
    path = Path(model_path)
    return path if path.is_dir() else path.parent


def find_vocab(model_path):
    """vocab.txt beside the model, or None."""
    candidate = model_folder(model_path) / "vocab.txt"
    return str(candidate) if candidate.is_file() else None


def vocab_of(vocab_file, model_path):
    """The vocabulary a front end reads: -v's, or else the vocab.txt beside the model."""
    vocab = vocab_file or (find_vocab(model_path) if model_path else None)
    if vocab is None:
        raise ModelError("no vocabulary: pass the model's vocab.txt with -v")
    return vocab


def vocab_is_cased(vocab):
    """Whether a vocabulary (token -> id) has upper-case word pieces; special tokens such as
    [CLS] or [unused0] do not count."""
    for token in vocab:
        if token.startswith("[") and token.endswith("]"):
            continue
        if token != token.lower():
            return True
    return False


def _configured_lower_case(folder):
    """(do_lower_case, file) from tokenizer_config.json in `folder`, or (None, None)."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return None, None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("do_lower_case")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
        raise ModelError(f"cannot read {path}: {e}; fix or delete it") from None
    if value is not None and not isinstance(value, bool):
        raise ModelError(f"{path}: do_lower_case must be true or false, not {value!r}")
    return value, path


def model_casing(model_path=None, vocab_file=None):
    """(do_lower_case, what said so) for a model and its vocabulary.

    tokenizer_config.json beside the model (or beside the vocabulary) decides; else the
    vocabulary: upper-case word pieces mean cased. A vocabulary whose casing contradicts
    tokenizer_config.json is a ModelError. Neither: uncased, the BERT demo's default.
    """
    from helpers.tokenization import load_vocab

    folders = [model_folder(p) for p in (model_path, vocab_file) if p]
    configured, config_file = None, None
    for folder in dict.fromkeys(folders):
        configured, config_file = _configured_lower_case(folder)
        if configured is not None:
            break
    vocab_file = vocab_file or (find_vocab(model_path) if model_path else None)
    cased_vocab = vocab_is_cased(load_vocab(vocab_file)) if vocab_file else None
    if configured is not None:
        if cased_vocab is not None and cased_vocab == configured:
            has = "upper-case word pieces" if cased_vocab else "no upper-case word pieces"
            raise CasingContradiction(
                f"{config_file} says do_lower_case {str(configured).lower()}, but the vocabulary "
                f"{vocab_file} has {has}; pass the vocab.txt that came with the model (-v), or "
                "choose with --do-lower-case or --no-do-lower-case")
        return configured, str(config_file)
    if cased_vocab is not None:
        return not cased_vocab, f"{vocab_file} ({'cased' if cased_vocab else 'uncased'} word pieces)"
    return True, "the default (no tokenizer_config.json or vocab.txt beside the model)"


def decide_casing(model_path, vocab_file, requested, warn):
    """do_lower_case for a model: model_casing's, or the command line's (`requested`, None when not
    given), which also settles a contradiction between tokenizer_config.json and the vocabulary."""
    try:
        model_lower_case, _ = model_casing(model_path, vocab_file)
    except CasingContradiction:
        if requested is None:
            raise
        return requested
    return choose_casing(model_lower_case, requested, warn)


def choose_casing(model_lower_case, requested, warn):
    """The casing to use: the command line's where given (calling `warn` with one line when it
    contradicts the model's), else the model's."""
    if requested is None:
        return model_lower_case
    if requested != model_lower_case:
        warn(f"{casing_flag(requested)} contradicts the model, which is "
             f"{'uncased' if model_lower_case else 'cased'}; its answers may be wrong. "
             f"Using {casing_flag(requested)} as asked")
    return requested


def casing_flag(do_lower_case):
    return "--do-lower-case" if do_lower_case else "--no-do-lower-case"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m helpers.models", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Download a Hugging Face Hub model (config.json, model.safetensors, vocab.txt "
                    "and the tokenizer files) into the Hub cache and print its folder.")
    parser.add_argument("model", help="ORG/NAME[@REVISION] of the Hugging Face Hub")
    args = parser.parse_args(argv)
    try:
        repo_id, revision = parse_hub_id(args.model)
        folder = download(repo_id, revision)
        lower, source = model_casing(folder)
    except BertTrtError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.model}: {'uncased' if lower else 'cased'} (from {source}), in:", file=sys.stderr)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
