# Started once the timings began (hf.sh had not been started with the other queues): waits for
# phase2 to end, then hf.sh and the HF int8 engine's end-to-end row and layer profile.
source .work/dev/q/env.sh
until grep -q "queue ended" $L/phase2.log 2>/dev/null; do sleep 5; done
stamp "after phase2: hf.sh"
bash .work/dev/q/hf.sh
HI=$E/$HF-int8-implicit-imhvarseqlennocalibqkvmax.engine
[ -f $HI ] && { stamp "squad hf int8"; python perf.py --squad $DEV -v $LV --json $R/hf-int8-implicit-imhvarseqlennocalibqkvmax-squad-j16.json -e $HI -b 32 --jobs 16 2>&1 | grep -v '^\[TRT\]' | tail -6; }
[ -f $HI ] && { stamp "profile hf int8"; python perf.py -i 20 --layer-profile --json $R/$HF-int8-implicit-imhvarseqlennocalibqkvmax.profile.json -e $HI -b 32 -s 384 2>&1 | grep -v '^\[TRT\]' | tail -12; }
stamp "done after"
