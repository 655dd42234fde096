# Waits for the build and test queues (named after the deadline, an epoch second), stops whatever
# still runs at the deadline by its process group (logged), then runs timing.sh on the quiet GPU.
source .work/dev/q/env.sh
deadline=$1; shift
while [ $(date +%s) -lt $deadline ]; do
  left=0; for q in "$@"; do grep -q "queue ended" $L/$q.log 2>/dev/null || left=$((left + 1)); done
  [ $left = 0 ] && break
  sleep 5
done
for q in "$@"; do
  grep -q "queue ended" $L/$q.log 2>/dev/null && continue
  stamp "not done at the deadline, stopping its process group: $q"; kill -- -$(cat $L/$q.pgid)
done
sleep 3
bash .work/dev/q/timing.sh
stamp "done phase2"
