#!/usr/bin/env bash
# A placement group removed while its node is unreachable (issue 17): host 2 holds the only "pin"
# and a group's bundle reserves it. Host 2 is cut off (`ip link set eth0 down`, and the GCS's TCP
# connections to it closed with `ss -K`, so nothing sent before is delivered late); the group is
# removed, so the GCS's CancelResourceReserve to host 2 fails. The health-check threshold is high
# enough that host 2 stays ALIVE. When the link returns, the GCS's retried cancel must give the
# bundle's resource back: the cluster shows pin 1 available again.
#
#   pg_cancel_retry.sh BUILD_DIR     exit 0 pass, 1 fail, 77 skipped (no root / no netns)
set -u
B=${1:?usage: pg_cancel_retry.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77
unset RAYC_ADDRESS RAYC_TOKEN_FILE RAYC_TOKEN RAYC_CODE_PATH

NETNS_NO_SANITIZER_CHECK=1 # the Python driver is not built with the sanitizers
netns_cluster_begin pgcancel 2 256m
export RAYC_HEALTH_CHECK_FAILURE_THRESHOLD=60 # host 2 stays ALIVE while cut off
HEAD="$(netns_ip 1):6380"
start_node() { # i resources-json [--head]
  local i=$1 res=$2 join=(--address "$HEAD")
  [ "${3:-}" = "--head" ] && join=(--head --port 6380)
  netns_exec "$i" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 1 \
    --object-store-memory 96M --resources "$res" --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
start_node 1 '{}' --head
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"
start_node 2 '{"pin": 1}'

netns_spawn 1 env ROOT="$ROOT" RAYC_ADDRESS="$HEAD" PYTHONPATH="$B/python" /usr/bin/python3 \
  "$HERE/pg_cancel_retry.py" > "$ROOT/driver.out" 2>&1
DRIVER=$NETNS_PID
for _ in $(seq 1 600); do grep -q -E 'READY|FAIL|Error' "$ROOT/driver.out" && break; sleep 0.1; done
grep -q READY "$ROOT/driver.out" || { cat "$ROOT/driver.out"; fail "the driver did not place its group"; }

netns_link 2 down || fail "ip link set down"
netns_exec 1 ss -K dst "$(netns_ip 2)" > /dev/null 2>&1 || fail "ss -K (closing the GCS's connections to host 2)"
touch "$ROOT/cut"
for _ in $(seq 1 300); do grep -q -E 'REMOVED|FAIL' "$ROOT/driver.out" && break; sleep 0.1; done
grep -q REMOVED "$ROOT/driver.out" || { cat "$ROOT/driver.out"; fail "the group was not removed"; }
GCS_LOG="$ROOT/n1/session_latest/logs/gcs.log"
failed=0
for _ in $(seq 1 100); do grep -q "returning its bundles on node .* failed" "$GCS_LOG" && { failed=1; break; }; sleep 0.1; done
[ $failed = 1 ] || fail "the GCS's cancel to the cut-off host did not fail (see $GCS_LOG)"
sleep 2
netns_link 2 up || fail "ip link set up"
touch "$ROOT/up"
wait "$DRIVER" 2>/dev/null
cat "$ROOT/driver.out"
grep -q "^PASS" "$ROOT/driver.out" || fail "the bundle's resource did not come back"
grep "returning its bundles" "$GCS_LOG" | head -3
echo "PASS pg_cancel_retry"
