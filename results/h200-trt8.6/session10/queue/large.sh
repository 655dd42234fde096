# BERT-Large (random weights, S384, batch 128) builds, one after another: large.sh STREAM NAME...
# No build calibrates: the implicit ones read session 9's calibration cache (its .max file, the QKV
# inputs' maxima, was not kept, so --no-calib-qkv-max: speed only), the explicit one its
# scales. Each stream keeps one timing cache. Every build's whole log stays in $L/build-NAME.log.
source .work/dev/q/env.sh
stream=$1; shift
INT8="-iln -imh --varseqlen --gelu tanh --no-gelu-plugin"  # the fastest int8 flags (implicit only)
PLAIN="--varseqlen --gelu tanh --no-gelu-plugin"          # what explicit and implicit can both build
for name in "$@"; do
  common=(-m $LW -b 128 -v $LV --no-progress --timing-cache $E/timing-$stream.cache)
  case $name in
    int8-implicit) f=(-s 384 -i --quantization implicit $INT8 -j $TRAIN -n 64 --calib-cache $E/large-s384.calib --no-calib-qkv-max) ;;
    # the same calibration cache: both networks name their calibrated tensors alike (helpers/names.py)
    int8-implicit-plain) f=(-s 384 -i --quantization implicit $PLAIN -j $TRAIN -n 64 --calib-cache $E/large-s384.calib --no-calib-qkv-max) ;;
    int8-explicit) f=(-s 384 -i --quantization explicit $PLAIN -j $TRAIN -n 64 --scales $E/large-s384.scales.json) ;;
    hf-fp16-packed) common=(-m $G/weights/$HF.npz -b 32 -v $LV --no-progress --timing-cache $E/timing-hf.cache); f=(-s 384 -f --varseqlen) ;;
  esac
  stamp "build large-$name"
  /usr/bin/time -f "%e s build" python builder.py "${common[@]}" -o $E/large-$name.engine "${f[@]}" > $L/build-$name.log 2>&1
  grep -v '^\[TRT\] \[W\]' $L/build-$name.log | tail -8
  echo "TensorRT warnings: $(grep -c '^\[TRT\] \[W\]' $L/build-$name.log), of them missing scales: $(grep -ci 'missing scale' $L/build-$name.log)"
  stamp "built large-$name"
done
stamp "done $stream"
