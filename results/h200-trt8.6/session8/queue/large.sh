# Builds for issue 18 items 3-4 and issue 19 (BERT-Large, random weights, S384, batch 128). Usage: large.sh NAME
source .work/dev/q/env.sh
INT8="-iln -imh --varseqlen --gelu tanh --no-gelu-plugin"  # the fastest int8 flags (implicit only: explicit refuses -iln/-imh)
PLAIN="--varseqlen --gelu tanh --no-gelu-plugin"          # what explicit and implicit can both build
common=(-m $LW -b 128 -v $LV --no-progress)
case $1 in
  int8-implicit) f=(-s 384 -i --quantization implicit $INT8 -j $TRAIN -n 64 --calib-cache $E/large-s384.calib) ;;
  int8-implicit-plain) f=(-s 384 -i --quantization implicit $PLAIN -j $TRAIN -n 64 --calib-cache $E/large-s384-plain.calib) ;;
  int8-explicit) f=(-s 384 -i --quantization explicit $PLAIN -j $TRAIN -n 64 --scales $E/large-s384.scales.json) ;;
  fp16-new) f=(-s 384 -f) ;;
  fp16-old) (cd .work/old && /usr/bin/time -f "%e s build" python builder.py -m $LW -o $E/large-fp16-old.engine -b 128 -s 384 -f); exit ;;
  fp16-packed) f=(-s 384 -f --varseqlen --gelu tanh --no-gelu-plugin) ;;
  fp16-3prof) f=(-s 128 -s 256 -s 384 -f) ;;
  hf-fp16-packed) common=(-m $G/weights/$HF.npz -b 32 -v $LV --no-progress); f=(-s 384 -f --varseqlen) ;;
esac
stamp "build large-$1"
/usr/bin/time -f "%e s build" python builder.py "${common[@]}" -o $E/large-$1.engine "${f[@]}"
stamp "done large-$1"
