#!/usr/bin/env bash
# A network partition (issue 16): three namespace hosts; hosts 2 and 3 carry the resource "pin".
# A driver in host 1 keeps calling an actor that needs "pin" (tests/drivers/partition.c). The
# host running the actor is cut off (`ip link set eth0 down`): the GCS must declare it dead within
# the health-check window and restart the actor on the other pinned host, and the calls go on. When
# the link comes back, the cut-off raylet learns it was declared dead, ends its workers and
# registers again: the old actor worker must be gone, the node ALIVE again, and the actor's constructor must have run exactly once per
# generation (two lines in its log: the first worker and the restarted one).
#
#   partition.sh BUILD_DIR     exit 0 pass, 1 fail, 77 skipped (no root / no netns)
set -u
B=${1:?usage: partition.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77

netns_cluster_begin part 3 256m
export RAYC_HEALTH_CHECK_PERIOD_MS=200 RAYC_HEALTH_CHECK_TIMEOUT_MS=200 RAYC_HEALTH_CHECK_FAILURE_THRESHOLD=5
export RAYC_HEARTBEAT_MS=200
HEAD="$(netns_ip 1):6380"
start_node() {  # i resources-json [--head]
  local i=$1 res=$2 join=(--address "$HEAD")
  [ "${3:-}" = "--head" ] && join=(--head --port 6380)
  netns_exec "$i" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 2 \
    --object-store-memory 96M --resources "$res" --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
start_node 1 '{}' --head
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"
start_node 2 '{"pin": 1}'
start_node 3 '{"pin": 1}'

netns_spawn 1 env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" PARTITION_STOP="$ROOT/stop" \
  CTOR_LOG="$ROOT/ctor.log" "$B/tests/drivers/partition" > "$ROOT/driver.out" 2>&1
DRIVER=$NETNS_PID
for _ in $(seq 1 600); do grep -q -E 'READY|FAIL' "$ROOT/driver.out" && break; sleep 0.1; done
grep -q READY "$ROOT/driver.out" || { cat "$ROOT/driver.out"; fail "the driver did not start"; }

actor_ip() {
  netns_exec 1 "$B/bin/rayc" list actors --format json --address "$HEAD" |
    python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin) if x["state"] == "ALIVE"]
addr = a[0]["address"] if a else ""
print((addr.get("ip", "") if isinstance(addr, dict) else str(addr).split(":")[0]) if addr else "")'
}
ip=$(actor_ip)
h=0
for i in 2 3; do [ "$ip" = "$(netns_ip $i)" ] && h=$i; done
[ $h != 0 ] || fail "the actor is not on host 2 or 3 (at '$ip')"
other=$(( 5 - h ))
old_worker=$(grep -o 'ctor [0-9]*' "$ROOT/ctor.log" | head -1 | cut -d' ' -f2)
raylet_h=$(cat "$ROOT/n$h/session_latest/pids/raylet.pid")
echo "the actor runs on host $h (worker pid $old_worker); cutting host $h off"
netns_link "$h" down || fail "ip link set down"
cut_at=$(date +%s%N)
dead=0
for _ in $(seq 1 100); do
  if netns_exec 1 "$B/bin/rayc" list nodes --address "$HEAD" | grep "$(netns_ip $h)" | grep -q DEAD; then dead=1; break; fi
  sleep 0.1
done
[ $dead = 1 ] || fail "host $h was not declared dead within 10 s of the partition"
echo "host $h declared DEAD after $(( ($(date +%s%N) - cut_at) / 1000000 )) ms"
moved=0
for _ in $(seq 1 200); do [ "$(actor_ip)" = "$(netns_ip $other)" ] && { moved=1; break; }; sleep 0.1; done
[ $moved = 1 ] || fail "the actor was not restarted on host $other"
sleep 2 # calls go on against the new generation while host $h is still cut off
kill -0 "$old_worker" 2>/dev/null && echo "while cut off, the old worker (pid $old_worker) still runs on host $h"
netns_link "$h" up || fail "ip link set up"
echo "host $h reconnected"
gone=0
for _ in $(seq 1 150); do
  if ! kill -0 "$old_worker" 2>/dev/null; then gone=1; break; fi
  sleep 0.1
done
[ $gone = 1 ] || fail "15 s after the link came back, the old actor worker ($old_worker) on host $h still runs"
grep -q "declared this node dead" "$ROOT/n$h"/session_latest/logs/raylet.log || fail "host $h's raylet did not say it was declared dead"
back=0
for _ in $(seq 1 100); do
  netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q "3 nodes alive" && { back=1; break; }
  sleep 0.1
done
[ $back = 1 ] || fail "host $h did not rejoin the cluster"
kill -0 "$raylet_h" 2>/dev/null || fail "host $h's raylet exited"
echo "host $h's raylet learned it was declared dead: it ended its workers and registered again"
sleep 1
touch "$ROOT/stop"
wait "$DRIVER" 2>/dev/null
cat "$ROOT/driver.out" | grep -v " W driver"
grep -q "^PASS partition" "$ROOT/driver.out" || fail "the driver's checks failed"
lines=$(wc -l < "$ROOT/ctor.log")
[ "$lines" = 2 ] || { cat "$ROOT/ctor.log"; fail "the actor's constructor ran $lines times, not once per generation (2)"; }
echo "PASS partition: the constructor ran once per generation (2), no second copy after the link returned"
