#!/usr/bin/env bash
# Downloads a BERT TensorFlow checkpoint fine-tuned on SQuAD from NGC (the models NVIDIA's
# TensorRT 7 BERT demo used) into models/fine-tuned/<name>_v2/ under the repository root.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/download_model.sh [base|large] [fp16|fp32] [128|384] [v2|v1_1]

Downloads NGC model nvidia/bert_tf_<squad>_<size>_<precision>_<seq_len>, version 2: BERT-Base
or BERT-Large fine-tuned on SQuAD v2.0 or v1.1 in fp16 or fp32 with sequence length 128 or 384
(defaults: large fp16 128 v2), into models/fine-tuned/bert_tf_<...>_v2/ of this repository.
Uses the ngc CLI if installed, otherwise wget or curl.
USAGE
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
        *) die "invalid argument '$arg'; choose from base|large fp16|fp32 128|384 v2|v1_1 (see -h)" ;;
    esac
done

name="bert_tf_${squad}_${model}_${precision}_${seq_len}"
version=2
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="$repo_root/models/fine-tuned"
# The ngc CLI names a downloaded model version <name>_v<version>; the wget path does the same.
target="$models_dir/${name}_v${version}"

if [[ -d "$target" ]]; then
    echo "$target already exists; skipping the download."
    exit 0
fi
mkdir -p "$models_dir"
# Download into a hidden staging folder and move the checkpoint into place only when complete,
# so that an interrupted download never looks like a finished one.
staging="$(mktemp -d "$models_dir/.download.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

echo "Downloading BERT-$model ($precision, sequence length $seq_len, fine-tuned on SQuAD $squad)" \
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
if [[ -z "$(find "$downloaded" -name bert_config.json -print -quit 2>/dev/null)" ]]; then
    die "the download of nvidia/$name:$version has no bert_config.json; try again"
fi
mv "$downloaded" "$target"
echo "Saved the checkpoint in $target"
