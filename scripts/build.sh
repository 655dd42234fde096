#!/usr/bin/env bash
# Builds the Docker image bert-trt:latest from the Dockerfile at the repository root.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/build.sh

Builds the Docker image bert-trt:latest (TensorRT, pycuda and requirements.txt on NVIDIA's
TensorRT container) from the Dockerfile at the root of this repository.
USAGE
}

die() {
    echo "build.sh: error: $*" >&2
    exit 1
}

usage_error() {  # bad arguments: one line, exit 2, as the Python front ends
    echo "build.sh: error: $*" >&2
    exit 2
}

for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        *) usage_error "invalid argument '$arg'; build.sh takes no arguments (see -h)" ;;
    esac
done
command -v docker >/dev/null 2>&1 || die "docker is not installed; install Docker Engine first"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
docker build -t bert-trt:latest -f Dockerfile .
