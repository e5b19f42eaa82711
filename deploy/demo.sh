#!/usr/bin/env bash
# The README's first command: start a local head node, run the example job against it, show its
# output and the cluster's status, and stop the node (leaving no rayc process behind).
set -euo pipefail
B=${1:?usage: demo.sh BUILD_DIR}
TMP=$(mktemp -d /tmp/rayc-demo.XXXXXX)
trap '"$B/bin/rayc" stop --temp-dir "$TMP" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
echo "== rayc start --head"
"$B/bin/rayc" start --head --port 0 --temp-dir "$TMP"
ADDRESS=$(cat "$TMP/session_latest/address")
echo "== rayc status"
"$B/bin/rayc" status --address "$ADDRESS" --temp-dir "$TMP"
echo "== example job (examples/example_driver.c, tasks from examples/example_tasks.c)"
RAYC_ADDRESS=$ADDRESS RAYC_TEMP_DIR=$TMP RAYC_CODE_PATH="$B/lib/libexample_tasks.so" "$B/bin/example_driver"
echo "== rayc stop"
"$B/bin/rayc" stop --temp-dir "$TMP"
left=$(pgrep -f "$TMP" || true)
if [ -n "$left" ]; then echo "demo: processes left behind: $left"; exit 1; fi
echo "demo: done, no rayc process left"
