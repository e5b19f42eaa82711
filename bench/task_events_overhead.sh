#!/usr/bin/env bash
# The cost of task events on `make bench`'s task rows (issue 15: under 5%). Starts one local head
# and, with the driver's RAYC_TASK_EVENTS=0 and =1 in turns (a normal task's events are recorded
# by its owner, the driver), runs ROUNDS rounds of:
#   - bench_tasks' task rows (single_client_tasks_sync/_async/_and_get_batch,
#     multi_client_tasks_async), REPS repetitions each: rates, which a busy machine disturbs;
#   - task_events_cost 20000: the driver's, the GCS's and the whole cluster's CPU per task, which
#     it disturbs less. BENCH_ONLY="" (set, empty) runs only this.
# Prints every line and the medians per metric and setting, and the load average. Not part of
# `make bench` or `make test`: run it by hand, ideally on an idle machine.
#
#   RAYC_BUILD=build/normal bench/task_events_overhead.sh [ROUNDS] [REPS]
set -u
B=$(cd "${RAYC_BUILD:-build/normal}" && pwd)
ROUNDS=${1:-3}
REPS=${2:-3}
TMP=$(mktemp -d /tmp/rayc-tev.XXXXXX)
trap '"$B/bin/rayc" stop --temp-dir "$TMP" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
"$B/bin/rayc" start --head --port 0 --num-cpus 2 --object-store-memory 536870912 --dashboard-port -1 \
  --temp-dir "$TMP" >"$TMP/start.out" 2>&1 || { cat "$TMP/start.out"; exit 1; }
export RAYC_ADDRESS=$(cat "$TMP/session_latest/address") RAYC_TOKEN_FILE="$TMP/cluster_token"
export RAYC_CODE_PATH="$B/lib/libbench_tasks.so" RAYC_GCS_PID=$(cat "$TMP/session_latest/pids/gcs.pid")
export RAYC_SESSION_DIR=$(readlink -f "$TMP/session_latest")
METRICS="single_client_tasks_sync single_client_tasks_async single_client_tasks_and_get_batch multi_client_tasks_async"
echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  for ev in 0 1; do
    for m in ${BENCH_ONLY-$METRICS}; do
      RAYC_TASK_EVENTS=$ev timeout 120 "$B/bench/bench_tasks" "$m" "$REPS" 2>/dev/null |
        awk -v ev="$ev" '$1 == "rep" { print "events=" ev, $2, $3 }' | tee -a "$TMP/reps"
    done
    RAYC_TASK_EVENTS=$ev timeout 300 "$B/bench/task_events_cost" 20000 | tee -a "$TMP/cost"
  done
done
median() { sort -g | awk '{v[NR] = $1} END { if (NR) printf "%.2f (n=%d)", v[int((NR + 1) / 2)], NR }'; }
echo "# medians (load at end: $(cut -d' ' -f1-3 /proc/loadavg))"
for m in ${BENCH_ONLY-$METRICS}; do
  for ev in 0 1; do
    echo "$m events=$ev $(grep "^events=$ev $m " "$TMP/reps" | awk '{print $3}' | median)"
  done
done
for f in rate driver_cpu_us_per_task gcs_cpu_us_per_task cluster_cpu_us_per_task; do
  for ev in 0 1; do
    echo "task_events_cost $f events=$ev $(grep "^events=$ev " "$TMP/cost" | tr ' ' '\n' | sed -n "s/^$f=//p" | median)"
  done
done
