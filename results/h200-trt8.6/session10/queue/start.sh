# Starts a queue detached from the run call, in a process group of its own (so that phase2.sh can
# stop it whole, builder subprocesses included): start.sh NAME SCRIPT ARGS... Its log ends with
# "queue ended" when it has run through.
source .work/dev/q/env.sh
name=$1; shift
setsid nohup bash -c 'bash "$@"; rc=$?; echo "[$(date +%T)] queue ended (exit $rc)"' queue "$@" \
    > $L/$name.log 2>&1 < /dev/null &
echo $! > $L/$name.pgid
echo "started $name (pid and process group $!)"
