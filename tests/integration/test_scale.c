/*
 * The cluster view at scale (issue 17), end to end: a head and 20 real nodes joined with
 * `rayc start --address` (a raylet and an object store each), all ALIVE; while the cluster idles,
 * heartbeats keep arriving but carry no report (`unchanged`) and their replies carry no view
 * entries, and no raylet polls the job channel (heartbeat replies carry its seq); when one node leaves, the others learn it from a delta of about one entry each, not
 * from the whole view. Function only: no timing is asserted (bench/scale-probe measures that).
 */
#include "itest.h"
#include "itest_sh.h"

#include <jansson.h>
#include <time.h>

enum { JOINERS = 20 };

static char gcs_target[256];

/* The GCS's /metrics address from `rayc metrics targets`. */
static void find_gcs_target(void)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/bin/rayc metrics targets --temp-dir %s 2>/dev/null", it_build, it_temp);
  ck_assert_msg(rc == 0, "rayc metrics targets (%d):\n%s", rc, out);
  json_error_t err;
  json_t *groups = json_loads(out, 0, &err), *g;
  ck_assert_msg(groups, "rayc metrics targets printed no JSON:\n%s", out);
  size_t i;
  json_array_foreach(groups, i, g)
  {
    const char *d = json_string_value(json_object_get(json_object_get(g, "labels"), "daemon"));
    if (d && strcmp(d, "gcs") == 0)
      snprintf(gcs_target, sizeof(gcs_target), "%s",
               json_string_value(json_array_get(json_object_get(g, "targets"), 0)));
  }
  json_decref(groups);
  free(out);
  ck_assert_msg(gcs_target[0], "rayc metrics targets lists no gcs");
}

/* The value of `series` (exactly as exposed) on the GCS's /metrics; 0 when absent. */
static double gcs_sample(const char *series)
{
  char *out = NULL;
  int rc = it_sh(&out, "curl -sSf --max-time 10 http://%s/metrics", gcs_target);
  ck_assert_msg(rc == 0, "scraping %s (%d): %s", gcs_target, rc, out);
  double v = it_metric_value(out, series);
  free(out);
  return v;
}

#define HB_FULL    "rayc_gcs_heartbeats_total{Report=\"full\"}"
#define HB_SAME    "rayc_gcs_heartbeats_total{Report=\"unchanged\"}"
#define POLLS      "rayc_grpc_server_req_handling_seconds_count{Method=\"rayc.InternalPubSubGcsService/Poll\"}"
#define SENT_FULL  "rayc_gcs_view_entries_sent_total{Kind=\"full\"}"
#define SENT_DELTA "rayc_gcs_view_entries_sent_total{Kind=\"delta\"}"

static double heartbeats(void)
{
  return gcs_sample(HB_FULL) + gcs_sample(HB_SAME);
}

/* Waits (generously) until at least n more heartbeats than `from` arrived. */
static void wait_heartbeats(double from, double n)
{
  double deadline = it_now_s() + 120, seen = from;
  while ((seen = heartbeats()) < from + n && it_now_s() < deadline)
    it_sleep_ms(500);
  ck_assert_msg(seen >= from + n, "only %.0f of %.0f heartbeats arrived", seen - from, n);
}

static int alive_nodes(void)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/bin/rayc list nodes --format json --limit 0 --temp-dir %s 2>/dev/null", it_build, it_temp);
  ck_assert_msg(rc == 0, "rayc list nodes (%d):\n%s", rc, out);
  json_error_t err;
  json_t *nodes = json_loads(out, 0, &err), *n;
  ck_assert_msg(nodes, "rayc list nodes printed no JSON:\n%s", out);
  size_t i;
  int alive = 0;
  json_array_foreach(nodes, i, n) alive += strcmp(json_string_value(json_object_get(n, "state")), "ALIVE") == 0;
  json_decref(nodes);
  free(out);
  return alive;
}

START_TEST(idle_heartbeats_carry_no_view)
{
  char dir[700];
  for (int i = 0; i < JOINERS; i++) {
    char *out = NULL;
    snprintf(dir, sizeof(dir), "%s/node-%d", it_temp, i);
    int rc = it_sh(&out,
                   "mkdir -p %s && %s/bin/rayc start --address %s --temp-dir %s --num-cpus 1 "
                   "--object-store-memory 80M --token-file %s/cluster_token",
                   dir, it_build, it_address, dir, it_temp);
    ck_assert_msg(rc == 0, "node %d did not join (%d):\n%s", i, rc, out);
    free(out);
  }
  int alive = 0;
  for (double deadline = it_now_s() + 60; (alive = alive_nodes()) < JOINERS + 1 && it_now_s() < deadline;)
    it_sleep_ms(500);
  ck_assert_int_eq(alive, JOINERS + 1);
  find_gcs_target();
  /* settle: two rounds of heartbeats bring every raylet's view up to the last join */
  wait_heartbeats(heartbeats(), 2 * (JOINERS + 1));
  double full0 = gcs_sample(HB_FULL), sent0 = gcs_sample(SENT_FULL) + gcs_sample(SENT_DELTA);
  double hb0 = heartbeats(), polls0 = gcs_sample(POLLS);
  /* 11 rounds: longer than the 10 s a raylet's job-channel long poll used to be held */
  wait_heartbeats(hb0, 11 * (JOINERS + 1));
  ck_assert_msg(gcs_sample(POLLS) == polls0,
                "idle raylets polled the GCS's job channel %.0f times (heartbeats carry its seq instead)",
                gcs_sample(POLLS) - polls0);
  ck_assert_msg(gcs_sample(SENT_FULL) + gcs_sample(SENT_DELTA) == sent0,
                "an idle cluster's heartbeat replies carried view entries");
  ck_assert_msg(gcs_sample(HB_FULL) == full0, "an idle node's heartbeat carried its report");
  ck_assert(gcs_sample(HB_SAME) > 0);

  /* one node leaves: each other raylet learns it from a delta (about one entry), no full view */
  double full_views = gcs_sample(SENT_FULL), delta0 = gcs_sample(SENT_DELTA);
  snprintf(dir, sizeof(dir), "%s/node-%d", it_temp, JOINERS - 1);
  ck_assert_int_eq(it_sh(NULL, "%s/bin/rayc stop --temp-dir %s", it_build, dir), 0);
  double deadline = it_now_s() + 60;
  while (gcs_sample(SENT_DELTA) - delta0 < JOINERS && it_now_s() < deadline)
    it_sleep_ms(500);
  double delta = gcs_sample(SENT_DELTA) - delta0;
  ck_assert_msg(delta >= JOINERS, "the node's departure reached only %.0f raylets", delta);
  ck_assert_msg(delta <= 2 * (JOINERS + 1), "%.0f delta entries for one departure among %d nodes", delta, JOINERS);
  ck_assert_msg(gcs_sample(SENT_FULL) == full_views, "a departure sent full views");
}
END_TEST

/* Outside the test (no ck_assert here): stops the joined nodes, in parallel. */
static void stop_joiners(void)
{
  char *cmd = xasprintf("for d in %s/node-*; do %s/bin/rayc stop --temp-dir $d >/dev/null 2>&1 & done; wait", it_temp,
                        it_build);
  if (it_run(cmd) != 0)
    printf("stopping the joined nodes failed\n");
  free(cmd);
}

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 1 --object-store-memory 80M") != 0) {
    fprintf(stderr, "cannot start the head node\n");
    return 1;
  }
  Suite *s = suite_create("scale");
  TCase *tc = tcase_create("scale");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, idle_heartbeats_carry_no_view);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  stop_joiners();
  failed += it_stop();
  return failed ? 1 : 0;
}
