# Strict int8 with TensorRT's calibrator, from the calibration caches written earlier in the lease.
source .work/dev/q/env.sh
M=$1
python builder.py -m $G/weights/$M.npz -o $E/$M-int8-implicit-t.engine -b 32 -s 384 -v $G/models/$M/vocab.txt -i -t \
    --quantization implicit -j $TRAIN -n 500 --calib-cache $E/$M-s384.calib --no-progress 2>&1 | grep -v "^\[TRT\]" | tail -2
python inference.py -e $E/$M-int8-implicit-t.engine -v $G/models/$M/vocab.txt -s 384 -b 32 -sq $DEV \
    -o $R/$M-int8-implicit-t.predictions.json --no-progress 2>&1 | tail -1
echo "$M-int8-implicit-t $(python squad/evaluate-v1.1.py $DEV $R/$M-int8-implicit-t.predictions.json)"
stamp "done late $M"
