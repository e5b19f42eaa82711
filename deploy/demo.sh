#!/usr/bin/env bash
# The README's first command, what a Ray user does first: start a head node, submit a Python job
# (and a C one) with `rayc job submit`, see them succeed, see them in the dashboard's Jobs API, and
# stop the node (leaving no rayc process behind).
set -euo pipefail
B=${1:?usage: demo.sh BUILD_DIR}
SRC=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/rayc-demo.XXXXXX)
trap '"$B/bin/rayc" stop --temp-dir "$TMP" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
PORT=${RAYC_DEMO_DASHBOARD_PORT:-8265}
echo "== rayc start --head"
"$B/bin/rayc" start --head --port 0 --temp-dir "$TMP" --dashboard-port "$PORT"
ADDRESS=$(cat "$TMP/session_latest/address")
echo "== rayc status"
"$B/bin/rayc" status --address "$ADDRESS" --temp-dir "$TMP"

echo "== rayc job submit --working-dir examples/python -- python3 squares.py"
PYTHONPATH="$B/python" "$B/bin/rayc" job submit --address "$ADDRESS" --temp-dir "$TMP" \
  --submission-id demo-python --working-dir "$SRC/examples/python" \
  --env PYTHONPATH="$B/python" -- /usr/bin/python3 squares.py

echo "== rayc job submit: a C driver, its task library shipped in the job's working dir"
mkdir -p "$TMP/job" && cp "$B/lib/libexample_tasks.so" "$TMP/job/"
printf 'code_path: libexample_tasks.so\n' > "$TMP/runtime_env.yaml"
"$B/bin/rayc" job submit --address "$ADDRESS" --temp-dir "$TMP" --submission-id demo-c --working-dir "$TMP/job" \
  --runtime-env "$TMP/runtime_env.yaml" -- "$B/bin/example_driver"

echo "== rayc job list"
"$B/bin/rayc" job list --address "$ADDRESS" --temp-dir "$TMP"

echo "== the dashboard: http://127.0.0.1:$PORT/ (log in with \`rayc get-token\`); its Jobs API says:"
TOKEN=$("$B/bin/rayc" get-token --temp-dir "$TMP" 2>/dev/null)
if command -v curl >/dev/null; then
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/jobs/demo-python" |
    /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("  job", j["submission_id"], j["status"], "entrypoint:", j["entrypoint"])'
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/jobs/")
  echo "  without the token: HTTP $code (the cluster is locked by default)"
fi

echo "== rayc stop"
"$B/bin/rayc" stop --temp-dir "$TMP"
left=$(pgrep -f "$TMP" || true)
if [ -n "$left" ]; then echo "demo: processes left behind: $left"; exit 1; fi
echo "demo: done, no rayc process left"
