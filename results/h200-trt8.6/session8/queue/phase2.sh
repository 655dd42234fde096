# Phase 2: end to end first (checks the asynchronous runner), then timings once the builds are done.
source .work/dev/q/env.sh
perf() { name=$1; shift; stamp "perf $name"; python perf.py --cuda-graph --json $R/$name.json "$@" 2>&1 | grep -v "^\[TRT\]" | tail -8; }
sq() { name=$1; shift; stamp "squad $name"; python perf.py --squad $DEV -v $LV --json $R/$name.json "$@" 2>&1 | grep -v "^\[TRT\]" | tail -6; }
HFE=$E/$HF-int8-explicit-varseqlen.engine
sq large-int8-explicit-squad-j16 -e $E/large-int8-explicit.engine -b 128 --jobs 16
sq hf-int8-explicit-varseqlen-squad-j16 -e $HFE -b 32 --jobs 16
stamp "inference.py --jobs 1 against --jobs 16 (HF int8 explicit packed)"
python inference.py -e $HFE -v $G/models/$HF/vocab.txt -s 384 -b 32 -sq $DEV -o $R/hf-explicit-varseqlen-jobs1.predictions.json --no-progress --jobs 1 2>&1 | tail -1
python - $R/hf-explicit-varseqlen-jobs1.predictions.json $R/$HF-int8-explicit-varseqlen.predictions.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
print(f"jobs 1 vs 16: {sum(a[k] != b[k] for k in a)} of {len(a)} answers differ")
PY
for i in $(seq 1 30); do pgrep -f "^python [b]uilder.py" > /dev/null || break; sleep 5; done
stamp "builders still running: $(pgrep -fc '^python [b]uilder.py')"
for r in 1 2; do for v in old new; do perf large-fp16-$v-r$r -e $E/large-fp16-$v.engine -b 128 -s 384 -i 100; done; done
for r in 1 2; do for q in explicit implicit implicit-plain; do [ -f $E/large-int8-$q.engine ] && perf large-int8-$q-r$r -e $E/large-int8-$q.engine -b 128 -s 384 -i 100; done; done
perf large-int8-explicit-real -e $E/large-int8-explicit.engine -b 128 -s 384 -i 50 --real-lengths $DEV -v $LV
perf large-fp16-packed-real -e $E/large-fp16-packed.engine -b 128 -s 384 -i 50 --real-lengths $DEV -v $LV
perf large-fp16-packed-ones -e $E/large-fp16-packed.engine -b 128 -s 384 -i 50
sq large-fp16-packed-squad-j16 -e $E/large-fp16-packed.engine -b 128 --jobs 16
[ -f $E/large-int8-implicit.engine ] && sq large-int8-implicit-squad-j16 -e $E/large-int8-implicit.engine -b 128 --jobs 16
stamp "pytorch"
/opt/torch/.venv/bin/python3 scripts/pytorch_perf.py --model large --squad $DEV -v $LV -b 128 --json $R/torch-large-squad.json 2>&1 | tail -5
for j in 1 4 16; do sq host-standin0-j$j --stand-in 0 -b 128 --jobs $j; done
stamp "done phase2"
