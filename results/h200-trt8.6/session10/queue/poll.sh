# Waits up to $1 s for the queues named in $2.. to end ("queue ended"), then brings every log and result back
# (one tarball: the return has a file-count limit), the calibration caches with their .max files
# (session 9 kept the caches without them, so session 10 could build only with --no-calib-qkv-max).
source .work/dev/q/env.sh
limit=$1; shift
end=$((SECONDS + limit))
while [ $SECONDS -lt $end ]; do
    left=0; for q in "$@"; do grep -q "queue ended" $L/$q.log 2>/dev/null || left=$((left + 1)); done
    [ $left = 0 ] && break
    sleep 5
done
for q in "$@"; do grep -q "queue ended" $L/$q.log 2>/dev/null && echo "$q: done" || echo "$q: RUNNING"; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; uptime
ls $E
tar czf $OUT/back.tgz -C $B logs results $(cd $B && ls engines/*.calib engines/*.calib.max engines/*.scales.json engines/*.cache 2>/dev/null)
for f in $L/*.log; do echo "== $(basename $f)"; grep -E '^\[[0-9:]+\]|s build|exact_match|passed|failed|PASSED|FAILED|Error|error' $f | tail -12; done
