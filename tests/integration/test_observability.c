/*
 * Watching the cluster (issue 15), end to end on a real head node: every daemon's /metrics is
 * scraped while tasks run and put objects in the store, the task and object-store series move,
 * and the text passes `promtool check metrics`; `rayc metrics targets` lists all three daemons;
 * `rayc list tasks` shows a 1,000-task job with its states; `rayc timeline` of a small job is a
 * valid Chrome trace with one event per task; `rayc list objects` and `rayc summary objects` show
 * the objects a driver holds in the store, with size, node, owner and reference type, and they go
 * when it lets them go; and `rayc list cluster-events` shows a node that was killed (kill -9 of a
 * second node's raylet).
 */
#include "itest.h"
#include "itest_sh.h"

#include <jansson.h>
#include <signal.h>
#include <time.h>

/* Runs a rayc command whose stdout is JSON; returns it parsed (new). */
static json_t *rayc_json(const char *args)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/bin/rayc %s --temp-dir %s 2>/dev/null", it_build, args, it_temp);
  ck_assert_msg(rc == 0, "rayc %s (%d):\n%s", args, rc, out);
  json_error_t err;
  json_t *v = json_loads(out, 0, &err);
  ck_assert_msg(v, "rayc %s printed no JSON (%s):\n%s", args, err.text, out);
  free(out);
  return v;
}

/* The /metrics address of a daemon ("gcs", "raylet", "store") from `rayc metrics targets`. */
static void target_of(const char *daemon, char *out, size_t len)
{
  json_t *groups = rayc_json("metrics targets"), *g;
  size_t i;
  out[0] = '\0';
  json_array_foreach(groups, i, g)
  {
    const char *d = json_string_value(json_object_get(json_object_get(g, "labels"), "daemon"));
    if (d && strcmp(d, daemon) == 0)
      snprintf(out, len, "%s", json_string_value(json_array_get(json_object_get(g, "targets"), 0)));
  }
  json_decref(groups);
  ck_assert_msg(out[0], "rayc metrics targets lists no %s", daemon);
}

/* Scrapes http://target/metrics (new text). */
static char *scrape(const char *target)
{
  char *out = NULL;
  int rc = it_sh(&out, "curl -sSf --max-time 10 http://%s/metrics", target);
  ck_assert_msg(rc == 0, "scraping %s (%d): %s", target, rc, out);
  return out;
}

/* The value of the sample `series` (name{labels} exactly as exposed) in text; -1 when absent. */
static double sample(const char *text, const char *series)
{
  size_t n = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  return -1;
}

/* Waits until the series scraped from target reaches at least want; returns the last value. */
static double wait_sample(const char *target, const char *series, double want)
{
  double v = -1, deadline = it_now_s() + 30;
  while (it_now_s() < deadline) {
    char *text = scrape(target);
    v = sample(text, series);
    free(text);
    if (v >= want)
      break;
    it_sleep_ms(200);
  }
  return v;
}

static void promtool_ok(const char *target)
{
  char *out = NULL;
  int rc = it_sh(&out, "curl -sSf --max-time 10 http://%s/metrics | promtool check metrics", target);
  ck_assert_msg(rc == 0, "promtool check metrics on %s (%d):\n%s", target, rc, out);
  free(out);
}

static rayc_ref submit(const char *fn, const char *name, int64_t a, int64_t b)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.name = name;
  rayc_arg args[2] = {RAYC_ARG_VAL(&a, sizeof(a)), RAYC_ARG_VAL(&b, sizeof(b))};
  rayc_ref r;
  ck_assert_int_eq(rayc_remote(fn, args, 2, &o, &r), 0);
  return r;
}

START_TEST(metrics_move_during_a_workload)
{
  char gcs[128], raylet[128], store[128];
  target_of("gcs", gcs, sizeof(gcs));
  target_of("raylet", raylet, sizeof(raylet));
  target_of("store", store, sizeof(store));
  char *before = scrape(store);
  double objects0 = sample(before, "rayc_object_store_num_local_objects");
  free(before);
  ck_assert_msg(objects0 >= 0, "the store exposes no rayc_object_store_num_local_objects");

  it_connect();
  enum { N = 20 };
  rayc_ref big[N];
  for (int i = 0; i < N; i++) /* 256 KiB results live in the store, and stay while we hold them */
    big[i] = submit("bytes", "obs_bytes", 256 << 10, i);
  rayc_buf b;
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(rayc_get(&big[i], 1, 60000, &b), 0);
    rayc_buf_release(&b, 1);
  }
  double objects = wait_sample(store, "rayc_object_store_num_local_objects", objects0 + N);
  ck_assert_msg(objects >= objects0 + N, "store objects %g -> %g, want +%d", objects0, objects, N);
  double mem = wait_sample(store, "rayc_object_store_memory{Location=\"MMAP_SHM\"}", N * (256 << 10));
  ck_assert_msg(mem >= N * (256 << 10), "primary bytes in the store: %g", mem);
  double done = wait_sample(gcs, "rayc_tasks{State=\"FINISHED\",Name=\"obs_bytes\"}", N);
  ck_assert_msg(done >= N, "rayc_tasks FINISHED obs_bytes: %g", done);
  double leases = wait_sample(
      raylet, "rayc_grpc_server_req_handling_seconds_count{Method=\"rayc.NodeManagerService/RequestWorkerLease\"}", 1);
  ck_assert_msg(leases >= 1, "the raylet counted no RequestWorkerLease calls: %g", leases);
  double cpu = wait_sample(raylet, "rayc_node_cpu_utilization", 0);
  ck_assert_msg(cpu >= 0 && cpu <= 100, "rayc_node_cpu_utilization %g", cpu);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&big[i]);
  rayc_shutdown();
  promtool_ok(gcs);
  promtool_ok(raylet);
  promtool_ok(store);
}
END_TEST

START_TEST(rejected_tokens_are_counted)
{
  char gcs[128], *out = NULL;
  target_of("gcs", gcs, sizeof(gcs));
  char *text = scrape(gcs);
  double before = sample(text, "rayc_grpc_server_unauthenticated_total");
  free(text);
  it_sh(&out, "env -u RAYC_TOKEN_FILE RAYC_TOKEN=wrong-token %s/bin/rayc list nodes --address %s", it_build,
        it_address);
  ck_assert_msg(strstr(out, "rejected the token"), "rayc list nodes with a wrong token:\n%s", out);
  free(out);
  double after = wait_sample(gcs, "rayc_grpc_server_unauthenticated_total", before < 0 ? 1 : before + 1);
  ck_assert_msg(after >= (before < 0 ? 1 : before + 1), "rejected tokens %g -> %g", before, after);
}
END_TEST

/* Waits until `rayc list tasks --filter name=NAME` shows n tasks, all in state; returns them. */
static json_t *wait_tasks(const char *name, size_t n, const char *state)
{
  char args[256];
  snprintf(args, sizeof(args), "list tasks --limit 0 --format json --filter name=%s", name);
  json_t *rows = NULL;
  double deadline = it_now_s() + 30;
  size_t in_state = 0;
  while (it_now_s() < deadline) {
    json_decref(rows);
    rows = rayc_json(args);
    size_t i;
    json_t *r;
    in_state = 0;
    json_array_foreach(rows, i, r) in_state += strcmp(json_string_value(json_object_get(r, "state")), state) == 0;
    if (json_array_size(rows) == n && in_state == n)
      break;
    it_sleep_ms(300);
  }
  ck_assert_msg(json_array_size(rows) == n && in_state == n, "rayc list tasks: %zu %s tasks, %zu %s; want %zu",
                json_array_size(rows), name, in_state, state, n);
  return rows;
}

START_TEST(list_tasks_after_1000_tasks)
{
  it_connect();
  enum { N = 1000 };
  rayc_ref *refs = xcalloc(N, sizeof(*refs));
  for (int i = 0; i < N; i++)
    refs[i] = submit("add", "obs_add", i, 1);
  int rc;
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(it_get_i64(&refs[i], &rc), i + 1);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&refs[i]);
  free(refs);
  rayc_ref bad = submit("no_such_function", "obs_missing", 0, 0);
  rayc_buf b;
  ck_assert_int_ne(rayc_get(&bad, 1, 60000, &b), 0);
  rayc_ref_release(&bad);
  rayc_shutdown();

  json_t *rows = wait_tasks("obs_add", N, "FINISHED"), *r = json_array_get(rows, 0);
  ck_assert_msg(json_string_value(json_object_get(r, "node_id"))[0] &&
                    json_integer_value(json_object_get(r, "worker_pid")) > 0 &&
                    json_real_value(json_object_get(r, "duration_ms")) >= 0,
                "a finished task lacks its node, worker or duration");
  json_decref(rows);
  rows = wait_tasks("obs_missing", 1, "FAILED");
  const char *err = json_string_value(json_object_get(json_array_get(rows, 0), "error"));
  ck_assert_msg(err && strstr(err, "no_such_function"), "the failed task's error: %s", err ? err : "(none)");
  json_decref(rows);
  char *out = NULL;
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc summary tasks --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, "obs_add") && strstr(out, "FINISHED: 1000"), "rayc summary tasks:\n%s", out);
  free(out);
}
END_TEST

START_TEST(timeline_has_one_event_per_task)
{
  it_connect();
  rayc_ref refs[5];
  int rc;
  for (int i = 0; i < 5; i++)
    refs[i] = submit("add", "obs_timeline", i, i);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(it_get_i64(&refs[i], &rc), 2 * i);
    rayc_ref_release(&refs[i]);
  }
  rayc_shutdown();
  json_decref(wait_tasks("obs_timeline", 5, "FINISHED"));
  char *out = NULL, path[700];
  snprintf(path, sizeof(path), "%s/timeline.json", it_temp);
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc timeline --temp-dir %s -o %s", it_build, it_temp, path), 0);
  free(out);
  json_error_t jerr;
  json_t *trace = json_load_file(path, 0, &jerr), *e;
  ck_assert_msg(trace, "the timeline is not JSON: %s", jerr.text);
  size_t i, n = 0;
  json_array_foreach(json_object_get(trace, "traceEvents"), i, e)
  {
    if (strcmp(json_string_value(json_object_get(e, "ph")), "X") != 0 ||
        strcmp(json_string_value(json_object_get(e, "name")), "obs_timeline") != 0)
      continue;
    n++;
    ck_assert(json_integer_value(json_object_get(e, "ts")) > 0 && json_integer_value(json_object_get(e, "dur")) >= 0);
    ck_assert(json_is_integer(json_object_get(e, "pid")) && json_integer_value(json_object_get(e, "tid")) > 0);
  }
  ck_assert_msg(n == 5, "%zu complete events for the 5 obs_timeline tasks", n);
  json_decref(trace);
}
END_TEST

START_TEST(cluster_events_show_a_killed_node)
{
  char *out = NULL, *joiner = xasprintf("%s/joiner-XXXXXX", it_temp), pidfile[1200];
  ck_assert_ptr_nonnull(mkdtemp(joiner));
  int rc = it_sh(&out,
                 "%s/bin/rayc start --address %s --temp-dir %s --num-cpus 1 --object-store-memory 80M "
                 "--token-file %s/cluster_token",
                 it_build, it_address, joiner, it_temp);
  ck_assert_msg(rc == 0, "join (%d):\n%s", rc, out);
  free(out);
  snprintf(pidfile, sizeof(pidfile), "%s/session_latest/pids/raylet.pid", joiner);
  FILE *f = fopen(pidfile, "r");
  int pid = 0;
  ck_assert_msg(f && fscanf(f, "%d", &pid) == 1 && pid > 0, "no raylet pid in %s", pidfile);
  fclose(f);
  json_t *nodes = rayc_json("list nodes --format json --filter state=ALIVE"), *n;
  ck_assert_int_eq(json_array_size(nodes), 2);
  json_decref(nodes);
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  int seen = 0;
  double deadline = it_now_s() + 60;
  while (!seen && it_now_s() < deadline) {
    json_t *events = rayc_json("list cluster-events --format json --limit 0");
    size_t i;
    json_array_foreach(events, i, n) seen |= strcmp(json_string_value(json_object_get(n, "kind")), "NODE_DEAD") == 0 &&
                                             strcmp(json_string_value(json_object_get(n, "severity")), "ERROR") == 0;
    json_decref(events);
    if (!seen)
      it_sleep_ms(500);
  }
  ck_assert_msg(seen, "no NODE_DEAD cluster event within 60 s of killing the joiner's raylet");
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list cluster-events --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, "NODE_ADDED") && strstr(out, "NODE_DEAD") && strstr(out, "is dead"),
                "rayc list cluster-events:\n%s", out);
  free(out);
  it_sh(NULL, "%s/bin/rayc stop --force --temp-dir %s", it_build, joiner);
  free(joiner);
}
END_TEST

/* The rows of `rayc list objects --format json` (plus extra flags) whose object_id is in ids. */
static size_t objects_listed(char ids[][RAYC_REF_HEX_LEN], size_t n, const char *flags, json_t **first)
{
  char args[256];
  snprintf(args, sizeof(args), "list objects --format json --limit 100000 %s", flags);
  json_t *rows = rayc_json(args), *r;
  size_t i, found = 0;
  json_array_foreach(rows, i, r)
  {
    const char *id = json_string_value(json_object_get(r, "object_id"));
    for (size_t k = 0; id && k < n; k++)
      if (strcmp(id, ids[k]) == 0) {
        if (first && !*first)
          *first = json_incref(r);
        found++;
      }
  }
  json_decref(rows);
  return found;
}

START_TEST(list_objects_after_a_workload)
{
  it_connect();
  enum { N = 3, SIZE = 1 << 20 };
  rayc_ref refs[N];
  char ids[N][RAYC_REF_HEX_LEN];
  char *data = xcalloc(1, SIZE);
  for (int i = 0; i < N; i++) {
    data[0] = (char)i;
    ck_assert_int_eq(rayc_put(data, SIZE, &refs[i]), 0);
    rayc_ref_hex(&refs[i], ids[i]);
  }
  free(data);
  json_t *row = NULL;
  ck_assert_uint_eq(objects_listed(ids, N, "", &row), N);
  ck_assert_int_eq(json_integer_value(json_object_get(row, "object_size")), SIZE);
  ck_assert_str_eq(json_string_value(json_object_get(row, "reference_type")), "PINNED_IN_MEMORY");
  char ip[64];
  snprintf(ip, sizeof(ip), "%s", json_string_value(json_object_get(row, "ip")));
  ck_assert_msg(*ip && strcmp(ip, json_string_value(json_object_get(row, "owner_ip"))) == 0 &&
                    json_integer_value(json_object_get(row, "owner_port")) > 0 &&
                    strlen(json_string_value(json_object_get(row, "node_id"))) == 56,
                "an object's node and owner: %s", json_dumps(row, 0));
  json_decref(row);
  ck_assert_uint_eq(objects_listed(ids, N, "--filter reference_type=CACHED_COPY", NULL), 0);
  json_t *sum = rayc_json("summary objects --format json");
  json_t *node = json_object_get(json_object_get(sum, "summary"), ip);
  ck_assert_msg(json_integer_value(json_object_get(node, "PINNED_IN_MEMORY")) >= N &&
                    json_integer_value(json_object_get(node, "bytes")) >= N * SIZE,
                "rayc summary objects: %s", json_dumps(sum, 0));
  json_decref(sum);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&refs[i]);
  size_t left = N;
  for (double deadline = it_now_s() + 30; left && it_now_s() < deadline; it_sleep_ms(200))
    left = objects_listed(ids, N, "", NULL);
  ck_assert_msg(left == 0, "%zu released objects are still listed after 30 s", left);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  setenv("RAYC_HEALTH_CHECK_FAILURE_THRESHOLD", "2", 1); /* a killed node is dead in ~2 s */
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 200M") != 0) {
    fprintf(stderr, "cannot start the head node\n");
    return 1;
  }
  Suite *s = suite_create("observability");
  TCase *tc = tcase_create("observability");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, metrics_move_during_a_workload);
  tcase_add_test(tc, rejected_tokens_are_counted);
  tcase_add_test(tc, list_tasks_after_1000_tasks);
  tcase_add_test(tc, timeline_has_one_event_per_task);
  tcase_add_test(tc, list_objects_after_a_workload);
  tcase_add_test(tc, cluster_events_show_a_killed_node);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
