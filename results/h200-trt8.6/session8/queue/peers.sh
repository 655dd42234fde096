# Issue 19 items 3-4: PyTorch on the same windows, the GEMM rate, then the host pipeline's scaling.
source .work/dev/q/env.sh
stamp "pytorch"
/opt/torch/.venv/bin/python3 scripts/pytorch_perf.py --model large --squad $DEV -v $LV -b 128 --json $R/torch-large-squad.json 2>&1 | tail -15
for j in 1 4 8 16; do
  stamp "host jobs $j"; python perf.py --squad $DEV -v $LV --stand-in 0 -b 128 --jobs $j --json $R/host-standin0-j$j.json 2>&1 | tail -6
done
stamp "done peers"
