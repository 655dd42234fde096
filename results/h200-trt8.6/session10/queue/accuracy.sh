# Issue 18 item 2, implicit rows: build each variant, answer SQuAD v1.1 dev (10,570 questions,
# S384, -b 32), score. Layer profiles come later, on the idle GPU. Usage: accuracy.sh MODEL "VARIANT"...
source .work/dev/q/env.sh
set -o pipefail
M=$1; shift
W=$G/weights/$M.npz V=$G/models/$M/vocab.txt
for variant in "$@"; do
    label=$M-int8-implicit-$(echo "$variant" | tr -d ' -')
    flags=(); [ "$variant" = picks ] || flags=($variant)
    stamp "build $label"
    /usr/bin/time -f "%e s build" python builder.py -m $W -o $E/$label.engine -b 32 -s 384 -v $V -i \
        --quantization implicit -j $TRAIN -n 500 --calib-cache $E/$M-s384.calib --no-progress \
        --timing-cache $E/timing-$M.cache "${flags[@]}" 2>&1 | grep -v '^\[TRT\] \[W\]' | tail -8 || { stamp "FAILED build $label"; continue; }
    python inference.py -e $E/$label.engine -v $V -s 384 -b 32 -sq $DEV -o $R/$label.predictions.json --no-progress 2>&1 | tail -2
    echo "$label $(python squad/evaluate-v1.1.py $DEV $R/$label.predictions.json)"
done
stamp "done acc $M"
