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
echo "== rayc job submit: examples/example_driver.c, its task library shipped in the job's working dir"
mkdir -p "$TMP/job" && cp "$B/lib/libexample_tasks.so" "$TMP/job/"
printf 'code_path: libexample_tasks.so\n' > "$TMP/runtime_env.yaml"
"$B/bin/rayc" job submit --address "$ADDRESS" --temp-dir "$TMP" --submission-id demo --working-dir "$TMP/job" \
  --runtime-env "$TMP/runtime_env.yaml" -- "$B/bin/example_driver"
echo "== rayc job list"
"$B/bin/rayc" job list --address "$ADDRESS" --temp-dir "$TMP"
echo "== rayc stop"
"$B/bin/rayc" stop --temp-dir "$TMP"
left=$(pgrep -f "$TMP" || true)
if [ -n "$left" ]; then echo "demo: processes left behind: $left"; exit 1; fi
echo "demo: done, no rayc process left"
