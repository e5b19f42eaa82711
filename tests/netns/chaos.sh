#!/usr/bin/env bash
# The chaos suite (issue 16): three namespace hosts, the GCS on Redis, and a driver in host 1
# (tests/drivers/chaos.c) running checked rounds of work (a DAG of 2,047 tasks, 5 actors with
# restarts, a placement group, objects beyond the store's capacity) while a killer on a seeded
# schedule SIGKILLs workers (any host), raylets, stores and whole nodes (hosts 2 and 3, which then
# start again as new nodes), the GCS (restarted on Redis), and pauses daemons with SIGSTOP/SIGCONT.
# The killer runs for SECONDS and at least MIN_KILLS kills. At the end: the driver's results all
# right, every daemon's RSS and fd count within a bound, and after `rayc stop` no rayc process,
# shared-memory segment or spill file left. The kills survived are printed by kind; any failure
# prints the seed that reproduces the schedule.
#
#   chaos.sh BUILD_DIR [SEED] [SECONDS] [MIN_KILLS]   exit 0 pass, 1 fail, 77 skipped
set -u
B=${1:?usage: chaos.sh BUILD_DIR [SEED] [SECONDS] [MIN_KILLS]}
SEED=${2:-$(( $(date +%s) % 100000 ))}
SECS=${3:-40}
MIN_KILLS=${4:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77
RANDOM=$SEED
echo "chaos: seed $SEED, ${SECS} s, at least $MIN_KILLS kills (rerun: $0 $B $SEED $SECS $MIN_KILLS)"

netns_cluster_begin chaos 3 512m "seed $SEED: rerun with $0 $B $SEED $SECS $MIN_KILLS"
export RAYC_HEALTH_CHECK_PERIOD_MS=200 RAYC_HEALTH_CHECK_TIMEOUT_MS=300 RAYC_HEALTH_CHECK_FAILURE_THRESHOLD=5
export RAYC_HEARTBEAT_MS=200 RAYC_INFEASIBLE_TIMEOUT_MS=120000
HEAD="$(netns_ip 1):6380"
start_node() {  # i [--head]
  local i=$1 join=(--address "$HEAD")
  [ "${2:-}" = "--head" ] && join=(--head --port 6380 --redis-address "unix:$ROOT/redis.sock")
  netns_exec "$i" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 2 \
    --object-store-memory 96M --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
netns_spawn 1 redis-server --port 0 --unixsocket "$ROOT/redis.sock" --dir "$ROOT" --save '' --appendonly no \
  > "$ROOT/redis.out" 2>&1
for _ in $(seq 1 100); do [ -S "$ROOT/redis.sock" ] && break; sleep 0.05; done
start_node 1 --head
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"
start_node 2
start_node 3

netns_spawn 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" CHAOS_STOP="$ROOT/stop" \
  "$B/tests/drivers/chaos" > "$ROOT/driver.out" 2>&1
DRIVER=$NETNS_PID
for _ in $(seq 1 600); do grep -q -E 'READY|FAIL' "$ROOT/driver.out" && break; sleep 0.1; done
grep -q READY "$ROOT/driver.out" || { cat "$ROOT/driver.out"; fail "the driver did not start"; }

declare -A KILLS=([worker]=0 [raylet]=0 [store]=0 [node]=0 [gcs]=0 [sigstop]=0)
pid_of() { cat "$ROOT/n$1/session_latest/pids/$2.pid" 2>/dev/null; }
restart_node() {  # i: whatever is left of node i is stopped, then it starts again (a new node)
  sleep 0.5
  netns_exec "$1" "$B/bin/rayc" stop --force --temp-dir "$ROOT/n$1" > /dev/null 2>&1
  start_node "$1"
}
kill_worker() {
  local i=$(( RANDOM % 3 + 1 )) f pids=()
  for f in "$ROOT/n$i"/session_latest/pids/worker-*.pid; do [ -e "$f" ] && pids+=("$(cat "$f")"); done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -9 "${pids[$(( RANDOM % ${#pids[@]} ))]}" 2>/dev/null && KILLS[worker]=$(( KILLS[worker] + 1 ))
}
kill_daemon() {  # kind (raylet|store)
  local i=$(( RANDOM % 2 + 2 ))
  kill -9 "$(pid_of "$i" "$1")" 2>/dev/null && KILLS[$1]=$(( KILLS[$1] + 1 ))
  restart_node "$i"
}
kill_node() {
  local i=$(( RANDOM % 2 + 2 )) f
  for f in "$ROOT/n$i"/session_latest/pids/*.pid; do kill -9 "$(cat "$f")" 2>/dev/null; done
  KILLS[node]=$(( KILLS[node] + 1 ))
  restart_node "$i"
}
kill_gcs() {
  local pid argv
  pid=$(pid_of 1 gcs) || return 0
  mapfile -d '' argv < "/proc/$pid/cmdline"
  kill -9 "$pid" 2>/dev/null || return 0
  KILLS[gcs]=$(( KILLS[gcs] + 1 ))
  sleep 0.3
  netns_spawn 1 setsid "${argv[@]}" >> "$ROOT/gcs-restarted.out" 2>&1
  echo "$NETNS_PID" > "$ROOT"/n1/session_latest/pids/gcs.pid
  sleep 1 # let it reload from Redis before the next fault
}
pause_one() {
  local i=$(( RANDOM % 3 + 1 )) kinds=(raylet store) pid
  [ "$i" = 1 ] && kinds=(gcs)
  pid=$(pid_of "$i" "${kinds[$(( RANDOM % ${#kinds[@]} ))]}") || return 0
  kill -STOP "$pid" 2>/dev/null || return 0
  sleep "0.$(( RANDOM % 5 + 1 ))"
  kill -CONT "$pid"
  KILLS[sigstop]=$(( KILLS[sigstop] + 1 ))
}

start=$(date +%s)
total=0
while [ $(( $(date +%s) - start )) -lt "$SECS" ] || [ "$total" -lt "$MIN_KILLS" ]; do
  grep -q FAIL "$ROOT/driver.out" && break
  sleep "0.$(( RANDOM % 6 + 2 ))"
  r=$(( RANDOM % 100 ))
  if [ $r -lt 45 ]; then kill_worker
  elif [ $r -lt 60 ]; then pause_one
  elif [ $r -lt 70 ]; then kill_daemon raylet
  elif [ $r -lt 78 ]; then kill_daemon store
  elif [ $r -lt 88 ]; then kill_node
  else kill_gcs
  fi
  total=0
  for k in "${!KILLS[@]}"; do total=$(( total + KILLS[$k] )); done
  [ $(( $(date +%s) - start )) -gt $(( SECS * 6 + 300 )) ] && break
done
summary="worker ${KILLS[worker]}, raylet ${KILLS[raylet]}, store ${KILLS[store]}, node ${KILLS[node]}, gcs ${KILLS[gcs]}, sigstop ${KILLS[sigstop]}"
echo "chaos: killer done after $(( $(date +%s) - start )) s: $summary; total $total"
touch "$ROOT/stop"
for _ in $(seq 1 6000); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 0.1; done
tail -3 "$ROOT/driver.out"
grep -q "^PASS chaos" "$ROOT/driver.out" || fail "the driver's checks failed"
[ "$total" -ge "$MIN_KILLS" ] || fail "only $total kills"

# Bounds on every daemon still running: RSS and open fds.
for i in 1 2 3; do
  for d in gcs raylet store; do
    pid=$(pid_of "$i" "$d") || continue
    [ -d "/proc/$pid" ] || continue
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    echo "chaos: host $i $d: RSS $(( rss / 1024 )) MiB, $fds fds"
    [ "$rss" -lt $(( 600 * 1024 )) ] || fail "host $i $d uses $(( rss / 1024 )) MiB"
    [ "$fds" -lt 1000 ] || fail "host $i $d holds $fds fds"
  done
done
for i in 3 2 1; do netns_exec "$i" "$B/bin/rayc" stop --temp-dir "$ROOT/n$i" > /dev/null 2>&1; done
left=0
for _ in $(seq 1 50); do  # workers may take a moment to exit after their raylet
  left=$(pgrep -f -- "$ROOT/n" | wc -l)
  [ "$left" = 0 ] && break
  sleep 0.1
done
[ "$left" = 0 ] || { pgrep -a -f -- "$ROOT/n" | head; fail "$left rayc processes left after rayc stop"; }
for i in 1 2 3; do
  shm=$(netns_exec "$i" sh -c 'ls /dev/shm | wc -l')
  [ "$shm" = 0 ] || fail "host $i: $shm shared-memory segments left"
done
spill=$(find "$ROOT"/n*/session_*/spill -type f 2>/dev/null | wc -l)
[ "$spill" = 0 ] || fail "$spill spill files left"
echo "PASS chaos: seed $SEED; kills survived: $summary; total $total; $(grep '^PASS chaos' "$ROOT/driver.out" | cut -d: -f2)"
