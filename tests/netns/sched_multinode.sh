#!/usr/bin/env bash
# Scheduling across three namespace hosts (issue 16): a head and one node start; a third node
# joins and a driver in host 2 at once runs hard NODE_AFFINITY tasks aimed at it (they must wait
# for the node to show in host 2's raylet's view, which heartbeats only every 5 s, not fail
# INFEASIBLE); then 80 DEFAULT tasks
# submitted in host 1 must run on every host (queued lease requests are spilled to idle nodes
# later), and 30 SPREAD tasks must split evenly (10 each, give or take 3).
#
#   sched_multinode.sh BUILD_DIR     exit 0 pass, 1 fail, 77 skipped (no root / no netns)
set -u
B=${1:?usage: sched_multinode.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77

netns_cluster_begin sched 3 256m
HEAD="$(netns_ip 1):6380"
start_node() {  # i resources-json [--head]; env HB: the raylet's heartbeat period (ms)
  local i=$1 res=$2; shift 2
  local join=(--address "$HEAD")
  [ "${1:-}" = "--head" ] && join=(--head --port 6380)
  netns_exec "$i" env RAYC_HEARTBEAT_MS="${HB:-1000}" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 2 \
    --object-store-memory 96M --resources "$res" --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
drive() {  # args: runs the driver in host ${HOST:-1}
  netns_exec "${HOST:-1}" env RAYC_ADDRESS="$HEAD" RAYC_CODE_PATH="$B/lib/libtest_tasks.so" "$B/tests/drivers/sched" "$@"
}
start_node 1 '{"host1": 100}' --head
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"
# Host 2's raylet learns of new nodes only every 5 s (its heartbeat replies carry the view): a
# node that just joined is missing from its view for up to that long.
HB=5000 start_node 2 '{"host2": 100}'

start_node 3 '{"host3": 100}'
NODE3=$(netns_exec 1 "$B/bin/rayc" list nodes --format json --address "$HEAD" |
  python3 -c 'import json,sys; print([n["node_id"] for n in json.load(sys.stdin) if n["ip"] == sys.argv[1] and n["state"].startswith("ALIVE")][0])' "$(netns_ip 3)") ||
  fail "node 3 is not ALIVE in rayc list nodes"
echo "node 3 joined as ${NODE3:0:8}"
HOST=2 drive affinity "$NODE3" || fail "hard NODE_AFFINITY to a node that had just joined"

sleep 5.5 # every view shows all three nodes with their CPUs free
drive default 80 300 || fail "80 DEFAULT tasks did not spread over the three hosts"
sleep 0.5
drive spread 30 || fail "30 SPREAD tasks did not split evenly"
echo "PASS sched_multinode"
