#!/usr/bin/env bash
# Multi-host cluster test: a head and two nodes, each a network namespace host (tests/netns/netns.sh),
# started with the real `rayc start`; a driver in host 1 checks spillback, custom resources, SPREAD,
# node affinity and a STRICT_SPREAD placement group of 3 bundles (one per node); the GCS is killed
# and restarted (Redis) under a workload, a placement group and a named detached actor, which must
# all survive; then node 3 is killed (every process SIGKILLed) mid-workload, and the test checks
# that the GCS marks it dead in time, that its tasks complete on the other nodes and that a SPREAD
# group's bundle on it is reserved again elsewhere. Node 3 then starts again, and the script checks
# that a SIGKILLed driver's workers end on every node (its job ends through the GCS's JOB channel)
# and that `rayc stop` drains node 3: its running tasks finish there, new ones go elsewhere, and it
# leaves the cluster as "drained".
#
#   cluster_multinode.sh BUILD_DIR     exit 0 pass, 1 fail, 77 skipped (no root / no netns)
set -u
B=${1:?usage: cluster_multinode.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77

netns_cluster_begin mn 3 256m
# Fast failure detection and fresh resource views for the test.
export RAYC_HEALTH_CHECK_PERIOD_MS=200 RAYC_HEALTH_CHECK_TIMEOUT_MS=200 RAYC_HEALTH_CHECK_FAILURE_THRESHOLD=5
export RAYC_HEARTBEAT_MS=200 RAYC_INFEASIBLE_TIMEOUT_MS=3000
HEAD="$(netns_ip 1):6380"
start_node() {  # i resources-json [--head]
  local i=$1 res=$2; shift 2
  local join=(--address "$HEAD")
  [ "${1:-}" = "--head" ] && { shift; join=(--head --port 6380 "$@"); }
  netns_exec "$i" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 2 \
    --object-store-memory 128M --resources "$res" --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
# The head keeps its tables in a real redis-server (in host 1), so the GCS can be killed and restarted.
netns_spawn 1 redis-server --port 0 --unixsocket "$ROOT/redis.sock" --dir "$ROOT" --save '' --appendonly no \
  > "$ROOT/redis.out" 2>&1
for _ in $(seq 1 100); do [ -S "$ROOT/redis.sock" ] && break; sleep 0.05; done
[ -S "$ROOT/redis.sock" ] || fail "redis-server did not start"
start_node 1 '{"host1": 100}' --head --redis-address "unix:$ROOT/redis.sock"
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"  # the head's token: for the joining nodes and the drivers
start_node 2 '{"host2": 100}'
start_node 3 '{"host3": 100, "special": 1}'
sleep 0.5
netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | sed -n '1,40p'

drive() {  # mode: runs the driver in host 1
  netns_exec 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" "$B/tests/drivers/multinode" "$1"
}
drive basic || fail "basic checks"

# kill -9 the GCS mid-workload and restart it with the same command line: the raylets carry on,
# the tasks complete, and the restarted GCS (reloaded from Redis) serves a new driver; a named
# detached actor made before keeps its worker and its state.
drive actor_before || fail "a named detached actor before the GCS restart"
netns_spawn 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" "$B/tests/drivers/multinode" workload \
  > "$ROOT/workload.out" 2>&1
WL=$NETNS_PID
for _ in $(seq 1 300); do grep -q READY "$ROOT/workload.out" && break; sleep 0.1; done
GCS_PID=$(cat "$ROOT"/n1/session_latest/pids/gcs.pid)
mapfile -d '' GCS_ARGV < "/proc/$GCS_PID/cmdline"
kill -9 "$GCS_PID"
echo "GCS (pid $GCS_PID) killed with SIGKILL"
sleep 1
netns_spawn 1 setsid "${GCS_ARGV[@]}" > "$ROOT/gcs-restarted.out" 2>&1
echo "GCS restarted (pid $NETNS_PID)"
echo "$NETNS_PID" > "$ROOT"/n1/session_latest/pids/gcs.pid
wait "$WL" 2>/dev/null
cat "$ROOT/workload.out"
grep -q "PASS workload" "$ROOT/workload.out" || fail "the workload did not survive the GCS restart"
sleep 1.5
netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -E "nodes alive" || fail "rayc status after the restart"
drive nodes || fail "a new driver after the GCS restart"
drive actor_after || fail "the named detached actor after the GCS restart"
echo "GCS restart: workload completed, 3 nodes alive, new driver served, actor kept"

# Kill node 3 while tasks run on it.
netns_spawn 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" "$B/tests/drivers/multinode" killnode \
  > "$ROOT/killnode.out" 2>&1
DRIVER=$NETNS_PID
for _ in $(seq 1 300); do grep -q READY "$ROOT/killnode.out" && break; sleep 0.1; done
grep -q READY "$ROOT/killnode.out" || { cat "$ROOT/killnode.out"; fail "the killnode driver did not start"; }
killed_at=$(date +%s%N)
for f in "$ROOT"/n3/session_latest/pids/*.pid; do kill -9 "$(cat "$f")" 2>/dev/null; done
echo "node 3: every process SIGKILLed"
# The GCS must mark it dead within period * threshold (1 s) plus slack.
dead=0
for _ in $(seq 1 50); do
  if netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q DEAD; then dead=1; break; fi
  sleep 0.1
done
ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
[ $dead = 1 ] || fail "node 3 was not marked dead within 5 s"
echo "node 3 marked DEAD after ${ms} ms"
wait "$DRIVER" 2>/dev/null; rc=$?
cat "$ROOT/killnode.out"
grep -q "PASS killnode" "$ROOT/killnode.out" || fail "tasks of the dead node were not all completed"

# An actor that needs node 3's resource waits while node 3 is dead, and runs once it is back.
drive pending_before || fail "an actor needing a dead node's resource is not pending"

# Node 3 comes back (a new node) for the next checks.
start_node 3 '{"host3": 100, "special": 1}'
sleep 0.5
drive pending_after || fail "the pending actor was not placed on the node that came back"

# job_workers JOB I: how many live workers of job JOB node I has.
job_workers() {
  local n=0 f pid
  for f in "$ROOT/n$2"/session_latest/pids/worker-*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null) || continue
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--job-id $1 " && n=$((n + 1))
  done
  echo $n
}
# A driver with tasks running on nodes 2 and 3 is SIGKILLed: its raylet marks the job finished,
# and every raylet, told through the JOB channel, ends the job's workers.
netns_spawn 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" "$B/tests/drivers/multinode" orphan \
  > "$ROOT/orphan.out" 2>&1
ORPHAN=$NETNS_PID
for _ in $(seq 1 300); do grep -q READY "$ROOT/orphan.out" && break; sleep 0.1; done
grep -q READY "$ROOT/orphan.out" || { cat "$ROOT/orphan.out"; fail "the orphan driver did not start"; }
JOB=$(netns_exec 1 "$B/bin/rayc" list jobs --address "$HEAD" | awk -v p="$ORPHAN" '$2 == "RUNNING" && $3 == p {print $1}')
[ -n "$JOB" ] || fail "the orphan driver's job is not RUNNING in rayc list jobs"
w2=$(job_workers "$JOB" 2) w3=$(job_workers "$JOB" 3)
echo "job $JOB: $w2 workers on node 2, $w3 on node 3"
[ "$w2" -ge 1 ] && [ "$w3" -ge 1 ] || fail "the orphan driver's tasks are not running on nodes 2 and 3"
kill -9 "$ORPHAN"
killed_at=$(date +%s%N)
gone=0
for _ in $(seq 1 100); do
  if [ "$(job_workers "$JOB" 2)" = 0 ] && [ "$(job_workers "$JOB" 3)" = 0 ]; then gone=1; break; fi
  sleep 0.1
done
ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
[ $gone = 1 ] || fail "workers of job $JOB still run on nodes 2/3 10 s after its driver was killed"
echo "driver SIGKILLed: its workers on nodes 2 and 3 were gone after ${ms} ms"
netns_exec 1 "$B/bin/rayc" list jobs --address "$HEAD" | grep "^$JOB " | tee "$ROOT/orphan-job.out"
grep -q "FINISHED.*driver (pid $ORPHAN) disconnected" "$ROOT/orphan-job.out" || fail "job $JOB is not finished"

# rayc stop on node 3 while two 4 s tasks run there: it drains, the tasks finish there, tasks
# submitted meanwhile run on nodes 1 and 2, and the node leaves the cluster as drained.
netns_spawn 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" DRAIN_FILE="$ROOT/draining" \
  "$B/tests/drivers/multinode" drain > "$ROOT/drain.out" 2>&1
DRIVER=$NETNS_PID
for _ in $(seq 1 300); do grep -q READY "$ROOT/drain.out" && break; sleep 0.1; done
grep -q READY "$ROOT/drain.out" || { cat "$ROOT/drain.out"; fail "the drain driver did not start"; }
netns_spawn 3 "$B/bin/rayc" stop --temp-dir "$ROOT/n3" > "$ROOT/stop3.out" 2>&1
STOP=$NETNS_PID
for _ in $(seq 1 100); do
  netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q -E "draining|drained" && break
  sleep 0.1
done
netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -E "draining|drained"
touch "$ROOT/draining"
wait "$STOP" 2>/dev/null
cat "$ROOT/stop3.out"
grep -q "node drained" "$ROOT/stop3.out" || fail "rayc stop did not drain node 3"
wait "$DRIVER" 2>/dev/null
cat "$ROOT/drain.out"
grep -q "PASS drain" "$ROOT/drain.out" || fail "the drain checks failed"
netns_exec 1 "$B/bin/rayc" list nodes --address "$HEAD" | grep "$(netns_ip 3)" | tee "$ROOT/nodes.out"
grep -q "DEAD *drained: rayc stop" "$ROOT/nodes.out" || fail "rayc list nodes does not show node 3 drained"
echo "PASS multinode"
