/*
 * The raylet's memory monitor (raylet/raylet_mem.c) against a real head node whose memory limit is
 * 300 MiB for its workers (--memory-limit via RAYC_MEMORY_LIMIT): a task touching 600 MiB is
 * killed before it gets there, its owner gets NODE_OUT_OF_MEMORY naming the node, the worker's RSS
 * and the threshold after its OOM retries (RAYC_TASK_OOM_RETRIES=1: two kills), a task of 40 MiB
 * running beside it on the same node succeeds, and each kill is a WORKER_OOM_KILLED cluster event.
 */
#include "itest.h"
#include "itest_sh.h"

#include <stdint.h>

enum { LIMIT_MIB = 300, HOG_MIB = 600 };

static rayc_ref hog(int64_t mib, int64_t step_ms, int64_t hold_ms, int max_retries)
{
  int64_t v[3] = {mib, step_ms, hold_ms};
  rayc_arg a[3] = {RAYC_ARG_VAL(&v[0], 8), RAYC_ARG_VAL(&v[1], 8), RAYC_ARG_VAL(&v[2], 8)};
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.max_retries = max_retries;
  rayc_ref r;
  int rc = rayc_remote("mem_hog", a, 3, &o, &r);
  ck_assert_msg(rc == 0, "submit: %s", rayc_last_error());
  return r;
}

/* Counts the lines of `rayc list cluster-events` holding every one of the two words. */
static int count_events(const char *w1, const char *w2)
{
  char cmd[2048], line[4096];
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc list cluster-events --limit 1000 2>&1", it_build);
  FILE *p = popen(cmd, "r");
  int n = 0;
  while (p && fgets(line, sizeof(line), p))
    n += strstr(line, w1) && strstr(line, w2);
  if (p)
    pclose(p);
  return n;
}

/* rayc_raylet_oom_kills_total on the raylet's /metrics (found with `rayc metrics targets`). */
static double oom_kills_metric(void)
{
  char *out = NULL;
  int rc = it_sh(&out,
                 "curl -sSf --max-time 10 http://$(%s/bin/rayc metrics targets --temp-dir %s | /usr/bin/python3 -c "
                 "'import json,sys; print([g[\"targets\"][0] for g in json.load(sys.stdin) "
                 "if g[\"labels\"][\"daemon\"] == \"raylet\"][0])')/metrics | grep '^rayc_raylet_oom_kills_total '",
                 it_build, it_temp);
  ck_assert_msg(rc == 0, "scraping the raylet (%d): %s", rc, out);
  double v = strtod(out + strlen("rayc_raylet_oom_kills_total "), NULL);
  free(out);
  return v;
}

/* The "the worker used N MiB (RSS)" of an OOM message; -1 when missing. */
static long rss_in(const char *msg)
{
  const char *p = strstr(msg, "the worker used ");
  return p ? strtol(p + strlen("the worker used "), NULL, 10) : -1;
}

START_TEST(test_oom_killed_before_the_kernel)
{
  it_connect();
  /* the well-behaved task: 40 MiB held for 4 s, so it runs while the hog grows */
  rayc_ref ok = hog(40, 5, 4000, 0);
  rayc_ref big = hog(HOG_MIB, 20, 10000, 2);
  int rc;
  int64_t v = it_get_i64(&big, &rc);
  char msg[4096];
  snprintf(msg, sizeof(msg), "%s", rayc_last_error());
  ck_assert_msg(rc == RAYC_ENODE_OUT_OF_MEMORY, "the hog: rc %d (%s), value %lld: %s", rc, rayc_err_name(rc),
                (long long)v, msg);
  ck_assert_msg(strstr(msg, "memory monitor of node") && strstr(msg, "mem_hog") && strstr(msg, "threshold of 95%"),
                "message: %s", msg);
  long rss = rss_in(msg);
  /* killed past the threshold (285 MiB of workers' RSS) and well before 600 MiB */
  ck_assert_msg(rss >= 200 && rss < HOG_MIB - 100, "the worker's RSS when killed: %ld MiB (%s)", rss, msg);
  ck_assert_int_eq(it_get_i64(&ok, &rc), 40);
  ck_assert_msg(rc == 0, "the well-behaved task: %s", rayc_last_error());
  /* one kill per attempt: the first, and its one OOM retry (RAYC_TASK_OOM_RETRIES=1) */
  ck_assert_int_eq(count_events("WORKER_OOM_KILLED", "memory monitor"), 2);
  rayc_ref_release(&big);
  rayc_ref_release(&ok);

  /* a task that may not be retried (max_retries 0) fails at its first kill */
  rayc_ref once = hog(HOG_MIB, 20, 10000, 0);
  it_get_i64(&once, &rc);
  ck_assert_msg(rc == RAYC_ENODE_OUT_OF_MEMORY, "rc %d: %s", rc, rayc_last_error());
  ck_assert_int_eq(count_events("WORKER_OOM_KILLED", "memory monitor"), 3);
  ck_assert_int_eq((int)oom_kills_metric(), 3);
  rayc_ref_release(&once);

  /* the node still runs tasks */
  rayc_ref after = hog(16, 1, 0, 0);
  ck_assert_int_eq(it_get_i64(&after, &rc), 16);
  ck_assert_msg(rc == 0, "after: %s", rayc_last_error());
  rayc_ref_release(&after);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  setenv("RAYC_MEMORY_LIMIT", "300M", 1); /* the raylet's --memory-limit: its workers' RSS */
  setenv("RAYC_MEMORY_MONITOR_REFRESH_MS", "50", 1);
  setenv("RAYC_TASK_OOM_RETRIES", "1", 1); /* this driver's budget of OOM retries */
  if (it_start("libtest_tasks.so", "--num-cpus 2") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("oom");
  TCase *tc = tcase_create("oom");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_oom_killed_before_the_kernel);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
