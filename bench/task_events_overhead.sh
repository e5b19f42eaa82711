#!/usr/bin/env bash
# The cost of task events on `make bench`'s task rows (issue 15: under 5%). Starts one local head
# and runs bench_tasks' task metrics with the driver's RAYC_TASK_EVENTS=0 and =1 in turns (normal
# tasks' events are recorded by their owner, the driver), ROUNDS rounds of REPS repetitions each,
# and prints every repetition and the median per metric and setting. Not part of `make bench` or
# `make test`: run it by hand on an idle machine (`uptime` load under 3).
#
#   RAYC_BUILD=build/normal bench/task_events_overhead.sh [ROUNDS] [REPS]
set -u
B=$(cd "${RAYC_BUILD:-build/normal}" && pwd)
ROUNDS=${1:-3}
REPS=${2:-3}
TMP=$(mktemp -d /tmp/rayc-tev.XXXXXX)
trap '"$B/bin/rayc" stop --temp-dir "$TMP" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
"$B/bin/rayc" start --head --port 0 --num-cpus 2 --object-store-memory 536870912 --temp-dir "$TMP" \
  >"$TMP/start.out" 2>&1 || { cat "$TMP/start.out"; exit 1; }
export RAYC_ADDRESS=$(cat "$TMP/session_latest/address") RAYC_TOKEN_FILE="$TMP/cluster_token"
export RAYC_CODE_PATH="$B/lib/libbench_tasks.so"
METRICS="single_client_tasks_sync single_client_tasks_async single_client_tasks_and_get_batch multi_client_tasks_async"
for r in $(seq 1 "$ROUNDS"); do
  for m in $METRICS; do
    for ev in 0 1; do
      RAYC_TASK_EVENTS=$ev timeout 120 "$B/bench/bench_tasks" "$m" "$REPS" 2>/dev/null |
        awk -v ev="$ev" '$1 == "rep" { print "events=" ev, $2, $3 }' | tee -a "$TMP/reps"
    done
  done
done
echo "# median per metric (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for m in $METRICS; do
  for ev in 0 1; do
    grep "^events=$ev $m " "$TMP/reps" | awk '{print $3}' | sort -g |
      awk -v m="$m" -v ev="$ev" '{v[NR] = $1} END { if (NR) printf "%s events=%s median %.1f (n=%d)\n", m, ev, v[int((NR + 1) / 2)], NR }'
  done
done
