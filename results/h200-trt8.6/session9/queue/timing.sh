# The GPU quiet (builds done): every timing one after another.
source .work/dev/q/env.sh
J=$(nproc)
perf() { name=$1; shift; stamp "perf $name"; python perf.py --json $R/$name.json "$@" 2>&1 | grep -v '^\[TRT\]' | tail -6; }
prof() { name=$1; shift; stamp "profile $name"; python perf.py -i 20 --layer-profile --json $R/$name.profile.json "$@" 2>&1 | grep -v '^\[TRT\]' | tail -30; }
sq() { name=$1; shift; stamp "squad $name"; python perf.py --squad $DEV -v $LV --json $R/$name.json "$@" 2>&1 | grep -v '^\[TRT\]' | tail -6; }
have() { [ -f $E/$1.engine ]; }
# 18.3: int8 explicit against implicit with the same flags (and the fastest implicit), twice, alternating
for r in 1 2; do
  for q in implicit-plain explicit implicit; do have large-int8-$q && perf large-int8-$q-r$r -e $E/large-int8-$q.engine -b 128 -s 384 -i 50 --cuda-graph; done
done
for q in implicit-plain explicit implicit; do have large-int8-$q && prof large-int8-$q -e $E/large-int8-$q.engine -b 128 -s 384; done
# 19.2: real SQuAD lengths against all-ones masks, same engines
for e in large-int8-implicit large-int8-explicit large-fp16-packed large-fp16-3prof; do
  have $e && perf $e-real -e $E/$e.engine -b 128 -s 384 -i 50 --cuda-graph --real-lengths $DEV -v $LV
done
for e in large-fp16-packed large-fp16-3prof; do have $e && perf $e-ones -e $E/$e.engine -b 128 -s 384 -i 50 --cuda-graph; done
# 19.1: end to end, SQuAD v1.1 dev JSON in, answers out
for e in large-int8-implicit large-int8-explicit large-fp16-packed; do have $e && sq $e-squad-j$J -e $E/$e.engine -b 128 --jobs $J; done
have large-int8-implicit && sq large-int8-implicit-squad-j$((J/2)) -e $E/large-int8-implicit.engine -b 128 --jobs $((J/2))
have large-fp16-3prof && sq large-fp16-3prof-squad-sorted-j$J -e $E/large-fp16-3prof.engine -b 128 --jobs $J --sort-by-length

have large-hf-fp16-packed && sq hf-fp16-packed-squad-j$J -e $E/large-hf-fp16-packed.engine -b 32 --jobs $J
HI=$E/$HF-int8-implicit-imhvarseqlen.engine
[ -f $HI ] && sq hf-int8-implicit-imhvarseqlen-squad-j$J -e $HI -b 32 --jobs $J
# the main process of one end-to-end run, profiled (where the host time goes beside the engine)
if have large-int8-implicit; then
  stamp "host profile"
  python -m cProfile -o $R/host-profile.prof perf.py --squad $DEV -v $LV -e $E/large-int8-implicit.engine -b 128 --jobs $J 2>&1 | grep -v '^\[TRT\]' | tail -4
  python -c "import pstats; s = pstats.Stats('$R/host-profile.prof'); s.sort_stats('cumulative').print_stats(35); s.sort_stats('tottime').print_stats(25)" > $R/host-profile.txt
  head -80 $R/host-profile.txt | tail -60
fi
# layer profiles of the small models' implicit engines (issue 18 item 2's int8 share)
for v in picks imhvarseqlen varseqlen; do for M in $TF $HF; do
  [ -f $E/$M-int8-implicit-$v.engine ] && prof $M-int8-implicit-$v -e $E/$M-int8-implicit-$v.engine -b 32 -s 384
done; done
# 19.4: the host pipeline alone, by jobs
for j in 1 4 8 16; do sq host-standin0-j$j --stand-in 0 -b 128 --jobs $j; done
stamp "timings done"
# 19.3: PyTorch on the same windows (eager, CUDA graph, sorted, torch.compile max-autotune), GEMM rate
stamp "pytorch"
timeout 240 /opt/torch/.venv/bin/python3 scripts/pytorch_perf.py --model large --squad $DEV -v $LV -b 128 --compile --json $R/torch-large-squad.json 2>&1 | grep -v Warning | tail -20
stamp "done timing"
