# Waits up to $1 s for the queues named in $2.. to log "done", then brings every log and result back.
source .work/dev/q/env.sh
limit=$1; shift
end=$((SECONDS + limit))
while [ $SECONDS -lt $end ]; do
    left=0; for q in "$@"; do grep -q "\] done" $L/$q.log 2>/dev/null || left=$((left + 1)); done
    [ $left = 0 ] && break
    sleep 5
done
for q in "$@"; do grep -q "\] done" $L/$q.log 2>/dev/null && echo "$q: done" || echo "$q: RUNNING"; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
mkdir -p $OUT/logs $OUT/results; cp $L/*.log $OUT/logs/ 2>/dev/null; cp $R/* $OUT/results/ 2>/dev/null
for q in "$@"; do echo "== $q"; tail -4 $L/$q.log; done
