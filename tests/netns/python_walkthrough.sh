#!/usr/bin/env bash
# The Python walkthrough on three namespace hosts (tests/netns/netns.sh): a head and two nodes
# started with the real `rayc start`, and python_walkthrough.py (Ray's walkthrough and key
# concepts examples with `import rayc as ray`) as a driver in host 1.
#
#   python_walkthrough.sh BUILD_DIR     exit 0 pass, 1 fail, 77 skipped (no root / no netns)
set -u
B=${1:?usage: python_walkthrough.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77
unset RAYC_ADDRESS RAYC_TOKEN_FILE RAYC_TOKEN RAYC_CODE_PATH

NETNS_NO_SANITIZER_CHECK=1 # Python workers are not built with the sanitizers
netns_cluster_begin pywt 3 512m
HEAD="$(netns_ip 1):6380"
start_node() {  # i [--head]
  local i=$1; shift
  local join=(--address "$HEAD")
  [ "${1:-}" = "--head" ] && join=(--head --port 6380)
  netns_exec "$i" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 2 \
    --object-store-memory 256M --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
start_node 1 --head
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"
start_node 2
start_node 3
netns_exec 1 env RAYC_ADDRESS="$HEAD" PYTHONPATH="$B/python" /usr/bin/python3 "$HERE/python_walkthrough.py" \
  > "$ROOT/driver.out" 2>&1
rc=$?
cat "$ROOT/driver.out"
[ $rc = 0 ] && grep -q "ALL OK" "$ROOT/driver.out" || fail "the walkthrough driver failed (exit $rc)"
echo "PASS"
