/*
 * An idle lease goes back at once when other owners wait (issue 17), end to end on a real
 * one-CPU head node with two real drivers (this test and a copy of this program started with
 * --driver-b, a job of its own).
 *
 * Driver A holds the only CPU with a task (gate) until driver B's lease request is queued at the
 * raylet (rayc_raylet_queued_leases on its /metrics). The raylet tells A's worker that the lease is
 * wanted; A's gate task then finishes, and A submits a second task (stamp) at once. Without the
 * lease_wanted path A would still hold its idle lease (CW_LEASE_IDLE_MS) and push the second task
 * to it before B's task could start; with it, A returns the lease as soon as it is idle, B's
 * queued request gets the CPU first, and A's second task runs after B's. The test checks that
 * order (when each task ran, on the clock every process shares), not how long anything took.
 *
 * A lease already idle when the other request queues: driver A holds its idle lease for ten
 * minutes (RAYC_LEASE_IDLE_MS), has no task in flight (so no reply can carry the flag), and driver
 * B's task must still run: the worker tells A at once (LeaseWanted) and A returns the idle lease.
 */
#include "itest.h"
#include "itest_sh.h"

#include <jansson.h>
#include <spawn.h>

extern char **environ;

/* Driver B: one stamp task, its value written to path; exit status 0 on success. */
static int driver_b(const char *path)
{
  if (rayc_init(NULL) != 0) {
    fprintf(stderr, "driver B: rayc_init: %s\n", rayc_last_error());
    return 1;
  }
  rayc_ref r;
  int rc = rayc_remote("stamp", NULL, 0, NULL, &r);
  int64_t v = -1;
  if (rc == 0)
    v = it_get_i64(&r, &rc);
  if (rc != 0)
    fprintf(stderr, "driver B: stamp: %s\n", rayc_last_error());
  rayc_shutdown();
  FILE *f = rc == 0 ? fopen(path, "w") : NULL;
  if (f) {
    fprintf(f, "%lld\n", (long long)v);
    fclose(f);
  }
  return f ? 0 : 1;
}

/* The raylet's /metrics address, from `rayc metrics targets`. */
static void raylet_target(char *out, size_t len)
{
  char *text = NULL;
  int rc = it_sh(&text, "%s/bin/rayc metrics targets --temp-dir %s 2>/dev/null", it_build, it_temp);
  ck_assert_msg(rc == 0, "rayc metrics targets (%d): %s", rc, text);
  json_error_t err;
  json_t *groups = json_loads(text, 0, &err), *g;
  ck_assert_msg(groups, "rayc metrics targets printed no JSON: %s", text);
  size_t i;
  out[0] = '\0';
  json_array_foreach(groups, i, g)
  {
    const char *d = json_string_value(json_object_get(json_object_get(g, "labels"), "daemon"));
    if (d && strcmp(d, "raylet") == 0)
      snprintf(out, len, "%s", json_string_value(json_array_get(json_object_get(g, "targets"), 0)));
  }
  json_decref(groups);
  free(text);
  ck_assert_msg(out[0], "rayc metrics targets lists no raylet");
}

/* Waits (up to 120 s) until the raylet has at least one lease request queued. */
static void wait_queued_lease(void)
{
  char target[256];
  raylet_target(target, sizeof(target));
  double q = 0;
  for (int i = 0; i < 1200 && q < 1; i++) {
    char *text = NULL;
    if (it_sh(&text, "curl -sSf --max-time 10 http://%s/metrics | awk '$1 == \"rayc_raylet_queued_leases\" {print $2}'",
              target) == 0)
      q = atof(text);
    free(text);
    if (q < 1)
      usleep(100 * 1000);
  }
  ck_assert_msg(q >= 1, "driver B's lease request never queued at the raylet");
}

static void wait_file(const char *path)
{
  for (int i = 0; i < 1200 && access(path, F_OK) != 0; i++)
    usleep(100 * 1000);
  ck_assert_msg(access(path, F_OK) == 0, "%s never appeared", path);
}

START_TEST(test_idle_lease_returned_when_others_wait)
{
  char go[600], started[700], bout[600];
  snprintf(go, sizeof(go), "%s/gate", it_temp);
  snprintf(started, sizeof(started), "%s.started", go);
  snprintf(bout, sizeof(bout), "%s/driver_b.out", it_temp);
  it_connect();
  rayc_ref t1, t2;
  rayc_arg a = RAYC_ARG_VAL(go, strlen(go));
  ck_assert_int_eq(rayc_remote("gate", &a, 1, NULL, &t1), 0);
  wait_file(started); /* A's lease holds the only CPU */

  char *argv[] = {(char *)"/proc/self/exe", (char *)"--driver-b", bout, NULL};
  pid_t b;
  ck_assert_int_eq(posix_spawn(&b, "/proc/self/exe", NULL, NULL, argv, environ), 0);
  wait_queued_lease();
  FILE *f = fopen(go, "w"); /* open the gate: A's first task ends, its lease goes idle */
  ck_assert_ptr_nonnull(f);
  fclose(f);
  int rc;
  int64_t a1 = it_get_i64(&t1, &rc);
  ck_assert_msg(rc == 0, "gate: %s", rayc_last_error());
  ck_assert_int_eq(rayc_remote("stamp", NULL, 0, NULL, &t2), 0); /* at once, within the idle hold */
  int64_t a2 = it_get_i64(&t2, &rc);
  ck_assert_msg(rc == 0, "stamp: %s", rayc_last_error());
  rayc_ref_release(&t1);
  rayc_ref_release(&t2);

  int st = 0;
  ck_assert_int_eq(waitpid(b, &st, 0), b);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "driver B failed (status %d)", st);
  f = fopen(bout, "r");
  ck_assert_ptr_nonnull(f);
  long long bv = -1;
  ck_assert_int_eq(fscanf(f, "%lld", &bv), 1);
  fclose(f);
  ck_assert_msg(a1 < bv, "B's task ran before A's gate opened");
  ck_assert_msg(bv < a2,
                "driver A's second task ran %.1f ms before driver B's queued one: A kept its idle lease while "
                "B waited",
                (double)(bv - a2) / 1e6);
  rayc_shutdown();
}
END_TEST

/* Waits up to 120 s for pid to exit; returns its status, or -1 (killed) if it did not. */
static int wait_exit(pid_t pid)
{
  int st = 0;
  for (int i = 0; i < 1200; i++) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid)
      return st;
    usleep(100 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

START_TEST(test_lease_idle_when_others_queue_goes_back)
{
  char bout[600];
  snprintf(bout, sizeof(bout), "%s/driver_b_idle.out", it_temp);
  setenv("RAYC_LEASE_IDLE_MS", "600000", 1); /* A would hold its idle lease for 10 minutes */
  it_connect();
  rayc_ref t;
  ck_assert_int_eq(rayc_remote("stamp", NULL, 0, NULL, &t), 0);
  int rc;
  int64_t a = it_get_i64(&t, &rc);
  ck_assert_msg(rc == 0, "stamp: %s", rayc_last_error());
  rayc_ref_release(&t); /* A's lease holds the only CPU, idle, with nothing in flight */

  char *argv[] = {(char *)"/proc/self/exe", (char *)"--driver-b", bout, NULL};
  pid_t b;
  ck_assert_int_eq(posix_spawn(&b, "/proc/self/exe", NULL, NULL, argv, environ), 0);
  int st = wait_exit(b);
  ck_assert_msg(st != -1, "driver B's task never ran: driver A kept its idle lease while B waited");
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "driver B failed (status %d)", st);
  FILE *f = fopen(bout, "r");
  ck_assert_ptr_nonnull(f);
  long long bv = -1;
  ck_assert_int_eq(fscanf(f, "%lld", &bv), 1);
  fclose(f);
  ck_assert_msg(a < bv, "B's task ran before A's");
  rayc_shutdown();
  unsetenv("RAYC_LEASE_IDLE_MS");
}
END_TEST

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--driver-b") == 0)
    return driver_b(argv[2]);
  if (it_start("libtest_tasks.so", "--num-cpus 1") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("lease_wanted");
  TCase *tc = tcase_create("lease_wanted");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_idle_lease_returned_when_others_wait);
  tcase_add_test(tc, test_lease_idle_when_others_queue_goes_back);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
