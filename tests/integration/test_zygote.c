/*
 * Integration tests of the worker fork server (raylet/raylet_zygote.c, worker/zygote.c) against a
 * real head node: C workers are children of the node's `rayc-worker --zygote` and show their own
 * arguments; when the zygote is killed, its workers go with it, the raylet notices, and tasks
 * still run on exec'ed workers; `rayc stop` leaves nothing behind (checked by it_stop).
 */
#include "itest.h"

#include <signal.h>

static int64_t task_pid(void)
{
  rayc_ref r;
  int rc = rayc_remote("pid", NULL, 0, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_remote pid: %s", rayc_last_error());
  int64_t pid = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "rayc_get: %s", rayc_last_error());
  rayc_ref_release(&r);
  return pid;
}

/* The node's first workers are exec'ed while the zygote starts (it starts with the first worker
 * the node needs); once it is ready, a new job's workers are children of it and their command
 * lines are their own. */
START_TEST(test_workers_are_forked)
{
  it_connect();
  ck_assert_int_gt(task_pid(), 0);
  rayc_shutdown();
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "grep -q 'worker zygote (pid [0-9]*) ready' %s/session_latest/logs/raylet.log", it_temp);
  int ready = 0;
  for (int waited = 0; waited < 30000 && !(ready = it_run(cmd) == 0); waited += 100)
    usleep(100 * 1000);
  ck_assert_msg(ready, "the raylet never logged that its worker zygote is ready");
  it_connect(); /* a new job: its prestarted workers are forked */
  int64_t pid = task_pid();
  char self[8192], parent[8192];
  it_cmdline((long)pid, self, sizeof(self));
  it_cmdline(it_parent_of((long)pid), parent, sizeof(parent));
  ck_assert_msg(strstr(parent, "--zygote") && strstr(parent, it_temp), "the worker's parent is not the zygote: %s",
                parent);
  ck_assert_msg(strstr(self, "--job-id ") && strstr(self, "--worker-id ") && strstr(self, it_temp) &&
                    !strstr(self, "--zygote"),
                "the worker's command line is not its own: %s", self);
  rayc_shutdown();
}
END_TEST

/* The zygote dies: its workers die with it, the raylet forgets them, new workers are exec'ed. */
START_TEST(test_zygote_killed)
{
  it_connect();
  int64_t before = task_pid();
  long zygote = it_parent_of((long)before);
  char text[8192];
  it_cmdline(zygote, text, sizeof(text));
  ck_assert_msg(strstr(text, "--zygote"), "no zygote above worker %lld", (long long)before);
  ck_assert_int_eq(kill((pid_t)zygote, SIGKILL), 0);
  int gone = 0;
  for (int waited = 0; waited < 20000 && !gone; waited += 100) {
    usleep(100 * 1000);
    gone = kill((pid_t)before, 0) != 0;
  }
  ck_assert_msg(gone, "worker %lld outlived its zygote", (long long)before);
  int64_t after = 0;
  for (int i = 0; i < 3; i++) /* the first may land on a worker that was exiting: it is retried */
    after = task_pid();
  ck_assert_int_gt(after, 0);
  ck_assert_int_ne(after, before);
  it_cmdline(it_parent_of((long)after), text, sizeof(text));
  ck_assert_msg(strstr(text, "rayc-raylet"), "after the zygote died, a worker's parent is %s (want the raylet)", text);
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "grep -q 'worker zygote (pid %ld).*exec' %s/session_latest/logs/raylet.log", zygote,
           it_temp);
  ck_assert_msg(it_run(cmd) == 0, "the raylet did not log that the zygote is gone");
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("zygote");
  TCase *tc = tcase_create("zygote");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_workers_are_forked);
  tcase_add_test(tc, test_zygote_killed);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
