# Issue 18 item 2: one chain = one model x one quantization: build each variant, answer SQuAD v1.1
# dev (10,570 questions, S384, -b 32), score, profile layers. Usage: accuracy.sh MODEL QUANT "VARIANTS"
source .work/dev/q/env.sh
M=$1 Q=$2; shift 2
W=$G/weights/$M.npz V=$G/models/$M/vocab.txt
for variant in "$@"; do
    label=$M-int8-$Q-$(echo "$variant" | tr -d ' -')
    flags=(); [ "$variant" = picks ] || flags=($variant)
    if [ $Q = implicit ]; then cal=(--calib-cache $E/$M-s384.calib); else cal=(--scales $E/$M-s384.scales.json); fi
    stamp "build $label"
    /usr/bin/time -f "%e s build" python builder.py -m $W -o $E/$label.engine -b 32 -s 384 -v $V -i \
        --quantization $Q -j $TRAIN -n 500 "${cal[@]}" --no-progress "${flags[@]}" || { stamp "FAILED build $label"; continue; }
    python inference.py -e $E/$label.engine -v $V -s 384 -b 32 -sq $DEV -o $R/$label.predictions.json --no-progress
    echo "$label $(python squad/evaluate-v1.1.py $DEV $R/$label.predictions.json)"
    python perf.py -e $E/$label.engine -b 32 -s 384 -i 50 --layer-profile --json $R/$label.perf.json | tail -25
done
stamp "done $M $Q"
