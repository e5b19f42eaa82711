#!/usr/bin/env bash
# Jobs on a 3-host cluster (issue 12): a head (GCS on Redis) and two nodes, each a network namespace
# host (tests/netns/netns.sh), started with the real `rayc start`. From host 2 (no rayc session of
# its own) the test submits, with `rayc job submit --working-dir`, a working dir holding a C task
# library and a driver: the job's tasks run on all 3 nodes (the library reaches them inside the
# package), its output is streamed and kept, it SUCCEEDS, and its governance record shows per-node
# CPU-seconds adding up to what the tasks burned (within 20%), tasks run and actors created per
# node adding up to what the driver ran, bytes moved between nodes equal to what the driver pulled,
# and an empty cleanup list. From host 3, `rayc logs` lists and fetches node 2's log files (by name
# and by worker id) through node 2's raylet, refusing names and links that reach outside. The job
# commands work against the head's HTTP endpoint too (`--address http://HEAD:8265`, the Jobs REST
# API: submit with a working dir, status, list, logs, stop, delete, exit codes). Then: a failing entrypoint is FAILED with its
# exit code; `rayc job stop` ends every process of the job's group and frees its CPUs (`rayc
# status`); a running job survives a GCS kill -9 and restart and ends SUCCEEDED with `rayc job list`
# right; working dirs with a link out, or too large, are refused with clear errors; and a record
# edited by hand in Redis makes `rayc job records --verify` name it.
#
#   jobs_multinode.sh BUILD_DIR     exit 0 pass, 1 fail, 77 skipped (no root / no netns)
set -u
B=${1:?usage: jobs_multinode.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/netns.sh"
netns_require || exit 77

netns_cluster_begin jobs 3 256m
py() { /usr/bin/python3 -c "$@"; }
export RAYC_HEALTH_CHECK_PERIOD_MS=200 RAYC_HEALTH_CHECK_TIMEOUT_MS=200 RAYC_HEALTH_CHECK_FAILURE_THRESHOLD=10
export RAYC_HEARTBEAT_MS=200
HEAD="$(netns_ip 1):6380"
start_node() {  # i [--head flags...]
  local i=$1; shift
  local join=(--address "$HEAD")
  [ "${1:-}" = "--head" ] && { shift; join=(--head --port 6380 "$@"); }
  netns_exec "$i" "$B/bin/rayc" start "${join[@]}" --node-ip-address "$(netns_ip "$i")" --num-cpus 2 \
    --object-store-memory 128M --temp-dir "$ROOT/n$i" > "$ROOT/start$i.out" 2>&1 ||
    { cat "$ROOT/start$i.out"; fail "node $i did not start"; }
}
netns_spawn 1 redis-server --port 0 --unixsocket "$ROOT/redis.sock" --dir "$ROOT" --save '' --appendonly no \
  > "$ROOT/redis.out" 2>&1
for _ in $(seq 1 100); do [ -S "$ROOT/redis.sock" ] && break; sleep 0.05; done
[ -S "$ROOT/redis.sock" ] || fail "redis-server did not start"
start_node 1 --head --redis-address "unix:$ROOT/redis.sock"
export RAYC_TOKEN_FILE="$ROOT/n1/cluster_token"  # the head's token: for the nodes and the job commands
start_node 2
start_node 3
# Job commands run in host 2 against the head's address, with nothing of a session there.
job() { local sub=$1; shift; netns_exec 2 "$B/bin/rayc" job "$sub" --address "$HEAD" --temp-dir "$ROOT/nosession" "$@"; }
status_of() { job status "$1" --format json | py 'import json,sys; print(json.load(sys.stdin)["status"])'; }
wait_status() {  # ID STATUS SECONDS
  for _ in $(seq 1 $(($3 * 5))); do [ "$(status_of "$1")" = "$2" ] && return 0; sleep 0.2; done
  return 1
}

# The working dir: the driver, its task library, a .git and an ignored file that must stay home.
W="$ROOT/wd"
mkdir -p "$W/.git" "$W/lib"
cp "$B/tests/drivers/job_driver" "$W/"
cp "$B/lib/libjob_tasks.so" "$W/lib/"
echo secret > "$W/.git/config"
echo "*.bak" > "$W/.raycignore"
head -c 100000 /dev/urandom > "$W/big.bak"
printf 'code_path: lib/libjob_tasks.so\nenv_vars:\n  LD_LIBRARY_PATH: %s/lib\n  API_TOKEN: hunter2\n' "$B" > "$ROOT/env.yaml"
submit() { job submit --working-dir "$W" --runtime-env "$ROOT/env.yaml" "$@"; }

# 1. Tasks on 3 nodes: 12 x 1 s of CPU, SPREAD; output streamed; SUCCEEDED. (Enough CPU that the
#    workers' own start-up, heavier under the sanitizers, stays well inside the 20% the record may differ.)
submit --submission-id spread1 --metadata owner=test -- ./job_driver spread 12 1000 3 0 > "$ROOT/spread.out" 2>&1 ||
  { cat "$ROOT/spread.out"; fail "the spread job did not succeed"; }
cat "$ROOT/spread.out"
grep -q "^nodes 3$" "$ROOT/spread.out" || fail "the job's output was not streamed back"
grep -q "uploaded)" "$ROOT/spread.out" || fail "the working dir was not uploaded"
[ "$(status_of spread1)" = SUCCEEDED ] || fail "spread1 is not SUCCEEDED"
netns_exec 3 "$B/bin/rayc" job logs --address "$HEAD" --temp-dir "$ROOT/nosession" spread1 | grep -q "^burned_ms 12000$" ||
  fail "the job's log is not kept"
for i in 2 3; do
  ls "$ROOT/n$i"/session_latest/runtime_env/pkg_*/lib/libjob_tasks.so >/dev/null 2>&1 ||
    fail "node $i has no copy of the working dir"
  ! ls "$ROOT/n$i"/session_latest/runtime_env/pkg_*/big.bak >/dev/null 2>&1 || fail "an ignored file was shipped"
  ! ls -d "$ROOT/n$i"/session_latest/runtime_env/pkg_*/.git >/dev/null 2>&1 || fail ".git was shipped"
done
# 1b. `rayc logs` from host 3 (nothing of a session there): node 2's raylet serves its log files,
#     by name and by worker id, with the token; names that reach outside are refused.
logs() { netns_exec 3 "$B/bin/rayc" logs --address "$HEAD" --temp-dir "$ROOT/nosession" "$@"; }
N2=$(netns_ip 2)
N2LOGS="$ROOT/n2/session_latest/logs"
logs --node-ip "$N2" > "$ROOT/logs-list.out" || { cat "$ROOT/logs-list.out"; fail "rayc logs --node-ip $N2"; }
grep -q "^node .*($N2)" "$ROOT/logs-list.out" && grep -q " raylet.log " "$ROOT/logs-list.out" &&
  grep -q " worker-.*\.out " "$ROOT/logs-list.out" || { cat "$ROOT/logs-list.out"; fail "node 2's log files are not listed"; }
is_prefix() { # FETCHED FILE: the log (append-only) starts with what was fetched, and that is not empty
  [ -s "$1" ] && head -c "$(stat -c %s "$1")" "$2" | cmp -s - "$1"
}
logs raylet.log --node-ip "$N2" > "$ROOT/raylet2.log" || fail "rayc logs raylet.log --node-ip $N2"
is_prefix "$ROOT/raylet2.log" "$N2LOGS/raylet.log" || fail "node 2's raylet.log fetched over the network differs"
logs raylet.log --node-ip "$N2" --tail 2 > "$ROOT/tail2.out" && [ "$(wc -l < "$ROOT/tail2.out")" = 2 ] ||
  fail "rayc logs --tail 2"
WID=$(netns_exec 3 "$B/bin/rayc" list tasks --address "$HEAD" --temp-dir "$ROOT/nosession" --format json --limit 0 |
  py 'import json,os,sys; print([t["worker_id"] for t in json.load(sys.stdin)
       if t.get("worker_id") and os.path.exists("%s/worker-%s.log" % (sys.argv[1], t["worker_id"][:16]))][0])' "$N2LOGS") ||
  fail "no task of spread1 ran in a worker of node 2"
logs --worker-id "$WID" --suffix .log > "$ROOT/wlog.out" || fail "rayc logs --worker-id $WID (searched on every node)"
is_prefix "$ROOT/wlog.out" "$N2LOGS/worker-${WID:0:16}.log" || fail "the worker's log fetched by id differs from node 2's file"
logs ../cluster_token --node-ip "$N2" > "$ROOT/trav.out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "not a log file name" "$ROOT/trav.out" || { cat "$ROOT/trav.out"; fail "a path out of the logs was not refused"; }
ln -s /etc/passwd "$N2LOGS/evil.log"
logs evil.log --node-ip "$N2" > "$ROOT/evil.out" 2>&1 && fail "a link in the logs directory was followed"
! grep -q "root:" "$ROOT/evil.out" || fail "a link in the logs directory leaked its target"
rm -f "$N2LOGS/evil.log"
echo wrong > "$ROOT/bad_token_logs"
netns_exec 3 env RAYC_TOKEN_FILE="$ROOT/bad_token_logs" "$B/bin/rayc" logs --address "$HEAD" \
  --temp-dir "$ROOT/nosession" raylet.log --node-ip "$N2" > "$ROOT/badtok.out" 2>&1 && fail "rayc logs with a wrong token worked"
echo "logs: node 2's files listed and fetched from host 3 (by name, by worker id); traversal and links refused"

# A second submit of the same tree uploads nothing. (Its 2 actors, each called once, show in the
# record's per-node counts.)
submit --submission-id spread2 -- ./job_driver spread 2 10 0 2 > "$ROOT/spread2.out" 2>&1 || fail "spread2"
grep -q "already uploaded" "$ROOT/spread2.out" || fail "the same working dir was uploaded twice"

# 2. Data moved between nodes: blobs made on other nodes, read by the driver on the head.
submit --submission-id pull1 -- ./job_driver pull 6 2000000 > "$ROOT/pull.out" 2>&1 ||
  { cat "$ROOT/pull.out"; fail "the pull job did not succeed"; }
PULLED=$(awk '/^pulled_bytes/ {print $2}' "$ROOT/pull.out")
echo "the driver read $PULLED bytes made on other nodes"

# 3. The records: per-node CPU adds up to the 12 s burned; bytes pulled match; nothing left.
record() {  # ID: waits for the final record, prints it as JSON
  for _ in $(seq 1 100); do
    job records | grep -q " $1 " && { job record "$1" --format json; return 0; }
    sleep 0.2
  done
  return 1
}
record spread1 > "$ROOT/spread1.json" || fail "no record for spread1"
TASKS=$(awk '/^tasks_run/ {print $2}' "$ROOT/spread.out")
py '
import json, sys
r = json.load(open(sys.argv[1])); tasks = int(sys.argv[2])
nodes = r["resources"]["per_node"]
cpu = sum(n["cpu_seconds"] for n in nodes)
busy = [n["ip"] for n in nodes if n["cpu_seconds"] > 0.5]
print("record spread1: CPU-seconds per node", [(n["ip"], n["cpu_seconds"]) for n in nodes], "total", cpu)
assert len(nodes) == 3 and len(busy) == 3, "CPU on 3 nodes expected, got %s" % busy
assert abs(cpu - 12.0) <= 2.4, "per-node CPU-seconds add up to %.2f, not 12.0 +- 20%%" % cpu
c = r["cleanup"]
assert c["processes"] == [] and c["objects_left"] == 0 and c["spill_copies_left"] == 0, c
assert c["driver_jobs_still_running"] == [], c
assert r["runtime_env"]["env_vars"]["API_TOKEN"] == "<redacted>", r["runtime_env"]["env_vars"]
assert any(f["path"] == "lib/libjob_tasks.so" and len(f["sha256"]) == 64 for f in r["runtime_env"]["files"])
assert not any(f["path"].startswith(".git") or f["path"].endswith(".bak") for f in r["runtime_env"]["files"])
assert r["submitter"]["host"] and r["submitter"]["credential"].endswith("cluster_token"), r["submitter"]
assert r["submitter"]["peer"].startswith("ipv4:10.77.0.2:"), r["submitter"]
assert len(r["cluster_at_submission"]) == 3 and r["rayc"]["revision"], r["rayc"]
assert r["metadata"] == {"owner": "test"} and r["status"] == "SUCCEEDED"
assert len(r["endpoints"]) >= 3
runs = [(n["ip"], n["tasks_run"], n["actors_created"]) for n in nodes]
print("record spread1: (node, tasks run, actors created)", runs, "; the driver ran", tasks)
assert all(t >= 1 for _, t, _ in runs), "SPREAD tasks on every node expected: %s" % runs
assert sum(t for _, t, _ in runs) == tasks == r["resources"]["tasks_run"], "tasks run per node do not add up"
assert sum(a for _, _, a in runs) == r["actors_created"] == 0, "actors created per node: %s" % runs
' "$ROOT/spread1.json" "$TASKS" || fail "the record of spread1 is wrong"
record spread2 > "$ROOT/spread2.json" || fail "no record for spread2"
py '
import json, sys
r = json.load(open(sys.argv[1])); tasks = int(sys.argv[2])
runs = [(n.get("ip"), n["tasks_run"], n["actors_created"]) for n in r["resources"]["per_node"]]
print("record spread2: (node, tasks run, actors created)", runs, "; the driver ran", tasks, "and 2 actors")
assert sum(t for _, t, _ in runs) == tasks == 6, "tasks run per node do not add up to %d" % tasks
assert sum(a for _, _, a in runs) == r["actors_created"] == 2, "actors created per node: %s" % runs
' "$ROOT/spread2.json" "$(awk '/^tasks_run/ {print $2}' "$ROOT/spread2.out")" || fail "the record of spread2 is wrong"
record pull1 > "$ROOT/pull1.json" || fail "no record for pull1"
py '
import json, sys
r = json.load(open(sys.argv[1])); want = int(sys.argv[2])
got = r["objects"]["bytes_pulled_between_nodes"]
print("record pull1: bytes pulled between nodes", got, "driver read", want, "objects", r["objects"])
assert got == want, "bytes moved %d != %d the driver pulled" % (got, want)
assert r["objects"]["objects_created"] >= 6 and r["cleanup"]["objects_left"] == 0, r["cleanup"]
' "$ROOT/pull1.json" "$PULLED" || fail "the record of pull1 is wrong"

# 4. A failing entrypoint: FAILED with its exit code; the CLI exits 1.
job submit --submission-id fail1 -- 'echo failing; exit 7' > "$ROOT/fail.out" 2>&1
rc=$?
[ $rc = 1 ] || fail "rayc job submit of a failing job exited $rc, not 1"
job status fail1 --format json > "$ROOT/fail1.json"
py 'import json,sys; j=json.load(open(sys.argv[1])); assert j["status"]=="FAILED" and j["driver_exit_code"]==7, j' \
  "$ROOT/fail1.json" || fail "fail1 is not FAILED with exit code 7"
job status nosuchjob >/dev/null 2>&1; [ $? = 3 ] || fail "an unknown job id does not exit 3"
netns_exec 2 "$B/bin/rayc" job list --address "$(netns_ip 1):1" --temp-dir "$ROOT/nosession" --timeout-ms 3000 >/dev/null 2>&1
[ $? = 4 ] || fail "no cluster at the address does not exit 4"
echo "bad-token" > "$ROOT/bad_token"
netns_exec 2 env RAYC_TOKEN_FILE="$ROOT/bad_token" "$B/bin/rayc" job list --address "$HEAD" \
  --temp-dir "$ROOT/nosession" > /dev/null 2>&1
[ $? = 5 ] || fail "a wrong token does not exit 5"

# 5. Stop: 4 one-CPU tasks hold CPUs; stop ends the group's processes and frees the CPUs.
submit --submission-id hold1 --no-wait -- ./job_driver hold 4 600000 > /dev/null 2>&1 || fail "submit hold1"
for _ in $(seq 1 150); do job logs hold1 | grep -q READY && break; sleep 0.2; done
job logs hold1 | grep -q READY || fail "hold1 did not start"
for _ in $(seq 1 100); do netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q " 4.0/6.0 CPU" && break; sleep 0.2; done
netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q " 4.0/6.0 CPU" || fail "hold1's tasks do not hold 4 CPUs"
pgrep -f "job_driver hold 4 600000" > /dev/null || fail "hold1's driver is not running"
job stop hold1 | grep -q "being stopped" || fail "rayc job stop hold1"
wait_status hold1 STOPPED 20 || fail "hold1 is not STOPPED"
for _ in $(seq 1 50); do pgrep -f "job_driver hold 4 600000" > /dev/null || break; sleep 0.2; done
! pgrep -f "job_driver hold 4 600000" > /dev/null || fail "a process of hold1's group survived the stop"
for _ in $(seq 1 100); do netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q " 0.0/6.0 CPU" && break; sleep 0.2; done
netns_exec 1 "$B/bin/rayc" status --address "$HEAD" | grep -q " 0.0/6.0 CPU" || fail "hold1's CPUs were not freed"
echo "stop: the group ended and its 4 CPUs are free again"

# 5b. The same commands over the head's HTTP endpoint (the Jobs REST API, as Ray's `ray job` uses
#     it) from host 2: the working dir goes up with PUT /api/packages/..., the output streams back.
DASH="http://$(cat "$ROOT/n1/session_latest/dashboard_address" 2>/dev/null)"
[ "$DASH" != "http://" ] || fail "the head has no HTTP endpoint"
hjob() { local sub=$1; shift; netns_exec 2 "$B/bin/rayc" job "$sub" --address "$DASH" --temp-dir "$ROOT/nosession" "$@"; }
hjob submit --submission-id http1 --working-dir "$W" --runtime-env "$ROOT/env.yaml" -- ./job_driver spread 3 100 0 \
  > "$ROOT/http1.out" 2>&1 || { cat "$ROOT/http1.out"; fail "rayc job submit --address $DASH"; }
grep -q "^burned_ms 300$" "$ROOT/http1.out" || { cat "$ROOT/http1.out"; fail "the output did not stream over HTTP"; }
grep -q "succeeded" "$ROOT/http1.out" || fail "no end line over HTTP"
hjob status http1 --format json | py 'import json,sys; j=json.load(sys.stdin); assert j["status"]=="SUCCEEDED", j' ||
  fail "rayc job status over HTTP"
hjob list | grep -E -q "^http1 +SUCCEEDED " || fail "rayc job list over HTTP"
hjob logs http1 | grep -q "^burned_ms 300$" || fail "rayc job logs over HTTP"
hjob submit --submission-id http2 --no-wait --working-dir "$W" --runtime-env "$ROOT/env.yaml" -- ./job_driver hold 1 600000 \
  > "$ROOT/http2.out" 2>&1 || { cat "$ROOT/http2.out"; fail "submit http2"; }
grep -q "already uploaded" "$ROOT/http2.out" || { cat "$ROOT/http2.out"; fail "the same working dir went up twice over HTTP"; }
for _ in $(seq 1 150); do hjob logs http2 | grep -q READY && break; sleep 0.2; done
hjob stop http2 | grep -q "being stopped" || fail "rayc job stop over HTTP"
wait_status http2 STOPPED 20 || fail "http2 is not STOPPED"
hjob logs http2 --follow > /dev/null || fail "rayc job logs --follow over HTTP did not end with the job"
hjob delete http2 | grep -q "deleted" || fail "rayc job delete over HTTP"
hjob status http2 > /dev/null 2>&1; [ $? = 3 ] || fail "an unknown id over HTTP does not exit 3"
netns_exec 2 env RAYC_TOKEN_FILE="$ROOT/bad_token" "$B/bin/rayc" job list --address "$DASH" \
  --temp-dir "$ROOT/nosession" > /dev/null 2>&1
[ $? = 5 ] || fail "a wrong token over HTTP does not exit 5"
netns_exec 2 "$B/bin/rayc" job list --address "http://$(netns_ip 1):1" --temp-dir "$ROOT/nosession" > /dev/null 2>&1
[ $? = 4 ] || fail "no HTTP endpoint at the address does not exit 4"
record http1 > "$ROOT/http1.json" || fail "no record for http1"
py '
import json, sys
r = json.load(open(sys.argv[1])); s = r["submitter"]
print("record http1: submitter", s)
assert s["host"].endswith("(10.77.0.2)") and s["user"] and "HTTP" in s["credential"], s
assert any(f["path"] == "lib/libjob_tasks.so" for f in r["runtime_env"]["files"]), r["runtime_env"]
' "$ROOT/http1.json" || fail "the record of http1 is wrong"
echo "HTTP: submit, status, list, logs, stop, delete and the exit codes work against $DASH"

# 6. A job survives a GCS kill -9 and restart (Redis): it keeps running and ends SUCCEEDED.
submit --submission-id survive1 --no-wait -- 'sleep 4; ./job_driver spread 6 100 3' > /dev/null 2>&1 ||
  fail "submit survive1"
wait_status survive1 RUNNING 20 || fail "survive1 is not RUNNING"
GCS_PID=$(cat "$ROOT"/n1/session_latest/pids/gcs.pid)
mapfile -d '' GCS_ARGV < "/proc/$GCS_PID/cmdline"
restart_gcs() {
  GCS_PID=$(cat "$ROOT"/n1/session_latest/pids/gcs.pid)
  kill -9 "$GCS_PID"
  echo "GCS (pid $GCS_PID) killed with SIGKILL"
  sleep 1
  netns_spawn 1 setsid "${GCS_ARGV[@]}" > "$ROOT/gcs-restarted.out" 2>&1
  echo "$NETNS_PID" > "$ROOT"/n1/session_latest/pids/gcs.pid
}
job logs survive1 --follow > "$ROOT/follow.out" 2>&1 &  # a follower that rides out the restart
FOLLOW=$!
restart_gcs
wait_status survive1 SUCCEEDED 90 || { job logs survive1; fail "survive1 did not succeed across the GCS restart"; }
job logs survive1 | grep -q "^nodes 3$" || fail "survive1's output"
wait "$FOLLOW" || { cat "$ROOT/follow.out"; fail "rayc job logs --follow did not ride out the GCS restart"; }
grep -q "^nodes 3$" "$ROOT/follow.out" || { cat "$ROOT/follow.out"; fail "the follower missed the output"; }
job list > "$ROOT/list.out"
cat "$ROOT/list.out"
for j in spread1:SUCCEEDED pull1:SUCCEEDED fail1:FAILED hold1:STOPPED survive1:SUCCEEDED; do
  grep -E -q "^${j%%:*} +${j##*:} " "$ROOT/list.out" || fail "rayc job list after the restart: ${j%%:*} is not ${j##*:}"
done

# 7. Refusals: a link out of the working dir, a working dir over the size limit.
mkdir -p "$ROOT/bad1" && ln -s /etc/passwd "$ROOT/bad1/pw"
job submit --working-dir "$ROOT/bad1" -- true > "$ROOT/bad1.out" 2>&1 && fail "a link out was accepted"
grep -q "links must stay inside" "$ROOT/bad1.out" || { cat "$ROOT/bad1.out"; fail "no clear error for a link out"; }
mkdir -p "$ROOT/bad2" && head -c 5000 /dev/zero > "$ROOT/bad2/f"
job submit --working-dir "$ROOT/bad2" --max-package-bytes 1000 -- true > "$ROOT/bad2.out" 2>&1 &&
  fail "an oversized working dir was accepted"
grep -q "limit of 1000 bytes" "$ROOT/bad2.out" || { cat "$ROOT/bad2.out"; fail "no clear error naming the limit"; }
echo "refusals: $(cat "$ROOT/bad1.out") / $(cat "$ROOT/bad2.out")"

# 8. The chain: intact, then one record edited by hand in Redis is named by --verify.
job records --verify || fail "the record chain does not verify"
netns_exec 1 redis-cli -s "$ROOT/redis.sock" EVAL "
  local k = string.char(0,0,0,0,0,0,0,2)
  local v = redis.call('HGET', KEYS[1], k)
  v = string.gsub(v, '\"status\": \"SUCCEEDED\"', '\"status\": \"FAILED\"')
  redis.call('HSET', KEYS[1], k, v)
  return 1" 1 "rayc:6380:JOBREC" > /dev/null || fail "could not edit record 2 in Redis"
restart_gcs
for _ in $(seq 1 100); do job records > /dev/null 2>&1 && break; sleep 0.2; done
job records --verify > "$ROOT/verify.out" 2>&1 && fail "--verify missed the edited record"
cat "$ROOT/verify.out"
grep -q "record 2 (job " "$ROOT/verify.out" || fail "--verify does not name record 2"
echo "PASS jobs_multinode"
