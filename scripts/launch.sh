#!/usr/bin/env bash
# Starts the bert-trt:latest container on all GPUs with this repository mounted as its workspace.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/launch.sh [COMMAND [ARG...]]

Runs COMMAND (default: an interactive shell) in a new bert-trt:latest container (see
scripts/build.sh) on all GPUs, with this repository mounted at /workspace/bert-trt as the working
directory, and its models/ and squad/ folders mounted in it, so that downloads, engines and
results stay on the host. The container is removed when COMMAND ends.
USAGE
}

die() {
    echo "launch.sh: error: $*" >&2
    exit 1
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    usage
    exit 0
fi
command -v docker >/dev/null 2>&1 || die "docker is not installed; install Docker Engine and the NVIDIA Container Toolkit first"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$repo_root/models" "$repo_root/squad"
# models/ and squad/ are mounted by their resolved paths too: when they are symlinks to data kept
# elsewhere, the link targets would not exist inside the container.
models_dir="$(cd -P "$repo_root/models" && pwd)"
squad_dir="$(cd -P "$repo_root/squad" && pwd)"
# docker refuses -t when there is no terminal, e.g. when run from another script.
tty_flags=(-i)
if [[ -t 0 && -t 1 ]]; then
    tty_flags=(-it)
fi

docker run --gpus all "${tty_flags[@]}" --rm \
    -v "$repo_root:/workspace/bert-trt" \
    -v "$models_dir:/workspace/bert-trt/models" \
    -v "$squad_dir:/workspace/bert-trt/squad" \
    -w /workspace/bert-trt \
    bert-trt:latest "$@"
