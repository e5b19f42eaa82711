#!/usr/bin/env bash
#
# Node-to-node transfer between two hosts, each a network namespace with its own /dev/shm
# (tests/netns/netns.sh): a rayc-store on each, an object of SIZE bytes put on host 1, pulled by
# host 2's store from host 1's object manager, and its checksum compared on both sides.
#
#   store_transfer.sh BUILD TOOL [SIZE] [REPS]
#
# BUILD is a build directory (with bin/rayc-store); TOOL a program with the subcommands
# `TOOL tool wait|put|pull|delete ...` (tests/integration/test_store_transfer.c, bench/store_bench.c).
# Prints one line `transfer <bytes> <seconds>` per repetition and `checksum ok` at the end.
# Exit status: 0 passed, 1 failed, 77 skipped (not root, or no network namespaces; reason on stderr).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/netns.sh"

BUILD=$1
TOOL=$2
SIZE=${3:-1073741824}
REPS=${4:-1}

netns_require || exit 77
d1=$(mktemp -d /tmp/rayc-xfer1-XXXXXX)
d2=$(mktemp -d /tmp/rayc-xfer2-XXXXXX)
cleanup() {
  netns_teardown
  rm -rf "$d1" "$d2"
}
fail() {
  echo "store_transfer: $*" >&2
  for d in "$d1" "$d2"; do
    [ -f "$d/logs/store.log" ] && tail -n 20 "$d/logs/store.log" >&2
  done
  exit 1
}
netns_setup 2 64m || fail "cannot create the hosts"
trap cleanup EXIT

# Room for the object, kept under the 80% spill threshold (spilling it would only compete with the
# transfer), plus slack; never below the store's 75 MiB minimum.
mem=$((SIZE + SIZE / 2 + (80 << 20)))
store() { # host dir
  netns_spawn "$1" "$BUILD/bin/rayc-store" --session-dir "$2" --object-store-memory "$mem" \
    --node-ip-address "$(netns_ip "$1")" --object-manager-port 0
}
store 1 "$d1"
pid1=$NETNS_PID
store 2 "$d2"
pid2=$NETNS_PID
port1=$(netns_exec 1 "$TOOL" tool wait "$d1/sockets/store") || fail "store 1 did not start"
netns_exec 2 "$TOOL" tool wait "$d2/sockets/store" >/dev/null || fail "store 2 did not start"

for rep in $(seq 1 "$REPS"); do
  sum1=$(netns_exec 1 "$TOOL" tool put "$d1/sockets/store" "$SIZE" "$rep") || fail "put failed"
  out=$(netns_exec 2 "$TOOL" tool pull "$d2/sockets/store" "$rep" "$(netns_ip 1):$port1") || fail "pull failed"
  read -r sum2 secs <<<"$out"
  [ "$sum1" = "$sum2" ] || fail "checksums differ: put $sum1, pulled $sum2"
  echo "transfer $SIZE $secs"
  netns_exec 2 "$TOOL" tool delete "$d2/sockets/store" "$rep" || fail "delete on host 2 failed"
  netns_exec 1 "$TOOL" tool delete "$d1/sockets/store" "$rep" || fail "delete on host 1 failed"
done

netns_kill "$pid2" || fail "store 2 did not exit 0 on SIGTERM"
netns_kill "$pid1" || fail "store 1 did not exit 0 on SIGTERM"
if grep -h " E rayc-store\[" "$d1/logs/store.log" "$d2/logs/store.log" >&2; then
  fail "a store logged errors"
fi
echo "checksum ok"
