#!/usr/bin/env bash
# Downloads a BERT TensorFlow checkpoint fine-tuned on SQuAD from NGC (the checkpoints NVIDIA's
# TensorRT BERT demo uses) into models/fine-tuned/<name>_v19.03.1/ under the repository root, or,
# with `hf ORG/NAME[@REVISION]`, a model of the Hugging Face Hub into the Hub cache.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/download_model.sh [base|large] [fp16|fp32] [128|384] [v2|v1_1]
       scripts/download_model.sh hf ORG/NAME[@REVISION]

Downloads NGC model nvidia/bert_tf_ckpt_<size>_qa_squad<2|11>_amp_<seq_len>:19.03.1: BERT-Base
or BERT-Large fine-tuned on SQuAD v2.0 or v1.1 for sequence length 128 or 384 (defaults: large
fp16 128 v2), into models/fine-tuned/bert_tf_ckpt_<...>_v19.03.1/ of this repository. NGC has
one checkpoint per model, trained with mixed precision (AMP) and stored in float32; fp16 and
fp32 both get it (the precision is chosen when builder.py builds the engine). Uses the ngc CLI
if installed, otherwise wget or curl. A folder that lacks bert_config.json or the checkpoint
index (an interrupted download) is downloaded again.

The hf form downloads config.json, model.safetensors, vocab.txt and the tokenizer files of a
Hugging Face Hub model into the Hub cache (HF_HUB_CACHE, default ~/.cache/huggingface/hub) and
prints its folder; builder.py -m and inference.py -m take the same ORG/NAME.
USAGE
}

usage_error() {
    echo "download_model.sh: error: $*" >&2
    exit 2
}

die() {
    echo "download_model.sh: error: $*" >&2
    exit 1
}

fetch() {  # fetch URL FILE
    if command -v wget >/dev/null 2>&1; then
        wget -q --show-progress -O "$2" "$1"
    elif command -v curl >/dev/null 2>&1; then
        curl -fL --progress-bar -o "$2" "$1"
    else
        die "cannot download: neither the ngc CLI nor wget nor curl is installed; install one of them"
    fi
}

unpack() {  # unpack ZIP DIRECTORY; the caller reports failure in one line
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$1" -d "$2" >/dev/null 2>&1
    elif command -v python3 >/dev/null 2>&1; then
        python3 -m zipfile -e "$1" "$2" 2>/dev/null
    else
        die "cannot unpack $1: install unzip"
    fi
}

is_checkpoint() {  # is_checkpoint DIRECTORY: holds a bert_config.json and a TF checkpoint index
    [[ -n "$(find "$1" -name bert_config.json -print -quit 2>/dev/null)" ]] &&
        [[ -n "$(find "$1" -name '*.index' -print -quit 2>/dev/null)" ]]
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ "${1:-}" == hf ]]; then
    [[ $# -eq 2 ]] || usage_error "the hf form takes one Hugging Face model id: hf ORG/NAME[@REVISION] (see -h)"
    cd "$repo_root"
    exec python3 -m helpers.models "$2"
fi

model=large
precision=fp16
seq_len=128
squad=v2
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        base|large) model=$arg ;;
        fp16|fp32) precision=$arg ;;
        128|384) seq_len=$arg ;;
        v2|v1_1) squad=$arg ;;
        *) usage_error "invalid argument '$arg'; choose from base|large fp16|fp32 128|384 v2|v1_1, or hf ORG/NAME (see -h)" ;;
    esac
done

squad_tag=$([[ $squad == v2 ]] && echo 2 || echo 11)
name="bert_tf_ckpt_${model}_qa_squad${squad_tag}_amp_${seq_len}"
version=19.03.1
models_dir="$repo_root/models/fine-tuned"
# The ngc CLI names a downloaded model version <name>_v<version>; the wget path does the same.
target="$models_dir/${name}_v${version}"

if [[ $precision == fp32 ]]; then
    echo "NGC has no separate fp32 checkpoint: using the AMP one (its variables are float32)."
fi
if [[ -d "$target" ]]; then
    if is_checkpoint "$target"; then
        echo "$target already holds the checkpoint; skipping the download."
        exit 0
    fi
    echo "$target has no bert_config.json or checkpoint index (an interrupted download?); downloading it again."
fi
mkdir -p "$models_dir"
# Download into a hidden staging folder and move the checkpoint into place only when complete,
# so that an interrupted download never looks like a finished one.
staging="$(mktemp -d "$models_dir/.download.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

echo "Downloading BERT-$model (sequence length $seq_len, fine-tuned on SQuAD $squad)" \
     "from NGC: nvidia/$name:$version"
downloaded="$staging/${name}_v${version}"
if command -v ngc >/dev/null 2>&1; then
    ngc registry model download-version "nvidia/$name:$version" --dest "$staging" \
        || die "ngc could not download nvidia/$name:$version; check 'ngc config' and the network"
else
    url="https://api.ngc.nvidia.com/v2/models/nvidia/$name/versions/$version/zip"
    fetch "$url" "$staging/$name.zip" \
        || die "could not download $url; check the network or install the ngc CLI"
    unpack "$staging/$name.zip" "$downloaded" || die "$url is not a valid zip archive; try again"
fi
if ! is_checkpoint "$downloaded"; then
    die "the download of nvidia/$name:$version has no bert_config.json or no checkpoint index (*.index); try again"
fi
rm -rf "$target"
mv "$downloaded" "$target"
echo "Saved the checkpoint in $target"
