/*
 * Restarting the GCS of a node started by `rayc start` (issue 13), as an operator would:
 *   - `rayc start --restart-gcs` refuses while the GCS runs; after a kill -9 it starts the GCS
 *     again with its first command line, at the address it had (also after --port 0), in the same
 *     session, prints that it restarted, and `rayc stop` stops the new GCS with the rest;
 *   - with a password-protected Redis given by --redis-password-file, the password never appears
 *     on a command line, and the restarted GCS reloads its tables (the node is alive again);
 *   - `rayc start --help` lists --config once, and a head's start report says how to restart it.
 * Each test starts its own head (and redis-server) in its own temp dir.
 */
#include "itest.h"
#include "itest_sh.h"

#include <fcntl.h>
#include <signal.h>

static char tmp[128], bin[1100];

static void setup(void)
{
  it_find_build();
  snprintf(bin, sizeof(bin), "%s/bin", it_build);
  snprintf(tmp, sizeof(tmp), "/tmp/rayc-respawn-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
  it_sh(NULL, "%s/rayc stop --all --force --temp-dir %s; rm -rf %s", bin, tmp, tmp);
}

static int pid_runs(pid_t pid)
{
  char buf[512];
  const char *st = it_proc_stat((long)pid, buf, sizeof(buf));
  return st && st[0] != 'Z' && st[0] != 'X'; /* a zombie waiting for its reaper counts as gone */
}

/* The session's file (first line), e.g. "pids/gcs.pid"; "" when absent. */
static void session_line(const char *name, char *buf, size_t len)
{
  char *path = xasprintf("%s/session_latest/%s", tmp, name);
  FILE *f = fopen(path, "r");
  buf[0] = '\0';
  if (f && !fgets(buf, (int)len, f))
    buf[0] = '\0';
  if (f)
    fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  free(path);
}

static pid_t gcs_pid(void)
{
  char text[32];
  session_line("pids/gcs.pid", text, sizeof(text));
  return (pid_t)atoi(text);
}

static void kill9(pid_t pid)
{
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  for (int i = 0; i < 1000 && pid_runs(pid); i++)
    usleep(10 * 1000);
  ck_assert_msg(!pid_runs(pid), "pid %d still runs after SIGKILL", (int)pid);
}

/* Runs `rayc status` until its output has want, for up to 60 s; returns the last output. */
static char *status_until(const char *want)
{
  char *out = NULL;
  for (int i = 0; i < 300; i++) {
    free(out);
    it_sh(&out, "%s/rayc status --temp-dir %s", bin, tmp);
    if (strstr(out, want))
      break;
    usleep(200 * 1000);
  }
  return out;
}

/* Restarts the GCS after a kill -9 and checks the restart; returns the new pid. */
static pid_t restart_after_kill(void)
{
  char *out = NULL, before[128], after[128];
  pid_t old = gcs_pid();
  session_line("address", before, sizeof(before));
  ck_assert_int_gt(old, 0);
  int rc = it_sh(&out, "%s/rayc start --restart-gcs --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 1 && strstr(out, "is running"), "a restart while the GCS runs (rc %d): %s", rc, out);
  free(out);
  kill9(old);
  rc = it_sh(&out, "%s/rayc start --restart-gcs --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0 && strstr(out, "restarted the GCS") && strstr(out, before), "restart (rc %d): %s", rc, out);
  free(out);
  pid_t pid = gcs_pid();
  session_line("address", after, sizeof(after));
  ck_assert_msg(pid > 0 && pid != old && pid_runs(pid), "new GCS pid %d (old %d)", (int)pid, (int)old);
  ck_assert_str_eq(before, after);
  return pid;
}

START_TEST(restart_gcs_in_memory)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/rayc start --head --port 0 --num-cpus 1 --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0, "start: %s", out);
  ck_assert_msg(strstr(out, "rayc start --restart-gcs --temp-dir"), "the report does not say how to restart: %s", out);
  free(out);
  pid_t pid = restart_after_kill();
  out = status_until("GCS:"); /* the restarted GCS answers at the old address */
  ck_assert_msg(strstr(out, "GCS:"), "rayc status after the restart: %s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc stop --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0, "stop: %s", out);
  free(out);
  for (int i = 0; i < 500 && pid_runs(pid); i++)
    usleep(10 * 1000);
  ck_assert_msg(!pid_runs(pid), "rayc stop left the restarted GCS (pid %d) running", (int)pid);
  ck_assert_int_eq(it_count_procs(tmp), 0);
}
END_TEST

/* A redis-server child on a Unix socket in tmp, requiring password; its pid. */
static pid_t redis_start(const char *password, char *addr, size_t len)
{
  char sock[200], conf[200];
  snprintf(sock, sizeof(sock), "%s/redis.sock", tmp);
  snprintf(conf, sizeof(conf), "%s/redis.out", tmp);
  snprintf(addr, len, "unix:%s", sock);
  char *argv[] = {(char *)"redis-server",
                  (char *)"--port",
                  (char *)"0",
                  (char *)"--unixsocket",
                  sock,
                  (char *)"--dir",
                  tmp,
                  (char *)"--save",
                  (char *)"",
                  (char *)"--appendonly",
                  (char *)"no",
                  (char *)"--requirepass",
                  (char *)password,
                  NULL};
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(conf, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
    usleep(10 * 1000);
  ck_assert_msg(access(sock, F_OK) == 0, "redis-server did not start");
  return pid;
}

START_TEST(restart_gcs_redis_password)
{
  if (it_run("command -v redis-server >/dev/null 2>&1") != 0) {
    printf("SKIPPED: redis-server is not installed\n");
    return;
  }
  static const char password[] = "s3cret-redis-pw";
  char addr[256], *out = NULL;
  pid_t redis = redis_start(password, addr, sizeof(addr));
  int rc = it_sh(&out,
                 "printf '%s\\n' > %s/pw && chmod 600 %s/pw && %s/rayc start --head --port 0 --num-cpus 1 "
                 "--temp-dir %s --redis-address %s --redis-password-file %s/pw",
                 password, tmp, tmp, bin, tmp, addr, tmp);
  ck_assert_msg(rc == 0, "start with a Redis password: %s", out);
  free(out);
  char *st = status_until("(1 node alive");
  ck_assert_msg(strstr(st, "(1 node alive"), "%s", st);
  free(st);
  rc = it_sh(&out, "cat /proc/%d/cmdline | tr '\\0' ' '; grep -l -- '%s' %s/session_latest/gcs.args || true",
             (int)gcs_pid(), password, tmp);
  ck_assert_msg(!strstr(out, password), "the password is on a command line: %s", out);
  free(out);
  restart_after_kill();
  st = status_until("(1 node alive"); /* reloaded from Redis: the node is still known and alive */
  ck_assert_msg(strstr(st, "(1 node alive"), "after the restart: %s", st);
  free(st);
  it_sh(NULL, "%s/rayc stop --temp-dir %s", bin, tmp);
  kill(redis, SIGKILL);
  waitpid(redis, NULL, 0);
}
END_TEST

START_TEST(start_help_lists_config_once)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/rayc start --help | grep -c -e '--config'", bin);
  ck_assert_msg(rc == 0 && atoi(out) == 1, "--config listed %s times", out);
  free(out);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("gcs_respawn");
  TCase *tc = tcase_create("respawn");
  tcase_set_timeout(tc, 180);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, restart_gcs_in_memory);
  tcase_add_test(tc, restart_gcs_redis_password);
  tcase_add_test(tc, start_help_lists_config_once);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
