/*
 * GCS fault tolerance with a full head node on Redis (issue 6): kill -9 of rayc-gcs and a restart
 * on the same port and Redis prefix loses no actor. A named detached actor and an unnamed owned
 * one keep their workers and their counters, calls to them go on while the GCS is down, the name
 * resolves again, and driver calls made while the GCS is down (rayc_get_actor, rayc_actor_create,
 * from threads) block and then succeed once it is back. Actors that share a worker process are
 * known as such again (killing one leaves its siblings; the worker ends with the last). With the GCS gone for longer than
 * gcs_rpc_reconnect_timeout_ms a GCS call fails with RAYC_EUNAVAILABLE and says so, and so does
 * a call to an actor whose address only the GCS could give.
 *
 * main() starts a redis-server (a Unix socket in a temp dir, no persistence of its own) and the
 * head (`rayc start --head --redis-address`) before check forks. A test restarts the GCS from the
 * command line the killed one had (read from /proc), with --port set to the port it had and the
 * key prefix it used, and records the new pid in <session>/pids/gcs.pid for `rayc stop`.
 */
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>

extern char **environ;

static char redis_dir[64], redis_addr[160];
static pid_t redis_pid;

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the GCS process ---- */

static pid_t gcs_pid(void)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/session_latest/pids/gcs.pid", it_temp);
  FILE *f = fopen(path, "r");
  int pid = 0;
  if (f) {
    if (fscanf(f, "%d", &pid) != 1)
      pid = 0;
    fclose(f);
  }
  return pid;
}

/* The killed GCS's command line, with --port made explicit and the key prefix it used. */
static char cmdline[4096];
static char *gcs_argv[64];

static void gcs_read_cmdline(pid_t pid)
{
  char path[64], port[32];
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  size_t len = fread(cmdline, 1, sizeof(cmdline) - 1, f);
  fclose(f);
  cmdline[len] = '\0';
  snprintf(port, sizeof(port), "%s", strrchr(it_address, ':') + 1);
  static char port_arg[48];
  snprintf(port_arg, sizeof(port_arg), "--port=%s", port);
  int n = 0, prefix = 0;
  for (size_t i = 0; i < len && n < 60; i += strlen(cmdline + i) + 1) {
    char *a = cmdline + i;
    if (strcmp(a, "--port") == 0) { /* "--port" "0": skip both */
      i += strlen(a) + 1;
      continue;
    }
    if (strncmp(a, "--port=", 7) == 0)
      continue;
    prefix |= strncmp(a, "--redis-key-prefix", 18) == 0;
    gcs_argv[n++] = a;
  }
  gcs_argv[n++] = port_arg;
  if (!prefix) { /* the first GCS ran with --port 0: its default prefix was "rayc:0" */
    gcs_argv[n++] = (char *)"--redis-key-prefix";
    gcs_argv[n++] = (char *)"rayc:0";
  }
  gcs_argv[n] = NULL;
}

static void gcs_kill9(void)
{
  pid_t pid = gcs_pid();
  ck_assert_int_gt(pid, 0);
  gcs_read_cmdline(pid);
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  waitpid(pid, NULL, 0); /* our child after a restart; else init reaps it */
  for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)
    usleep(10000);
}

static void gcs_restart(void)
{
  char out[700], pidfile[700], text[32];
  snprintf(out, sizeof(out), "%s/session_latest/logs/gcs-restarted.out", it_temp);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
  pid_t pid;
  ck_assert_int_eq(posix_spawn(&pid, gcs_argv[0], &fa, &at, gcs_argv, environ), 0);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  snprintf(pidfile, sizeof(pidfile), "%s/session_latest/pids/gcs.pid", it_temp);
  snprintf(text, sizeof(text), "%d\n", (int)pid);
  FILE *f = fopen(pidfile, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* ---- actors ---- */

static rayc_actor create(const char *cls, const rayc_actor_opts *o)
{
  rayc_actor a;
  int rc = rayc_actor_create(cls, NULL, 0, o, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create %s: %s", cls, rayc_last_error());
  return a;
}

static int64_t incr(const rayc_actor *a)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, "incr", NULL, 0, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call: %s", rayc_last_error());
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "incr: %s", rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

/* A call made from a thread while the GCS is down. */
typedef struct bg_call {
  pthread_t th;
  int what; /* 0: rayc_get_actor("keeper"), 1: rayc_actor_create(TCounter) */
  volatile int done;
  int rc;
  char err[512];
  rayc_actor out;
} bg_call_t;

static void *bg_main(void *arg)
{
  bg_call_t *b = arg;
  if (b->what == 0)
    b->rc = rayc_get_actor("keeper", "gcs-ft", &b->out);
  else
    b->rc = rayc_actor_create("TCounter", NULL, 0, NULL, &b->out);
  snprintf(b->err, sizeof(b->err), "%s", rayc_last_error());
  b->done = 1;
  return NULL;
}

START_TEST(actors_survive_gcs_kill9)
{
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.name = "keeper";
  o.ns = "gcs-ft";
  o.detached = 1;
  rayc_actor keeper = create("TCounter", &o), plain = create("TCounter", NULL);
  for (int i = 1; i <= 3; i++)
    ck_assert_int_eq(incr(&keeper), i);
  for (int i = 1; i <= 5; i++)
    ck_assert_int_eq(incr(&plain), i);

  gcs_kill9();
  /* calls to live actors go straight to their workers: they carry on without the GCS */
  ck_assert_int_eq(incr(&keeper), 4);
  ck_assert_int_eq(incr(&plain), 6);
  bg_call_t get = {.what = 0}, make = {.what = 1};
  ck_assert_int_eq(pthread_create(&get.th, NULL, bg_main, &get), 0);
  ck_assert_int_eq(pthread_create(&make.th, NULL, bg_main, &make), 0);
  usleep(1500 * 1000);
  ck_assert_msg(!get.done, "rayc_get_actor returned while the GCS was down: %d (%s)", get.rc, get.err);
  ck_assert_msg(!make.done, "rayc_actor_create returned while the GCS was down: %d (%s)", make.rc, make.err);

  int64_t t0 = mono_ms();
  gcs_restart();
  pthread_join(get.th, NULL);
  pthread_join(make.th, NULL);
  printf("calls made while the GCS was down returned %lld ms after its restart\n", (long long)(mono_ms() - t0));
  ck_assert_msg(get.rc == 0, "rayc_get_actor across the restart: %d (%s)", get.rc, get.err);
  ck_assert_mem_eq(get.out.id, keeper.id, RAYC_ACTOR_ID_SIZE);
  ck_assert_msg(make.rc == 0, "rayc_actor_create across the restart: %d (%s)", make.rc, make.err);

  /* state intact: the same workers, the same counters, no restart */
  ck_assert_int_eq(incr(&keeper), 5);
  ck_assert_int_eq(incr(&plain), 7);
  ck_assert_int_eq(incr(&make.out), 1);
  rayc_actor_state st;
  int restarts = -1;
  ck_assert_int_eq(rayc_actor_get_state(&keeper, &st, &restarts), 0);
  ck_assert_int_eq(st, RAYC_ACTOR_ALIVE);
  ck_assert_int_eq(restarts, 0);
  ck_assert_int_eq(rayc_actor_get_state(&plain, &st, &restarts), 0);
  ck_assert_int_eq(st, RAYC_ACTOR_ALIVE);
  ck_assert_int_eq(restarts, 0);
  rayc_actor again;
  ck_assert_int_eq(rayc_get_actor("keeper", "gcs-ft", &again), 0);
  ck_assert_mem_eq(again.id, keeper.id, RAYC_ACTOR_ID_SIZE);
  ck_assert_int_eq(incr(&again), 6);

  /* the restarted GCS still manages them: a kill goes through and the name is freed */
  ck_assert_int_eq(rayc_actor_kill(&keeper, 1), 0);
  for (int i = 0; i < 500; i++) {
    ck_assert_int_eq(rayc_actor_get_state(&keeper, &st, NULL), 0);
    if (st == RAYC_ACTOR_DEAD)
      break;
    usleep(10000);
  }
  ck_assert_int_eq(st, RAYC_ACTOR_DEAD);
  ck_assert_int_eq(rayc_get_actor("keeper", "gcs-ft", &again), RAYC_ENOT_FOUND);
  rayc_shutdown();
}
END_TEST

static int64_t call_pid(const rayc_actor *a)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, "pid", NULL, 0, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call: %s", rayc_last_error());
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "pid: %s", rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

static rayc_actor_state wait_dead(const rayc_actor *a)
{
  rayc_actor_state st = RAYC_ACTOR_ALIVE;
  for (int i = 0; i < 1000 && st != RAYC_ACTOR_DEAD; i++) {
    ck_assert_int_eq(rayc_actor_get_state(a, &st, NULL), 0);
    usleep(10000);
  }
  return st;
}

/* Actors sharing a worker (share_worker): a restarted GCS knows their host again, so killing one
 * leaves the others, and the host ends with its last actor. */
START_TEST(shared_actors_survive_gcs_kill9)
{
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.share_worker = 1;
  rayc_actor a[3];
  for (int i = 0; i < 3; i++) {
    a[i] = create("TCounter", &o);
    ck_assert_int_eq(incr(&a[i]), 1);
  }
  int64_t pid = call_pid(&a[0]);
  ck_assert_int_eq(call_pid(&a[1]), pid);
  ck_assert_int_eq(call_pid(&a[2]), pid);
  gcs_kill9();
  gcs_restart();
  ck_assert_int_eq(rayc_actor_kill(&a[0], 1), 0); /* waits for the GCS to be back */
  ck_assert_int_eq(wait_dead(&a[0]), RAYC_ACTOR_DEAD);
  ck_assert_int_eq(incr(&a[1]), 2);
  ck_assert_int_eq(incr(&a[2]), 2);
  ck_assert_int_eq(call_pid(&a[2]), pid);
  ck_assert_int_eq(rayc_actor_kill(&a[1], 1), 0);
  ck_assert_int_eq(rayc_actor_kill(&a[2], 1), 0);
  char buf[512];
  const char *st = it_proc_stat((long)pid, buf, sizeof(buf));
  for (int i = 0; i < 3000 && st && *st != 'Z'; i++) {
    usleep(10000);
    st = it_proc_stat((long)pid, buf, sizeof(buf));
  }
  ck_assert_msg(!st || *st == 'Z', "the shared worker %ld outlived its last actor after the GCS restart", (long)pid);
  rayc_shutdown();
}
END_TEST

START_TEST(calls_fail_after_the_reconnect_timeout)
{
  enum { WAIT_MS = 2000 };
  rayc_config cfg = {.address = it_address, .code_path = it_code_path, .gcs_rpc_reconnect_timeout_ms = WAIT_MS};
  int rc = rayc_init(&cfg);
  ck_assert_msg(rc == 0, "rayc_init: %s", rayc_last_error());
  /* an actor no node can host: a call to it waits for the GCS to say where it runs */
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  rayc_resource nowhere = {.name = "no_node_has_this", .amount = 1};
  o.resources = &nowhere;
  o.num_resources = 1;
  rayc_actor pending = create("TCounter", &o);
  rayc_ref waiting;
  ck_assert_int_eq(rayc_actor_call(&pending, "incr", NULL, 0, NULL, &waiting), 0);
  gcs_kill9();
  int64_t t0 = mono_ms();
  rayc_actor a;
  rc = rayc_get_actor("anything", NULL, &a);
  int64_t took = mono_ms() - t0;
  printf("rayc_get_actor with the GCS gone failed after %lld ms (wait %d ms): %s\n", (long long)took, WAIT_MS,
         rayc_last_error());
  ck_assert_int_eq(rc, RAYC_EUNAVAILABLE);
  ck_assert_msg(strstr(rayc_last_error(), "gcs_rpc_reconnect_timeout_ms"), "%s", rayc_last_error());
  ck_assert_int_ge(took, WAIT_MS);
  /* the waiting call fails too, once the GCS has been silent for as long */
  rayc_buf b;
  rc = rayc_get(&waiting, 1, 60000, &b);
  ck_assert_msg(rc == RAYC_EUNAVAILABLE, "a call waiting for the GCS: %d (%s)", rc, rayc_last_error());
  ck_assert_msg(strstr(rayc_last_error(), "gcs_rpc_reconnect_timeout_ms"), "%s", rayc_last_error());
  rayc_ref_release(&waiting);
  gcs_restart(); /* for the driver's own shutdown and `rayc stop` */
  rayc_shutdown();
}
END_TEST

static int redis_start(void)
{
  snprintf(redis_dir, sizeof(redis_dir), "/tmp/rayc-gcsft-XXXXXX");
  if (!mkdtemp(redis_dir))
    return -1;
  char sock[128], out[128];
  snprintf(sock, sizeof(sock), "%s/redis.sock", redis_dir);
  snprintf(out, sizeof(out), "%s/redis.out", redis_dir);
  snprintf(redis_addr, sizeof(redis_addr), "unix:%s", sock);
  char *argv[] = {(char *)"redis-server",
                  (char *)"--port",
                  (char *)"0",
                  (char *)"--unixsocket",
                  sock,
                  (char *)"--dir",
                  redis_dir,
                  (char *)"--save",
                  (char *)"",
                  (char *)"--appendonly",
                  (char *)"no",
                  NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawnp(&redis_pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
    usleep(10 * 1000);
  return access(sock, F_OK);
}

static void redis_stop(void)
{
  char cmd[200];
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", redis_dir);
  it_run(cmd);
}

int main(void)
{
  if (it_run("command -v redis-server > /dev/null 2>&1") != 0) {
    printf("redis-server not installed: skipping\n");
    return 0;
  }
  if (redis_start() != 0) {
    printf("could not start redis-server\n");
    return 1;
  }
  char flags[400];
  snprintf(flags, sizeof(flags), "--num-cpus 4 --object-store-memory 128M --redis-address %s", redis_addr);
  if (it_start("libtest_tasks.so", flags) != 0) {
    printf("could not start the head node\n");
    redis_stop();
    return 1;
  }
  Suite *s = suite_create("gcs_restart");
  TCase *tc = tcase_create("gcs_restart");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, actors_survive_gcs_kill9);
  tcase_add_test(tc, shared_actors_survive_gcs_kill9);
  tcase_add_test(tc, calls_fail_after_the_reconnect_timeout);
  suite_add_tcase(s, tc);
  int rc = it_finish(s);
  redis_stop();
  return rc;
}
