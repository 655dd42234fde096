# The GPU quiet: every timing one after another (issue 18 items 3-4, issue 19 items 1-2).
source .work/dev/q/env.sh
perf() { name=$1; shift; stamp "perf $name"; python perf.py --cuda-graph --json $R/$name.json "$@" 2>&1 | tail -12; }
# 18.3: int8 explicit against implicit, BERT-Large S384 B128, twice in alternating order
for r in 1 2; do
  for q in implicit-plain explicit implicit; do perf large-int8-$q-r$r -e $E/large-int8-$q.engine -b 128 -s 384 -i 100; done
done
# 18.4: the old builder's default fp16 engine against the new one's
for r in 1 2; do for v in old new; do perf large-fp16-$v-r$r -e $E/large-fp16-$v.engine -b 128 -s 384 -i 100; done; done
# 19.2: real SQuAD lengths against all-ones masks, same engines
for e in large-int8-explicit large-int8-implicit large-fp16-packed large-fp16-3prof; do
  perf $e-real -e $E/$e.engine -b 128 -s 384 -i 50 --real-lengths $DEV -v $LV
done
perf large-fp16-packed-ones -e $E/large-fp16-packed.engine -b 128 -s 384 -i 50
perf large-fp16-3prof-ones -e $E/large-fp16-3prof.engine -b 128 -s 384 -i 50
# 19.1: end to end, SQuAD v1.1 dev JSON in, answers out
J=$(nproc)
for e in large-int8-explicit large-int8-implicit large-fp16-packed; do
  stamp "squad $e"; python perf.py --squad $DEV -v $LV -e $E/$e.engine -b 128 --jobs $J --json $R/$e-squad-j$J.json 2>&1 | tail -12
done
stamp "squad large-fp16-3prof sorted"
python perf.py --squad $DEV -v $LV -e $E/large-fp16-3prof.engine -b 128 --jobs $J --sort-by-length --json $R/large-fp16-3prof-squad-sorted-j$J.json 2>&1 | tail -12
stamp "squad large-int8-explicit jobs $((J/2))"
python perf.py --squad $DEV -v $LV -e $E/large-int8-explicit.engine -b 128 --jobs $((J/2)) --json $R/large-int8-explicit-squad-j$((J/2)).json 2>&1 | tail -12
for e in large-hf-fp16-packed $HF-int8-implicit-imhvarseqlen; do
  stamp "squad $e"; python perf.py --squad $DEV -v $LV -e $E/$e.engine -b 32 --jobs $J --json $R/$e-squad-j$J.json 2>&1 | tail -12
done
stamp "done timing"
