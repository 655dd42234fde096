# Starts a queue detached from the run call: start.sh NAME SCRIPT ARGS...
source .work/dev/q/env.sh
name=$1; shift
setsid nohup bash "$@" > $L/$name.log 2>&1 < /dev/null &
echo "started $name (pid $!)"
