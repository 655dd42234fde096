# The GPU quiet (builds and tests done): every timing one after another.
source .work/dev/q/env.sh
J=$(nproc)
perf() { name=$1; shift; stamp "perf $name"; python perf.py --json $R/$name.json "$@" 2>&1 | grep -v '^\[TRT\]' | tail -6; }
prof() { name=$1; shift; stamp "profile $name"; python perf.py -i 20 --layer-profile --json $R/$name.profile.json "$@" 2>&1 | grep -v '^\[TRT\]' | tail -30; }
sq() { name=$1; shift; stamp "squad $name"; python perf.py --squad $DEV -v $LV --json $R/$name.json "$@" 2>&1 | grep -v '^\[TRT\]' | tail -6; }
have() { [ -f $E/$1.engine ]; }
# 18.3: int8 implicit with the explicit engine's flags, explicit, and the fastest implicit: twice, alternating
for r in 1 2; do
  for q in implicit-plain explicit implicit; do have large-int8-$q && perf large-int8-$q-r$r -e $E/large-int8-$q.engine -b 128 -s 384 -i 50 --cuda-graph; done
done
for q in implicit-plain explicit implicit; do
  have large-int8-$q && perf large-int8-$q-real -e $E/large-int8-$q.engine -b 128 -s 384 -i 50 --cuda-graph --real-lengths $DEV -v $LV
done
for q in implicit-plain explicit; do have large-int8-$q && prof large-int8-$q -e $E/large-int8-$q.engine -b 128 -s 384; done
# end to end after the passage-word cache (session 9: 4,438 at --jobs 8, HF rows host-bound)
have large-int8-implicit && sq large-int8-implicit-squad-j$((J/2)) -e $E/large-int8-implicit.engine -b 128 --jobs $((J/2))
have large-int8-implicit && sq large-int8-implicit-squad-j$J -e $E/large-int8-implicit.engine -b 128 --jobs $J
have large-hf-fp16-packed && sq hf-fp16-packed-squad-j$J -e $E/large-hf-fp16-packed.engine -b 32 --jobs $J
HI=$E/$HF-int8-implicit-imhvarseqlennocalibqkvmax.engine
[ -f $HI ] && sq hf-int8-implicit-imhvarseqlen-squad-j$J -e $HI -b 32 --jobs $J
for j in 8 16; do sq host-standin0-j$j --stand-in 0 -b 128 --jobs $j; done
stamp "done timing"
