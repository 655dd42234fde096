#!/usr/bin/env bash
# Downloads the SQuAD training and dev sets into squad/ under the repository root.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/download_squad.sh [v1_1|v2_0]

Downloads train-v<version>.json and dev-v<version>.json of SQuAD v1.1 or v2.0 (default: both)
from https://rajpurkar.github.io/SQuAD-explorer/ into squad/ of this repository. Files already
there are kept.
USAGE
}

die() {
    echo "download_squad.sh: error: $*" >&2
    exit 1
}

usage_error() {  # bad arguments: one line, exit 2, as the Python front ends
    echo "download_squad.sh: error: $*" >&2
    exit 2
}

fetch() {  # fetch URL FILE
    if command -v wget >/dev/null 2>&1; then
        wget -q --show-progress -O "$2" "$1"
    elif command -v curl >/dev/null 2>&1; then
        curl -fL --progress-bar -o "$2" "$1"
    else
        die "cannot download: neither wget nor curl is installed; install one of them"
    fi
}

is_squad_json() {  # is_squad_json FILE
    python3 -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1], encoding="utf-8"))["data"])' \
        "$1" 2>/dev/null
}

versions=()
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        v1_1) versions+=(1.1) ;;
        v2_0) versions+=(2.0) ;;
        *) usage_error "invalid argument '$arg'; choose v1_1 or v2_0, or nothing for both (see -h)" ;;
    esac
done
if [[ ${#versions[@]} -eq 0 ]]; then
    versions=(1.1 2.0)
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to check the downloads; install it"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
squad_dir="$repo_root/squad"
mkdir -p "$squad_dir"
# Each file is downloaded to <file>.part and renamed only once it is complete, valid JSON.
part=""
trap 'if [[ -n "$part" ]]; then rm -f "$part"; fi' EXIT

for version in "${versions[@]}"; do
    for split in train dev; do
        file="$split-v$version.json"
        target="$squad_dir/$file"
        if [[ -s "$target" ]]; then
            echo "$target already exists; skipping it."
            continue
        fi
        url="https://rajpurkar.github.io/SQuAD-explorer/dataset/$file"
        echo "Downloading $url"
        part="$target.part"
        fetch "$url" "$part" || die "could not download $url; check the network connection"
        is_squad_json "$part" || die "$url did not return SQuAD JSON; try again later"
        mv "$part" "$target"
        part=""
    done
done
echo "SQuAD files are in $squad_dir"
