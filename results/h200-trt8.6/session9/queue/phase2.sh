# Waits for the builds and the tests (queues named after the deadline, an epoch second), stops
# whatever still runs at the deadline (logged), then runs timing.sh on the quiet GPU.
source .work/dev/q/env.sh
deadline=$1; shift
while [ $(date +%s) -lt $deadline ]; do
  left=0; for q in "$@"; do grep -q "\] done" $L/$q.log 2>/dev/null || left=$((left + 1)); done
  [ $left = 0 ] && break
  sleep 5
done
for q in "$@"; do grep -q "\] done" $L/$q.log 2>/dev/null || stamp "not done at the deadline: $q"; done
for p in $(pgrep -f "^python [b]uilder.py"; pgrep -f "[p]ytest -v -s -rA tests/test_gpu.py"); do
  stamp "stopping: $(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-200)"; kill $p
done
pkill -f "[a]ccuracy.sh"; pkill -f "[l]arge.sh"; sleep 3
bash .work/dev/q/timing.sh
stamp "done phase2"
