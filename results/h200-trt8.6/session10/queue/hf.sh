# The HF test model: its fp16 packed engine answers all of SQuAD dev through inference.py (session 5
# scored this engine's flags 68.458 / 78.574, before the passage-word cache and run_main), then the
# implicit -imh --varseqlen engine from session 9's calibration cache. That cache's .max file was not
# kept, so the QKV inputs get percentile scales (--no-calib-qkv-max) here, unlike session 9's row.
source .work/dev/q/env.sh
set -o pipefail
P=$R/$HF-fp16-varseqlen.predictions.json
python inference.py -e $E/large-hf-fp16-packed.engine -v $LV -s 384 -b 32 -sq $DEV -o $P --no-progress 2>&1 | tail -2
echo "$HF-fp16-varseqlen $(python squad/evaluate-v1.1.py $DEV $P)"
bash .work/dev/q/accuracy.sh $HF "-imh --varseqlen --no-calib-qkv-max"
