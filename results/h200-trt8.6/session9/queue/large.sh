# BERT-Large (random weights, S384, batch 128) builds, one after another: large.sh STREAM NAME...
# Each stream keeps one timing cache, so later builds of the stream reuse the kernels timed before.
source .work/dev/q/env.sh
stream=$1; shift
INT8="-iln -imh --varseqlen --gelu tanh --no-gelu-plugin"  # the fastest int8 flags (implicit only)
PLAIN="--varseqlen --gelu tanh --no-gelu-plugin"          # what explicit and implicit can both build
for name in "$@"; do
  common=(-m $LW -b 128 -v $LV --no-progress --timing-cache $E/timing-$stream.cache)
  case $name in
    int8-implicit) f=(-s 384 -i --quantization implicit $INT8 -j $TRAIN -n 64 --calib-cache $E/large-s384.calib) ;;
    # the same calibration cache: the two networks' calibrated tensors have the same names
    int8-implicit-plain) f=(-s 384 -i --quantization implicit $PLAIN -j $TRAIN -n 64 --calib-cache $E/large-s384.calib) ;;
    int8-explicit) for i in $(seq 60); do [ -f $ROOT/.work/large-s384.scales.json ] && break; sleep 5; done
                   cp $ROOT/.work/large-s384.scales.json $E/ 2>/dev/null
                   f=(-s 384 -i --quantization explicit $PLAIN -j $TRAIN -n 64 --scales $E/large-s384.scales.json) ;;
    fp16-packed) f=(-s 384 -f $PLAIN) ;;
    fp16-3prof) f=(-s 128 -s 256 -s 384 -f) ;;
    hf-fp16-packed) common=(-m $G/weights/$HF.npz -b 32 -v $LV --no-progress --timing-cache $E/timing-hf.cache); f=(-s 384 -f --varseqlen) ;;
  esac
  stamp "build large-$name"
  /usr/bin/time -f "%e s build" python builder.py "${common[@]}" -o $E/large-$name.engine "${f[@]}" 2>&1 | grep -v '^\[TRT\] \[W\]' | tail -15
  stamp "built large-$name"
done
stamp "done $stream"
