#!/usr/bin/env bash
# The latency sweep of NVIDIA's demo: BERT-Base and BERT-Large, sequence 128 and 384, batch 1 to
# 128, fp16, fp32 and int8. Builds what is missing (random weights: fine for latency, not for
# answers), times each engine with perf.py, times the same models in PyTorch fp16 in the same run,
# and writes RESULTS/benchmark.{csv,md,png}.
#
# Usage: scripts/inference_benchmark.sh [-m "base large"] [-s "128 384"] [-p "fp16 fp32 int8"]
#            [-b "1 2 4 8 12 16 24 32 64 128"] [-P PROFILE_BATCHES] [-o RESULTS] [-t TORCH_PYTHON] [-i ITERATIONS] [-g]
#            [-x BUILDER_FLAGS]
# -P: the batch sizes that get an optimization profile (default: every -b; fewer build faster).
# -x: more builder.py flags, e.g. -x "--conv-projections --gelu tanh --no-gelu-plugin"; engines and
#     results are named after them (base-fp16-conv-projections-gelu-tanh-no-gelu-plugin-s128).
# -t: a Python with PyTorch and transformers for the comparison (skipped when not given).
# -g: also time each engine replayed as a CUDA graph. int8 is calibrated on -j SQUAD_JSON with -v VOCAB.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
models="base large" seqs="128 384" precisions="fp16 fp32 int8" batches="1 2 4 8 12 16 24 32 64 128"
results=results torch_python="" iterations=200 graph=0 squad_json="" vocab="" profiles="" extra=""
usage_error() { echo "inference_benchmark.sh: error: $*" >&2; exit 2; }
# The leading ":" makes getopts report a bad option here, in one line, instead of on its own.
while getopts ":m:s:p:b:P:o:t:i:j:v:x:gh" opt; do
    case "$opt" in
        m) models=$OPTARG ;; s) seqs=$OPTARG ;; p) precisions=$OPTARG ;; b) batches=$OPTARG ;; P) profiles=$OPTARG ;;
        o) results=$OPTARG ;; t) torch_python=$OPTARG ;; i) iterations=$OPTARG ;; g) graph=1 ;;
        j) squad_json=$OPTARG ;; v) vocab=$OPTARG ;; x) extra=$OPTARG ;;
        h) usage; exit 0 ;;
        :) usage_error "option -$OPTARG needs a value (-h for help)" ;;
        *) usage_error "unknown option -$OPTARG (-h for help)" ;;
    esac
done
shift $((OPTIND - 1))
(( $# == 0 )) || usage_error "invalid argument '$1'; every input is given by an option (-h for help)"
# Checked before anything is built: a bad value would otherwise stop the sweep hours in.
for pair in "-s:$seqs" "-b:$batches" "-P:$profiles" "-i:$iterations"; do
    for value in ${pair#*:}; do
        [[ $value =~ ^[1-9][0-9]*$ ]] || usage_error "${pair%%:*} takes positive integers, got '$value'"
    done
done
for model in $models; do
    [[ $model == base || $model == large ]] || usage_error "unknown model $model in -m (base or large)"
done
for precision in $precisions; do
    case "$precision" in
        fp16|fp32|int8) ;;
        *) usage_error "unknown precision $precision in -p (fp16, fp32 or int8)" ;;
    esac
done
mkdir -p "$results/engines"
batch_flags=() profile_flags=()
for b in $batches; do batch_flags+=(-b "$b"); done
for b in ${profiles:-$batches}; do profile_flags+=(-b "$b"); done
extra_label=${extra// /-}  # "--gelu tanh --no-gelu-plugin" -> "gelu-tanh-no-gelu-plugin"
while [[ $extra_label == *--* ]]; do extra_label=${extra_label//--/-}; done
extra_label=${extra_label#-}

for model in $models; do
    weights="$results/engines/random-$model.npz"
    [[ -f $weights ]] || python -m helpers.weights random "$model" "$weights" --fp16
    for seq in $seqs; do
        for precision in $precisions; do
            name=$model-$precision${extra_label:+-$extra_label}-s$seq
            engine="$results/engines/$name.engine"
            flags=()
            case "$precision" in
                fp16) flags=(--fp16) ;;
                fp32) flags=(-w 4096) ;;  # fp32 attention at Large, batch 128, seq 384: 2304 MiB of scratch
                int8) flags=(--int8 --calib-cache "$results/engines/$model-s$seq.calib")
                      [[ -n $squad_json ]] && flags+=(-j "$squad_json" -v "$vocab") ;;
                *) echo "inference_benchmark.sh: error: unknown precision $precision" >&2; exit 2 ;;
            esac
            if [[ ! -f $engine ]]; then
                python builder.py -m "$weights" -o "$engine" -s "$seq" "${profile_flags[@]}" \
                    --timing-cache "$engine.timing_cache" "${flags[@]}" $extra
            fi
            python perf.py -e "$engine" -s "$seq" "${batch_flags[@]}" -i "$iterations" \
                --json "$results/$name.perf.json"
            if (( graph )); then
                python perf.py -e "$engine" -s "$seq" "${batch_flags[@]}" -i "$iterations" --cuda-graph \
                    --json "$results/$name-graph.perf.json"
            fi
        done
        if [[ -n $torch_python ]]; then
            "$torch_python" scripts/pytorch_perf.py --model "$model" -s "$seq" "${batch_flags[@]}" \
                --json "$results/$model-s$seq.torch.json"
        fi
    done
done
python scripts/benchmark_report.py "$results"/*.json -o "$results/benchmark"
