/*
 * Integration tests of the zygote per job (raylet/raylet_zygote.c, worker/zygote.c; issue 17,
 * docs/PERFORMANCE.md "A zygote per job") against a real head node: a job's workers are forked by
 * a zygote that has loaded the job's code (its library is mapped there and the worker does not
 * load it again) while the node's zygote never loads a job's code; two jobs whose libraries
 * register the same names each run their own; the job's zygote is gone once the job has ended;
 * and a job whose code does not load still gets the clear error a task of it always got.
 */
#include "itest.h"
#include "itest_sh.h"

#include <signal.h>
#include <sys/stat.h>

/* Whether process pid has a file whose path holds name mapped. */
static int maps_has(long pid, const char *name)
{
  char path[64], line[1024];
  snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
  FILE *f = fopen(path, "r");
  int found = 0;
  while (f && !found && fgets(line, sizeof(line), f))
    found = strstr(line, name) != NULL;
  if (f)
    fclose(f);
  return found;
}

/* Waits up to 30 s for the raylet's log to match the extended regex re. */
static int raylet_logged(const char *re)
{
  char cmd[1600];
  snprintf(cmd, sizeof(cmd),
           "for i in $(seq 300); do grep -q -E '%s' %s/session_latest/logs/raylet.log && exit 0; sleep 0.1; done; "
           "exit 1",
           re, it_temp);
  return it_run(cmd) == 0;
}

static void connect_with(const char *libname)
{
  char code[1200];
  snprintf(code, sizeof(code), "%s/lib/%s", it_build, libname);
  rayc_config cfg = {.address = it_address, .code_path = code};
  int rc = rayc_init(&cfg);
  ck_assert_msg(rc == 0, "rayc_init: %s", rayc_last_error());
}

static int64_t task_value(const char *fn)
{
  rayc_ref r;
  int rc = rayc_remote(fn, NULL, 0, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "rayc_get %s: %s", fn, rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

/* A new TCounter's answer to "pid" (the two libraries answer the pid, or minus it). */
static int64_t new_actor_pid(rayc_actor *a)
{
  rayc_ref r;
  int rc = rayc_actor_create("TCounter", NULL, 0, NULL, a);
  ck_assert_msg(rc == 0, "rayc_actor_create TCounter: %s", rayc_last_error());
  ck_assert_int_eq(rayc_actor_call(a, "pid", NULL, 0, NULL, &r), 0);
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "rayc_get TCounter.pid: %s", rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

/* Worker pid was forked by its job's zygote, which has lib mapped (and not other), under the
 * node's zygote, which has neither. Returns the job zygote's pid. */
static long check_job_zygote(long pid, const char *lib, const char *other)
{
  char text[8192];
  long jz = it_parent_of(pid), nz = it_parent_of(jz);
  it_cmdline(jz, text, sizeof(text));
  ck_assert_msg(strstr(text, "--zygote") && strstr(text, "--zygote --job ") && strstr(text, it_temp),
                "worker %ld's parent is not its job's zygote: %s", pid, text);
  ck_assert_msg(maps_has(jz, lib), "the job's zygote %ld has not loaded %s", jz, lib);
  ck_assert_msg(!maps_has(jz, other), "the job's zygote %ld has another job's %s", jz, other);
  it_cmdline(nz, text, sizeof(text));
  ck_assert_msg(strstr(text, "--zygote") && !strstr(text, "--job "), "above the job's zygote: %s", text);
  ck_assert_msg(!maps_has(nz, lib) && !maps_has(nz, other), "the node's zygote %ld has a job's code loaded", nz);
  return jz;
}

/* A job's actor worker comes from its job's zygote and does not load the code again; once the
 * job has ended, its zygote is gone. */
START_TEST(test_job_zygote_forks_and_ends)
{
  it_connect();
  /* The job's first workers come from the node's zygote (on a fresh node, all spawned before it
   * is ready are exec'ed) while its job's zygote starts (the kept-ready actor workers too); each
   * actor takes one of those and another is started: from the job's zygote once it is ready. */
  enum { MAX_ACTORS = 12 };
  rayc_actor a[MAX_ACTORS];
  int n = 0;
  long pid = 0;
  char text[8192];
  for (text[0] = '\0'; n < MAX_ACTORS && !strstr(text, "--zygote --job "); n++) {
    pid = (long)new_actor_pid(&a[n]);
    ck_assert_int_gt(pid, 0);
    it_cmdline(it_parent_of(pid), text, sizeof(text));
    it_sleep_ms(200); /* the next spare's start */
  }
  ck_assert_msg(raylet_logged("worker zygote \\(pid [0-9]+\\) of job [0-9a-f]+ ready: it loaded .*libtest_tasks\\.so"),
                "the raylet never logged a job zygote ready with the job's code");
  long jz = check_job_zygote(pid, "libtest_tasks.so", "libtest_other.so");
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "grep -q 'loaded before the fork' %s/session_latest/logs/worker-*.log", it_temp);
  ck_assert_msg(it_run(cmd) == 0, "no worker logged that its code came loaded from its job's zygote");
  for (int i = 0; i < n; i++)
    rayc_actor_kill(&a[i], 1);
  rayc_shutdown(); /* the job ends */
  int gone = 0;
  for (int i = 0; i < 300 && !gone; i++) {
    gone = kill((pid_t)jz, 0) != 0;
    if (!gone)
      it_sleep_ms(100);
  }
  ck_assert_msg(gone, "job zygote %ld still runs 30 s after its job ended", jz);
  ck_assert_msg(raylet_logged("worker zygote \\(pid [0-9]+\\) of job [0-9a-f]+ ended with its job"),
                "the raylet did not log the job zygote's end");
}
END_TEST

/* Two jobs whose libraries register the same task and class names each run their own code. */
START_TEST(test_two_jobs_own_code)
{
  it_connect();
  ck_assert_int_gt(task_value("pid"), 0);
  rayc_actor a;
  long pid = (long)new_actor_pid(&a);
  ck_assert_int_gt(pid, 0);
  rayc_actor_kill(&a, 1);
  rayc_shutdown();
  connect_with("libtest_other.so");
  ck_assert_msg(raylet_logged("of job [0-9a-f]+ ready: it loaded .*libtest_other\\.so"),
                "the raylet never logged the second job's zygote ready");
  ck_assert_int_lt(task_value("pid"), 0);
  long neg = (long)new_actor_pid(&a);
  ck_assert_msg(neg < 0, "the second job's actor ran the first job's code (pid %ld)", neg);
  check_job_zygote(-neg, "libtest_other.so", "libtest_tasks.so");
  ck_assert_msg(!maps_has(-neg, "libtest_tasks.so"), "the second job's worker has the first job's library");
  rayc_actor_kill(&a, 1);
  rayc_shutdown();
}
END_TEST

/* A job whose code does not load: its zygote says so, and its tasks fail with the clear error. */
START_TEST(test_code_fails_to_load)
{
  char dir[700], bad[800], code[900];
  snprintf(dir, sizeof(dir), "%s/badcode", it_temp);
  mkdir(dir, 0700);
  snprintf(bad, sizeof(bad), "%s/libbroken.so", dir);
  FILE *f = fopen(bad, "w");
  ck_assert_ptr_nonnull(f);
  fputs("not a shared object\n", f);
  fclose(f);
  snprintf(code, sizeof(code), "%s", bad);
  rayc_config cfg = {.address = it_address, .code_path = code};
  ck_assert_int_eq(rayc_init(&cfg), 0);
  rayc_ref r;
  rayc_buf b;
  ck_assert_int_eq(rayc_remote("pid", NULL, 0, NULL, &r), 0);
  ck_assert_int_eq(rayc_get(&r, 1, 30000, &b), RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "not registered") && strstr(rayc_last_error(), "libbroken.so"), "detail: %s",
                rayc_last_error());
  rayc_ref_release(&r);
  ck_assert_msg(raylet_logged("of job [0-9a-f]+ could not load .*libbroken\\.so"),
                "the raylet did not log that the job's zygote could not load its code");
  rayc_shutdown();
}
END_TEST

/* A job whose code comes in its working dir (a package unpacked on the node): its zygote loads
 * the library from the node's copy, and its actors' workers run the job's code from it. */
START_TEST(test_working_dir_job)
{
  char wd[800], env[800], *out = NULL;
  snprintf(wd, sizeof(wd), "%s/wd", it_temp);
  snprintf(env, sizeof(env), "%s/env.yaml", it_temp);
  ck_assert_int_eq(it_sh(&out,
                         "mkdir -p %s/lib && cp %s/tests/drivers/job_driver %s/ && cp %s/lib/libjob_tasks.so %s/lib/ "
                         "&& printf 'code_path: lib/libjob_tasks.so\\nenv_vars:\\n  LD_LIBRARY_PATH: %s/lib\\n' > %s",
                         wd, it_build, wd, it_build, wd, it_build, env),
                   0);
  free(out);
  int rc = it_sh(&out, "%s/bin/rayc job submit --working-dir %s --runtime-env %s -- ./job_driver spread 4 10 0 4",
                 it_build, wd, env);
  ck_assert_msg(rc == 0, "the job failed: %s", out);
  free(out);
  ck_assert_msg(raylet_logged("of job [0-9a-f]+ ready: it loaded pkg_[0-9a-f]+/lib/libjob_tasks\\.so"),
                "the working-dir job's zygote never loaded its library");
  ck_assert_msg(raylet_logged("started C worker .* \\(forked by its job.s zygote\\)"),
                "no worker of the working-dir job came from its job's zygote");
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("job_zygote");
  TCase *tc = tcase_create("job_zygote");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_job_zygote_forks_and_ends);
  tcase_add_test(tc, test_two_jobs_own_code);
  tcase_add_test(tc, test_code_fails_to_load);
  tcase_add_test(tc, test_working_dir_job);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
