#!/usr/bin/env bash
# Build engines of one model in several precisions, answer all of SQuAD v1.1 dev with each,
# score the predictions and append one CSV row per engine:
#   model,precision,sequence_length,exact_match,f1,build_seconds,tensorrt
#
# Usage: scripts/squad_accuracy.sh -m CHECKPOINT -v VOCAB -d DEV_JSON [-c CALIB_JSON]
#            [-p "fp32 fp16 int8"] [-s 384] [-b 32] [-n 500] [-o OUTDIR] [-r RESULTS_CSV] [-t] [-x FLAGS]
# -c is the SQuAD file whose features calibrate int8 (use train, never dev).
# -t builds with builder.py --strict (projections pinned to the precision); rows say "int8-strict".
# -x passes more builder.py flags, e.g. -x "-iln -imh"; rows say "int8-iln-imh" (and
# -x "--fp16-projections qkv" rows "int8-fp16-projections-qkv").
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
ckpt="" vocab="" dev="" calib="" precisions="fp32 fp16" seq=384 batch=32 calib_num=500 outdir=engines results=""
strict=() extra=""
usage_error() { echo "squad_accuracy.sh: error: $*" >&2; exit 2; }
# The leading ":" makes getopts report a bad option here, in one line, instead of on its own.
while getopts ":m:v:d:c:p:s:b:n:o:r:tx:h" opt; do
    case "$opt" in
        m) ckpt=$OPTARG ;; v) vocab=$OPTARG ;; d) dev=$OPTARG ;; c) calib=$OPTARG ;;
        p) precisions=$OPTARG ;; s) seq=$OPTARG ;; b) batch=$OPTARG ;; n) calib_num=$OPTARG ;;
        o) outdir=$OPTARG ;; r) results=$OPTARG ;; t) strict=(--strict) ;; x) extra=$OPTARG ;;
        h) usage; exit 0 ;;
        :) usage_error "option -$OPTARG needs a value (-h for help)" ;;
        *) usage_error "unknown option -$OPTARG (-h for help)" ;;
    esac
done
shift $((OPTIND - 1))
(( $# == 0 )) || usage_error "invalid argument '$1'; every input is given by an option (-h for help)"
if [[ -z $ckpt || -z $vocab || -z $dev ]]; then
    usage_error "-m CHECKPOINT, -v VOCAB and -d DEV_JSON are required (-h for help)"
fi
for pair in "-s:$seq" "-b:$batch" "-n:$calib_num"; do
    [[ ${pair#*:} =~ ^[1-9][0-9]*$ ]] || usage_error "${pair%%:*} must be a positive integer, got '${pair#*:}'"
done
for precision in $precisions; do
    case "$precision" in
        fp32|fp16|int8) ;;
        *) usage_error "unknown precision $precision in -p (fp32, fp16 or int8)" ;;
    esac
done
[[ -n $precisions ]] || usage_error "-p names no precision (fp32, fp16 or int8)"
name=$(basename "${ckpt%/}")
name=${name%.npz}
mkdir -p "$outdir"
results=${results:-$outdir/accuracy.csv}
[[ -f $results ]] || echo "model,precision,sequence_length,exact_match,f1,build_seconds,tensorrt" >"$results"

extra_label=${extra// /-}  # "-iln -imh" -> "iln-imh", "--fp16-projections qkv" -> "fp16-projections-qkv"
while [[ $extra_label == *--* ]]; do extra_label=${extra_label//--/-}; done
extra_label=${extra_label#-}
calib_kind=""  # engines share a calibration cache, unless a flag changes how it is made
[[ " $extra " == *" --no-calib-qkv-max "* ]] && calib_kind=-percentile

for precision in $precisions; do
    label=$precision${strict:+-strict}${extra_label:+-$extra_label}
    engine="$outdir/$name-$label-s$seq.engine"
    flags=()
    case "$precision" in
        fp16) flags=(--fp16) ;;
        int8) flags=(--int8 --calib-num "$calib_num" --calib-cache "$outdir/$name-s$seq$calib_kind.calib")
              [[ -n $calib ]] && flags+=(-j "$calib") ;;
        fp32) ;;
        *) echo "squad_accuracy.sh: error: unknown precision $precision (fp32, fp16 or int8)" >&2; exit 2 ;;
    esac
    python builder.py -m "$ckpt" -o "$engine" -b "$batch" -s "$seq" -v "$vocab" \
        --timing-cache "$engine.timing_cache" "${flags[@]}" "${strict[@]}" $extra
    predictions="$outdir/$name-$label-s$seq.predictions.json"
    python inference.py -e "$engine" -v "$vocab" -s "$seq" -b "$batch" -sq "$dev" -o "$predictions" --no-progress
    scores=$(python squad/evaluate-v1.1.py "$dev" "$predictions")
    echo "$name $label: $scores"
    python - "$engine" "$scores" "$name" "$label" "$seq" >>"$results" <<'EOF'
import json, sys
engine, scores, name, precision, seq = sys.argv[1:]
info = json.load(open(engine + ".json"))
s = json.loads(scores)
print(f"{name},{precision},{seq},{s['exact_match']:.3f},{s['f1']:.3f},{info['build_seconds']},{info['tensorrt_version']}")
EOF
done
