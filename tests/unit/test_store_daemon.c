/*
 * Tests of rayc-store as a separate process, through store_client and through raw frames.
 *
 * One daemon (80 MiB; the minimum is 75 MiB) serves the "store" test case: it is spawned with
 * posix_spawn from $RAYC_BUILD/bin/rayc-store (else <dir of this binary>/../bin/rayc-store) and is
 * ready when it sends READY=1 to the NOTIFY_SOCKET this test binds. Other clients are forked
 * children (forked before this process uses gRPC, so fork is safe); they report through their exit
 * status. Each test cleans up its objects and checks that the store's bytes in use return to where
 * they were. The "spill" and "pull" cases start their own daemons: 3x the capacity put through a
 * store (spilled, then every byte checked on restore), and objects pulled between two stores over
 * loopback (merging, failover, eviction of secondary copies, spilled sources, FreeObjects).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_client.h"
#include "object-store/store_server_int.h"

extern char **environ;

typedef struct daemon {
  char dir[64];
  char sock[96];
  pid_t pid;
} daemon_t;

static daemon_t g_store;   /* the "store" case's daemon */
static int g_store_failed; /* set by the teardown: main() fails the run */

static char *store_binary(void)
{
  const char *b = getenv("RAYC_BUILD");
  if (b && b[0])
    return xasprintf("%s/bin/rayc-store", b);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ck_assert_int_gt(n, 0);
  self[n] = '\0';
  return xasprintf("%s/../bin/rayc-store", dirname(self));
}

/* The environment with NOTIFY_SOCKET replaced; returns new (free the array and the last entry). */
static char **env_with_notify(const char *notify_path, char **extra)
{
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = xcalloc(n + 2, sizeof(*env));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
      env[k++] = environ[i];
  *extra = xasprintf("NOTIFY_SOCKET=%s", notify_path);
  env[k] = *extra;
  return env;
}

static int notify_bind(const char *path)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(s, 0);
  ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  return s;
}

/* Waits up to 5 s for a datagram containing READY=1. */
static int notify_wait_ready(int s)
{
  char buf[256];
  struct pollfd p = {.fd = s, .events = POLLIN};
  while (poll(&p, 1, 5000) == 1) {
    ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
      return 0;
    buf[n] = '\0';
    if (strstr(buf, "READY=1"))
      return 1;
  }
  return 0;
}

static const char *g_extra_args[8]; /* more flags for the next daemon_start (NULL-terminated) */

static pid_t spawn_store(daemon_t *d, const char *mem, const char *notify_path)
{
  char *bin = store_binary(), *extra;
  char **env = env_with_notify(notify_path, &extra);
  char *argv[16] = {bin, xstrdup("--session-dir"), xstrdup(d->dir), xstrdup("--object-store-memory"), xstrdup(mem),
                    NULL};
  for (int i = 0, k = 5; g_extra_args[i] && k < 15; i++)
    argv[k++] = xstrdup(g_extra_args[i]);
  char *err_path = xasprintf("%s/stderr", d->dir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, bin, &fa, NULL, argv, env);
  ck_assert_msg(rc == 0, "cannot spawn %s: %s", bin, strerror(rc));
  posix_spawn_file_actions_destroy(&fa);
  free(err_path);
  for (int i = 0; argv[i]; i++)
    free(argv[i]);
  free(extra);
  free(env);
  return pid;
}

/* Makes a session dir and starts a store of mem bytes; waits for READY=1 unless expect_fail. */
static void daemon_start(daemon_t *d, const char *mem, int expect_ready)
{
  snprintf(d->dir, sizeof(d->dir), "/tmp/rayc-store-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d->dir));
  snprintf(d->sock, sizeof(d->sock), "%s/sockets/store", d->dir);
  char *npath = xasprintf("%s/notify", d->dir);
  int ns = notify_bind(npath);
  d->pid = spawn_store(d, mem, npath);
  if (expect_ready)
    ck_assert_msg(notify_wait_ready(ns), "rayc-store did not send READY=1");
  close(ns);
  free(npath);
}

/* Returns the daemon's stderr (new; free()), or an empty string. */
static char *daemon_stderr(const daemon_t *d)
{
  char *path = xasprintf("%s/stderr", d->dir), *text = xcalloc(1, 8192);
  FILE *f = fopen(path, "r");
  if (f) {
    size_t n = fread(text, 1, 8191, f);
    text[n] = '\0';
    fclose(f);
  }
  free(path);
  return text;
}

/* Waits for the daemon (signalling it first when sig is set; pid -1: already reaped) and removes
 * its session dir. Returns the wait status, or -1. */
static int daemon_stop(daemon_t *d, int sig)
{
  int st = -1;
  if (d->pid > 0) {
    if (sig)
      kill(d->pid, sig);
    waitpid(d->pid, &st, 0);
    d->pid = -1;
  }
  char *cmd = xasprintf("rm -rf '%s'", d->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", d->dir);
  free(cmd);
  return st;
}

static void store_setup(void)
{
  daemon_start(&g_store, "80M", 1);
}

/* 1 when the daemon's log has an error line (the store logs its own bugs as errors). */
static int log_has_errors(const daemon_t *d)
{
  char *path = xasprintf("%s/logs/store.log", d->dir), line[2048];
  FILE *f = fopen(path, "r");
  int bad = !f;
  while (f && fgets(line, sizeof(line), f))
    if (strstr(line, " E rayc-store[")) {
      fprintf(stderr, "store log: %s", line);
      bad = 1;
    }
  if (f)
    fclose(f);
  free(path);
  return bad;
}

/* Stops d with SIGTERM; returns 1 (having said why) when it did not exit 0 or logged errors. */
static int daemon_stop_checked(daemon_t *d)
{
  int bad = 0;
  kill(d->pid, SIGTERM);
  int st = -1;
  waitpid(d->pid, &st, 0);
  d->pid = -1;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char *err = daemon_stderr(d);
    fprintf(stderr, "rayc-store did not exit 0 on SIGTERM (status %d); its stderr:\n%s\n", st, err);
    free(err);
    bad = 1;
  }
  bad |= log_has_errors(d);
  daemon_stop(d, 0);
  return bad;
}

static void store_teardown(void)
{
  g_store_failed |= daemon_stop_checked(&g_store);
}

static store_client_t *connect_store(void)
{
  store_client_t *c = NULL;
  int rc = store_client_connect(g_store.sock, &c);
  ck_assert_msg(rc == 0, "connect: %s: %s", rayc_strerror(rc), store_client_last_error());
  return c;
}

static store_stats_t stats_of(store_client_t *c)
{
  store_stats_t st;
  ck_assert_int_eq(store_client_stats(c, &st), 0);
  return st;
}

/* Polls until the store's bytes in use equal used (disconnects are processed asynchronously). */
static void wait_used(store_client_t *c, uint64_t used)
{
  store_stats_t st = stats_of(c);
  for (int i = 0; i < 300 && st.bytes_used != used; i++) {
    usleep(10000);
    st = stats_of(c);
  }
  ck_assert_uint_eq(st.bytes_used, used);
}

/* Runs fn(arg) in a forked child; returns its exit status (0: passed). */
static int run_child(int (*fn)(void *), void *arg)
{
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(fn(arg));
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static pid_t fork_child(int (*fn)(void *), void *arg)
{
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(fn(arg));
  return pid;
}

static uint8_t pattern_byte(size_t i)
{
  return (uint8_t)(i * 131 + (i >> 12));
}

enum { BIG = 2 << 20 };

/* ---- zero-copy put and get between two processes ---- */

static int reader_child(void *arg)
{
  const uint8_t *id = arg;
  store_client_t *c;
  store_object_t o;
  uint64_t size;
  if (store_client_connect(g_store.sock, &c) != 0)
    return 1;
  if (store_client_get(c, id, 1, 1000, &o) != 0 || !o.found || o.data_size != BIG)
    return 2;
  const uint8_t *base = store_client_region(c, &size);
  if (o.data < base || o.data + o.data_size > base + size)
    return 3; /* not a pointer into the shared mapping */
  for (size_t i = 0; i < BIG; i++)
    if (o.data[i] != pattern_byte(i))
      return 4;
  if (store_client_release(c, id) != 0)
    return 5;
  store_client_destroy(c);
  return 0;
}

START_TEST(test_zero_copy_between_processes)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  uint8_t id[ID_OBJECT_SIZE], *buf;
  id_random(id, sizeof(id));
  ck_assert_int_eq(store_client_create(c, id, BIG, 0, "owner", 5, 0, &buf), 0);
  for (size_t i = 0; i < BIG; i++)
    buf[i] = pattern_byte(i);
  ck_assert_int_eq(store_client_contains(c, id), 0); /* not sealed yet */
  ck_assert_int_eq(store_client_seal(c, id), 0);
  ck_assert_int_eq(store_client_contains(c, id), 1);
  ck_assert_int_eq(store_client_release(c, id), 0);
  ck_assert_int_eq(run_child(reader_child, id), 0);
  ck_assert_uint_eq(stats_of(c).num_objects, 1);
  ck_assert_int_eq(store_client_delete(c, id, 1), 0);
  ck_assert_uint_eq(stats_of(c).bytes_used, base);
  ck_assert_int_eq(store_client_contains(c, id), 0);
  store_client_destroy(c);
}
END_TEST

/* ---- get: timeout on a missing object; waiting for a later seal ---- */

START_TEST(test_get_missing_times_out)
{
  store_client_t *c = connect_store();
  uint8_t id[ID_OBJECT_SIZE];
  store_object_t o;
  id_random(id, sizeof(id));
  int64_t t0 = now_ms();
  ck_assert_int_eq(store_client_get(c, id, 1, 300, &o), 0);
  int64_t dt = now_ms() - t0;
  ck_assert_int_eq(o.found, 0);
  ck_assert_int_ge(dt, 290);
  ck_assert_int_lt(dt, 2000);
  ck_assert_int_eq(store_client_get(c, id, 1, 0, &o), 0); /* no wait */
  ck_assert_int_eq(o.found, 0);
  store_client_destroy(c);
}
END_TEST

static int late_writer_child(void *arg)
{
  store_client_t *c;
  usleep(200 * 1000);
  if (store_client_connect(g_store.sock, &c) != 0)
    return 1;
  if (store_client_put(c, arg, "hello", 5, NULL, 0, 0) != 0)
    return 2;
  store_client_destroy(c);
  return 0;
}

START_TEST(test_get_waits_for_seal)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  uint8_t ids[2 * ID_OBJECT_SIZE];
  store_object_t o[2];
  id_random(ids, sizeof(ids));
  ck_assert_int_eq(store_client_put(c, ids + ID_OBJECT_SIZE, "x", 1, NULL, 0, 0), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(late_writer_child(ids));
  int64_t t0 = now_ms();
  ck_assert_int_eq(store_client_get(c, ids, 2, 5000, o), 0);
  ck_assert_int_ge(now_ms() - t0, 150);
  ck_assert_int_eq(o[0].found, 1);
  ck_assert_int_eq(o[1].found, 1);
  ck_assert_mem_eq(o[0].data, "hello", 5);
  ck_assert_uint_eq(o[0].data_size, 5);
  ck_assert_uint_eq(o[1].data[0], 'x');
  int st;
  waitpid(pid, &st, 0);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ck_assert_int_eq(store_client_delete(c, ids, 2), 0);
  ck_assert_uint_gt(stats_of(c).bytes_used, base); /* still referenced */
  ck_assert_int_eq(store_client_release(c, ids), 0);
  ck_assert_int_eq(store_client_release(c, ids + ID_OBJECT_SIZE), 0);
  ck_assert_uint_eq(stats_of(c).bytes_used, base);
  store_client_destroy(c);
}
END_TEST

/* ---- create errors ---- */

START_TEST(test_create_errors)
{
  store_client_t *c = connect_store();
  store_stats_t st0 = stats_of(c);
  uint8_t id[ID_OBJECT_SIZE], *buf;
  id_random(id, sizeof(id));
  ck_assert_uint_eq(st0.capacity, 80 << 20);
  ck_assert_int_eq(store_client_put(c, id, "abc", 3, NULL, 0, 0), 0);
  ck_assert_int_eq(store_client_create(c, id, 10, 0, NULL, 0, 0, &buf), RAYC_EALREADY_EXISTS);
  ck_assert_int_eq(store_client_create(c, id, 10, 0, NULL, 0, 1000, &buf), RAYC_EALREADY_EXISTS);
  uint8_t id2[ID_OBJECT_SIZE];
  id_random(id2, sizeof(id2));
  ck_assert_int_eq(store_client_create(c, id2, 100 << 20, 0, NULL, 0, 0, &buf), RAYC_EOUT_OF_MEMORY);
  const char *msg = store_client_last_error();
  ck_assert_msg(strstr(msg, "104857600") && strstr(msg, "83886080"), "message: %s", msg);
  int64_t t0 = now_ms(); /* can never fit: fails at once despite the timeout */
  ck_assert_int_eq(store_client_create(c, id2, 100 << 20, 0, NULL, 0, 3000, &buf), RAYC_EOUT_OF_MEMORY);
  ck_assert_int_lt(now_ms() - t0, 1000);
  ck_assert_int_eq(store_client_create(c, id2, UINT64_MAX, 100, NULL, 0, 0, &buf), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_client_seal(c, id2), RAYC_ENOT_FOUND);
  ck_assert_int_eq(store_client_seal(c, id), RAYC_EINVALID_ARGUMENT);    /* already sealed */
  ck_assert_int_eq(store_client_release(c, id), RAYC_EINVALID_ARGUMENT); /* holds no reference */
  ck_assert_int_eq(store_client_abort(c, id), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_client_create(c, id2, 1000, 24, NULL, 0, 0, &buf), 0);
  ck_assert_int_eq(store_client_abort(c, id2), 0);
  ck_assert_int_eq(store_client_delete(c, id, 1), 0);
  ck_assert_uint_eq(stats_of(c).bytes_used, st0.bytes_used);
  store_client_destroy(c);
}
END_TEST

/* ---- creates that wait for room ---- */

typedef struct release_later {
  store_client_t *c;
  const uint8_t *id;
  int rc;
} release_later_t;

static void *release_later_thread(void *p)
{
  release_later_t *r = p;
  usleep(200 * 1000);
  r->rc = store_client_release(r->c, r->id);
  if (r->rc == 0)
    r->rc = store_client_delete(r->c, r->id, 1);
  return NULL;
}

/* A referenced object can be neither evicted nor spilled away: a create waits, then fails with
 * OUT_OF_MEMORY; once the reference goes and the owner deletes it, a waiting create proceeds. */
START_TEST(test_create_waits_for_room)
{
  store_client_t *c = connect_store(), *holder = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  uint8_t a[ID_OBJECT_SIZE], b[ID_OBJECT_SIZE], *buf;
  id_random(a, sizeof(a));
  id_random(b, sizeof(b));
  ck_assert_int_eq(store_client_create(holder, a, 50 << 20, 0, NULL, 0, 0, &buf), 0);
  ck_assert_int_eq(store_client_seal(holder, a), 0); /* holder keeps its reference */
  int64_t t0 = now_ms();
  ck_assert_int_eq(store_client_create(c, b, 50 << 20, 0, NULL, 0, 200, &buf), RAYC_EOUT_OF_MEMORY);
  ck_assert_int_ge(now_ms() - t0, 190);
  const char *msg = store_client_last_error();
  ck_assert_msg(strstr(msg, "waiting") && strstr(msg, "52428800"), "message: %s", msg);
  release_later_t r = {holder, a, -1};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, release_later_thread, &r), 0);
  ck_assert_int_eq(store_client_create(c, b, 50 << 20, 0, NULL, 0, 3000, &buf), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(r.rc, 0);
  ck_assert_int_eq(store_client_abort(c, b), 0);
  ck_assert_uint_eq(stats_of(c).bytes_used, base);
  store_client_destroy(holder);
  store_client_destroy(c);
}
END_TEST

static int big_create_child(void *arg)
{
  store_client_t *c;
  uint8_t id[ID_OBJECT_SIZE], *buf;
  id_random(id, sizeof(id));
  if (store_client_connect(g_store.sock, &c) != 0)
    return 1;
  int rc = store_client_create(c, id, 50 << 20, 0, NULL, 0, *(int *)arg, &buf);
  store_client_destroy(c);
  return rc == RAYC_EOUT_OF_MEMORY ? 0 : 2;
}

START_TEST(test_parked_creates_keep_order)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  uint8_t a[ID_OBJECT_SIZE], small[ID_OBJECT_SIZE], *buf;
  id_random(a, sizeof(a));
  id_random(small, sizeof(small));
  ck_assert_int_eq(store_client_create(c, a, 50 << 20, 0, NULL, 0, 0, &buf), 0);
  int wait_ms = 300;
  pid_t pid = fork_child(big_create_child, &wait_ms); /* parks at the head of the queue */
  usleep(100 * 1000);
  int64_t t0 = now_ms(); /* fits now, but queues behind the big one until it gives up */
  ck_assert_int_eq(store_client_create(c, small, 1 << 20, 0, NULL, 0, 3000, &buf), 0);
  int64_t dt = now_ms() - t0;
  ck_assert_int_ge(dt, 100);
  ck_assert_int_lt(dt, 1500);
  int st;
  waitpid(pid, &st, 0);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ck_assert_int_eq(store_client_abort(c, small), 0);
  ck_assert_int_eq(store_client_abort(c, a), 0);
  ck_assert_uint_eq(stats_of(c).bytes_used, base);
  store_client_destroy(c);
}
END_TEST

/* ---- a client killed mid-create, and one that exits holding references ---- */

static int creator_child(void *arg)
{
  int *pipefd = arg;
  store_client_t *c;
  uint8_t id[ID_OBJECT_SIZE], *buf;
  id_random(id, sizeof(id));
  if (store_client_connect(g_store.sock, &c) != 0 || store_client_create(c, id, 1 << 20, 0, NULL, 0, 0, &buf))
    return 1;
  memset(buf, 7, 1 << 20);
  if (write(pipefd[1], "c", 1) != 1)
    return 2;
  pause(); /* killed here, unsealed */
  return 3;
}

START_TEST(test_killed_creator_frees_memory)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  int pipefd[2];
  char ch;
  ck_assert_int_eq(pipe(pipefd), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(creator_child(pipefd));
  ck_assert_int_eq(read(pipefd[0], &ch, 1), 1);
  ck_assert_uint_eq(stats_of(c).bytes_used, base + (1 << 20));
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  wait_used(c, base);
  close(pipefd[0]);
  close(pipefd[1]);
  store_client_destroy(c);
}
END_TEST

static int holder_child(void *arg)
{
  store_client_t *c;
  store_object_t o;
  if (store_client_connect(g_store.sock, &c) != 0)
    return 1;
  if (store_client_get(c, arg, 1, 0, &o) != 0 || !o.found)
    return 2;
  if (store_client_delete(c, arg, 1) != 0 || store_client_contains(c, arg) != 0)
    return 3;
  return 0; /* exits holding its reference: the store drops it on disconnect */
}

START_TEST(test_disconnect_releases_references)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  uint8_t id[ID_OBJECT_SIZE];
  id_random(id, sizeof(id));
  ck_assert_int_eq(store_client_put(c, id, "data", 4, NULL, 0, 0), 0);
  ck_assert_int_eq(run_child(holder_child, id), 0);
  wait_used(c, base);
  store_client_destroy(c);
}
END_TEST

/* ---- one client shared by threads ---- */

typedef struct thread_arg {
  store_client_t *c;
  int n, failures;
} thread_arg_t;

static void *put_get_thread(void *p)
{
  thread_arg_t *a = p;
  for (int i = 0; i < 50; i++) {
    uint8_t id[ID_OBJECT_SIZE];
    char val[32];
    store_object_t o;
    id_random(id, sizeof(id));
    int len = snprintf(val, sizeof(val), "thread %d item %d", a->n, i);
    if (store_client_put(a->c, id, val, (size_t)len, NULL, 0, 0) != 0 || store_client_get(a->c, id, 1, 0, &o) != 0 ||
        !o.found || o.data_size != (uint64_t)len || memcmp(o.data, val, (size_t)len) != 0 ||
        store_client_release(a->c, id) != 0 || store_client_delete(a->c, id, 1) != 0)
      a->failures++;
  }
  return NULL;
}

START_TEST(test_client_shared_by_threads)
{
  enum { T = 4 };
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  pthread_t th[T];
  thread_arg_t args[T];
  for (int i = 0; i < T; i++) {
    args[i] = (thread_arg_t){c, i, 0};
    ck_assert_int_eq(pthread_create(&th[i], NULL, put_get_thread, &args[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(args[i].failures, 0);
  }
  ck_assert_uint_eq(stats_of(c).bytes_used, base);
  store_client_destroy(c);
}
END_TEST

/* ---- malformed input ---- */

static int raw_connect(void)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", g_store.sock);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(s, 0);
  ck_assert_int_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
  struct timeval tv = {.tv_sec = 3};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return s;
}

/* 1 when the store closed s (EOF or reset) within the receive timeout. */
static int raw_closed(int s)
{
  char buf[64];
  ssize_t n;
  while ((n = recv(s, buf, sizeof(buf), 0)) > 0)
    ;
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Sends m on a fresh connection and returns the reply (new), with the seq checked. */
static Rayc__LocalMessage *raw_call(Rayc__LocalMessage *m)
{
  int s = raw_connect();
  ProtobufCMessage *r = NULL;
  m->seq = 77;
  ck_assert_int_eq(frame_send_msg(s, &m->base, -1), 0);
  ck_assert_int_eq(frame_recv_msg(s, &rayc__local_message__descriptor, &r, NULL), 0);
  close(s);
  ck_assert_uint_eq(((Rayc__LocalMessage *)r)->seq, 77);
  return (Rayc__LocalMessage *)r;
}

static int reply_code(Rayc__LocalMessage *m)
{
  Rayc__LocalMessage *r = raw_call(m);
  int code = r->status ? r->status->code : 0;
  pb_free(r);
  return code;
}

START_TEST(test_malformed_frames)
{
  static const uint8_t garbage[] = {8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t huge[] = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3};
  int s = raw_connect();
  ck_assert_int_eq(write(s, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
  ck_assert(raw_closed(s));
  close(s);
  s = raw_connect();
  ck_assert_int_eq(write(s, huge, sizeof(huge)), (ssize_t)sizeof(huge));
  ck_assert(raw_closed(s));
  close(s);
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  ck_assert_int_eq(reply_code(&m), RAYC_EPROTOCOL); /* no body */
  Rayc__RegisterClientRequest rw = RAYC__REGISTER_CLIENT_REQUEST__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_REGISTER_WORKER;
  m.register_worker = &rw;
  ck_assert_int_eq(reply_code(&m), RAYC_EUNIMPLEMENTED); /* a body the store does not serve */
  Rayc__StoreSealRequest seal = RAYC__STORE_SEAL_REQUEST__INIT;
  seal.object_id = pb_bytes("short", 5);
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_SEAL;
  m.store_seal = &seal;
  ck_assert_int_eq(reply_code(&m), RAYC_EINVALID_ARGUMENT); /* wrong id length */
  store_client_t *c = connect_store();                      /* the store still serves others */
  ck_assert_uint_eq(stats_of(c).capacity, 80 << 20);
  store_client_destroy(c);
}
END_TEST

START_TEST(test_malformed_requests)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  Rayc__StoreCreateRequest cr = RAYC__STORE_CREATE_REQUEST__INIT;
  uint8_t id[ID_OBJECT_SIZE];
  id_random(id, sizeof(id));
  cr.object_id = pb_bytes(id, sizeof(id));
  cr.data_size = UINT64_MAX;
  cr.metadata_size = UINT64_MAX;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE;
  m.store_create = &cr;
  ck_assert_int_eq(reply_code(&m), RAYC_EINVALID_ARGUMENT); /* sizes overflow */
  enum { N = 70000 };
  ProtobufCBinaryData *ids = xcalloc(N, sizeof(*ids));
  for (int i = 0; i < N; i++)
    ids[i] = pb_bytes(id, sizeof(id));
  Rayc__StoreGetRequest gr = RAYC__STORE_GET_REQUEST__INIT;
  gr.n_object_ids = N;
  gr.object_ids = ids;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_GET;
  m.store_get = &gr;
  ck_assert_int_eq(reply_code(&m), RAYC_EINVALID_ARGUMENT); /* too many ids */
  free(ids);
  Rayc__StoreCreateReply bogus = RAYC__STORE_CREATE_REPLY__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE_REPLY;
  m.store_create_reply = &bogus;
  ck_assert_int_eq(reply_code(&m), RAYC_EUNIMPLEMENTED); /* a reply sent as a request */
  store_client_t *c = connect_store();
  ck_assert_int_eq(store_client_contains(c, id), 0);
  store_client_destroy(c);
}
END_TEST

/* Sends one frame of payload (len bytes) on a fresh connection, half-closes, and drains until the
 * store closes it: whatever the bytes are, the store must answer or hang up, never hang. */
static void raw_send_and_drain(const void *payload, size_t len)
{
  int s = raw_connect();
  uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
  ck_assert_int_eq(write(s, hdr, 4), 4);
  if (len)
    ck_assert_int_eq(write(s, payload, len), (ssize_t)len);
  shutdown(s, SHUT_WR);
  ck_assert(raw_closed(s));
  close(s);
}

/* A packed create request, as a seed for mutation; returns new (free()). */
static uint8_t *packed_create(size_t *len)
{
  uint8_t id[ID_OBJECT_SIZE];
  id_random(id, sizeof(id));
  Rayc__StoreCreateRequest cr = RAYC__STORE_CREATE_REQUEST__INIT;
  cr.object_id = pb_bytes(id, sizeof(id));
  cr.data_size = 4096;
  cr.owner = pb_bytes("owner", 5);
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.seq = 5;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE;
  m.store_create = &cr;
  *len = protobuf_c_message_get_packed_size(&m.base);
  uint8_t *buf = xmalloc(*len);
  protobuf_c_message_pack(&m.base, buf);
  return buf;
}

START_TEST(test_random_and_mutated_frames)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  size_t seed_len;
  uint8_t *seed = packed_create(&seed_len), buf[96];
  srand(4242);
  for (int i = 0; i < 300; i++) {
    size_t len = (size_t)(rand() % (int)sizeof(buf));
    for (size_t k = 0; k < len; k++)
      buf[k] = (uint8_t)rand();
    raw_send_and_drain(buf, len);
    memcpy(buf, seed, seed_len);
    for (int k = 0; k < 3; k++)
      buf[rand() % (int)seed_len] = (uint8_t)rand();
    raw_send_and_drain(buf, seed_len - (size_t)(rand() % 4));
  }
  free(seed);
  wait_used(c, base); /* creates that slipped through were aborted on disconnect */
  store_client_destroy(c);
}
END_TEST

/* ---- parked requests of clients that die ---- */

static int blocked_get_child(void *arg)
{
  store_client_t *c;
  store_object_t o;
  if (store_client_connect(g_store.sock, &c) != 0)
    return 1;
  store_client_get(c, arg, 1, -1, &o); /* waits until killed */
  return 2;
}

static int blocked_create_child(void *arg)
{
  store_client_t *c;
  uint8_t id[ID_OBJECT_SIZE], *buf;
  (void)arg;
  id_random(id, sizeof(id));
  if (store_client_connect(g_store.sock, &c) != 0)
    return 1;
  store_client_create(c, id, 50 << 20, 0, NULL, 0, -1, &buf); /* waits for room until killed */
  return 2;
}

START_TEST(test_dead_clients_parked_requests)
{
  store_client_t *c = connect_store();
  uint64_t base = stats_of(c).bytes_used;
  uint8_t a[ID_OBJECT_SIZE], missing[ID_OBJECT_SIZE], *buf;
  id_random(a, sizeof(a));
  id_random(missing, sizeof(missing));
  ck_assert_int_eq(store_client_create(c, a, 50 << 20, 0, NULL, 0, 0, &buf), 0);
  pid_t g = fork_child(blocked_get_child, missing), k = fork_child(blocked_create_child, NULL);
  usleep(150 * 1000); /* both are parked in the store now */
  kill(g, SIGKILL);
  kill(k, SIGKILL);
  waitpid(g, NULL, 0);
  waitpid(k, NULL, 0);
  usleep(50 * 1000);
  ck_assert_int_eq(store_client_abort(c, a), 0); /* frees room: no dead create may take it */
  wait_used(c, base);
  ck_assert_uint_eq(stats_of(c).num_objects, 0);
  ck_assert_int_eq(store_client_put(c, missing, "late", 4, NULL, 0, 0), 0);
  ck_assert_int_eq(store_client_delete(c, missing, 1), 0);
  wait_used(c, base);
  store_client_destroy(c);
}
END_TEST

/* ---- daemon lifecycle (each with its own daemon) ---- */

START_TEST(test_sigterm_is_graceful)
{
  daemon_t d;
  daemon_start(&d, "76M", 1);
  store_client_t *c = NULL;
  ck_assert_int_eq(store_client_connect(d.sock, &c), 0);
  ck_assert_int_eq(store_client_put(c, (const uint8_t *)"0123456789012345678901234567", "v", 1, NULL, 0, 0), 0);
  int pipefd[2];
  ck_assert_int_eq(pipe(pipefd), 0);
  pid_t waiter = fork();
  ck_assert_int_ge(waiter, 0);
  if (waiter == 0) { /* parked in a get when the store stops: must see UNAVAILABLE */
    store_client_t *w;
    store_object_t o;
    if (store_client_connect(d.sock, &w) != 0 || write(pipefd[1], "w", 1) != 1)
      _exit(1);
    _exit(store_client_get(w, (const uint8_t *)"missingmissingmissingmissing", 1, -1, &o) == RAYC_EUNAVAILABLE ? 0 : 2);
  }
  char ch;
  ck_assert_int_eq(read(pipefd[0], &ch, 1), 1);
  usleep(50 * 1000);
  kill(d.pid, SIGTERM);
  int st;
  ck_assert_int_eq(waitpid(d.pid, &st, 0), d.pid);
  char *err = daemon_stderr(&d);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
  free(err);
  ck_assert_int_ne(access(d.sock, F_OK), 0); /* socket unlinked */
  store_stats_t stats;
  ck_assert_int_eq(store_client_stats(c, &stats), RAYC_EUNAVAILABLE);
  ck_assert_int_eq(store_client_stats(c, &stats), RAYC_EUNAVAILABLE); /* stays broken */
  store_client_destroy(c);
  ck_assert_int_eq(waitpid(waiter, &st, 0), waiter);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  close(pipefd[0]);
  close(pipefd[1]);
  ck_assert_int_eq(store_client_connect(d.sock, &c), RAYC_EUNAVAILABLE);
  d.pid = -1;
  daemon_stop(&d, 0);
}
END_TEST

START_TEST(test_rejects_small_store)
{
  daemon_t d;
  int st;
  daemon_start(&d, "64M", 0);
  ck_assert_int_eq(waitpid(d.pid, &st, 0), d.pid);
  char *err = daemon_stderr(&d);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  ck_assert_msg(strstr(err, "below the minimum"), "stderr: %s", err);
  free(err);
  d.pid = -1;
  daemon_stop(&d, 0);
}
END_TEST

/* ---- seal notifications ---- */

START_TEST(test_seal_notifications)
{
  store_client_t *sub = connect_store(), *c = connect_store();
  store_sealed_t n;
  uint8_t id[ID_OBJECT_SIZE];
  id_random(id, sizeof(id));
  ck_assert_int_eq(store_client_subscribe(sub), 0);
  ck_assert_int_eq(store_client_next_sealed(sub, 50, &n), 0); /* nothing yet */
  uint8_t *buf;
  ck_assert_int_eq(store_client_create(c, id, 1000, 24, NULL, 0, 0, &buf), 0);
  ck_assert_int_eq(store_client_next_sealed(sub, 50, &n), 0); /* created is not sealed */
  ck_assert_int_eq(store_client_seal(c, id), 0);
  ck_assert_int_eq(store_client_next_sealed(sub, 2000, &n), 1);
  ck_assert_mem_eq(n.id, id, ID_OBJECT_SIZE);
  ck_assert_uint_eq(n.data_size, 1000);
  ck_assert_uint_eq(n.metadata_size, 24);
  store_stats_t st;
  ck_assert_int_eq(store_client_stats(sub, &st), RAYC_EINVALID_ARGUMENT); /* notifications only */
  ck_assert_int_eq(store_client_release(c, id), 0);
  ck_assert_int_eq(store_client_delete(c, id, 1), 0);
  store_client_destroy(sub);
  store_client_destroy(c);
}
END_TEST

START_TEST(test_om_table_matches_service)
{
  ck_assert_int_eq(rpc_methods_check(store_om_methods, store_om_nmethods, &rayc__object_manager_service__descriptor),
                   0);
}
END_TEST

/* ---- spilling: 3x the capacity through one store ---- */

/* Fills buf with object i's bytes (8-byte words mixing i and the word's index). */
static void fill_pattern(uint8_t *buf, size_t len, uint64_t i)
{
  uint64_t *w = (uint64_t *)(void *)buf;
  for (size_t k = 0; k < len / 8; k++)
    w[k] = (i * 0x9E3779B97F4A7C15ULL) ^ (k * 0xBF58476D1CE4E5B9ULL);
}

static int check_pattern(const uint8_t *buf, size_t len, uint64_t i)
{
  const uint64_t *w = (const uint64_t *)(const void *)buf;
  for (size_t k = 0; k < len / 8; k++)
    if (w[k] != ((i * 0x9E3779B97F4A7C15ULL) ^ (k * 0xBF58476D1CE4E5B9ULL)))
      return 0;
  return 1;
}

static void pattern_id(uint8_t *id, uint32_t i, uint8_t tag)
{
  memset(id, tag, ID_OBJECT_SIZE);
  memcpy(id, &i, sizeof(i));
}

/* Files in d's spill directory. */
static int spill_file_count(const daemon_t *d)
{
  char *cmd = xasprintf("ls -1 '%s/spill' 2>/dev/null | wc -l", d->dir);
  FILE *p = popen(cmd, "r");
  int n = -1;
  if (p && fscanf(p, "%d", &n) != 1)
    n = -1;
  if (p)
    pclose(p);
  free(cmd);
  return n;
}

static void put_pattern(store_client_t *c, uint32_t i, size_t size, uint8_t tag)
{
  uint8_t id[ID_OBJECT_SIZE], *buf;
  pattern_id(id, i, tag);
  int rc = store_client_create(c, id, size, 0, NULL, 0, 20000, &buf);
  ck_assert_msg(rc == 0, "create %u: %s: %s", i, rayc_strerror(rc), store_client_last_error());
  fill_pattern(buf, size, i);
  ck_assert_int_eq(store_client_seal(c, id), 0);
  ck_assert_int_eq(store_client_release(c, id), 0);
}

static void get_and_check(store_client_t *c, uint32_t i, size_t size, uint8_t tag)
{
  uint8_t id[ID_OBJECT_SIZE];
  store_object_t o;
  pattern_id(id, i, tag);
  ck_assert_int_eq(store_client_get(c, id, 1, 0, &o), 0);
  ck_assert_msg(o.found, "object %u not found (error %d)", i, o.error);
  ck_assert_uint_eq(o.data_size, size);
  ck_assert_msg(check_pattern(o.data, size, i), "object %u: wrong bytes", i);
  ck_assert_int_eq(store_client_release(c, id), 0);
}

/* Waits up to 3 s for the spill directory to hold n files. */
static void wait_spill_files(const daemon_t *d, int n)
{
  int got = spill_file_count(d);
  for (int k = 0; k < 300 && got != n; k++) {
    usleep(10000);
    got = spill_file_count(d);
  }
  ck_assert_int_eq(got, n);
}

START_TEST(test_spill_three_times_capacity)
{
  enum { N = 120, SIZE = 2 << 20 }; /* 240 MiB through an 80 MiB store */
  daemon_t d;
  daemon_start(&d, "80M", 1);
  store_client_t *c = NULL;
  ck_assert_int_eq(store_client_connect(d.sock, &c), 0);
  for (uint32_t i = 0; i < N; i++)
    put_pattern(c, i, SIZE, 0x11);
  store_stats_t st = stats_of(c);
  ck_assert_uint_eq(st.num_objects, N); /* nothing lost: every primary copy is pinned */
  ck_assert_uint_ge(st.num_spilled, N - 40);
  ck_assert_uint_gt(st.num_spilled_only, 0);
  ck_assert_uint_lt(st.spill_files, st.num_spilled); /* several objects fused per file */
  for (int k = 0; k < 300 && spill_file_count(&d) != (int)st.spill_files; k++) {
    usleep(10000); /* a batch may still be being written */
    st = stats_of(c);
  }
  ck_assert_int_eq(spill_file_count(&d), (int)st.spill_files);
  for (uint32_t i = 0; i < N; i++) /* oldest first: each restores, evicting others */
    get_and_check(c, i, SIZE, 0x11);
  uint8_t ids[8 * ID_OBJECT_SIZE];
  store_object_t o[8];
  for (uint32_t k = 0; k < 8; k++)
    pattern_id(ids + k * ID_OBJECT_SIZE, k * 13, 0x11);
  ck_assert_int_eq(store_client_get(c, ids, 8, 5000, o), 0); /* many restores in one get */
  for (uint32_t k = 0; k < 8; k++) {
    ck_assert(o[k].found && check_pattern(o[k].data, SIZE, k * 13));
    ck_assert_int_eq(store_client_release(c, ids + k * ID_OBJECT_SIZE), 0);
  }
  st = stats_of(c);
  ck_assert_uint_gt(st.total_restored_objects, 40);
  for (uint32_t i = 0; i < N; i++) {
    uint8_t id[ID_OBJECT_SIZE];
    pattern_id(id, i, 0x11);
    ck_assert_int_eq(store_client_delete(c, id, 1), 0);
  }
  st = stats_of(c);
  ck_assert_uint_eq(st.num_objects, 0);
  ck_assert_uint_eq(st.bytes_used, 0);
  ck_assert_uint_eq(st.spill_files, 0);
  wait_spill_files(&d, 0); /* freed objects' files are removed */
  store_client_destroy(c);
  ck_assert_int_eq(daemon_stop_checked(&d), 0);
}
END_TEST

START_TEST(test_spill_files_removed_at_exit)
{
  daemon_t d;
  daemon_start(&d, "80M", 1);
  store_client_t *c = NULL;
  ck_assert_int_eq(store_client_connect(d.sock, &c), 0);
  for (uint32_t i = 0; i < 50; i++)
    put_pattern(c, i, 2 << 20, 0x22);
  ck_assert_uint_gt(stats_of(c).spill_files, 0);
  ck_assert_int_gt(spill_file_count(&d), 0);
  kill(d.pid, SIGTERM);
  int st;
  ck_assert_int_eq(waitpid(d.pid, &st, 0), d.pid);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  d.pid = -1;
  ck_assert_int_eq(spill_file_count(&d), 0);
  ck_assert(!log_has_errors(&d));
  store_client_destroy(c);
  daemon_stop(&d, 0);
}
END_TEST

/* ---- pulls between two stores over loopback ---- */

static daemon_t g_a, g_b; /* the "pull" case's stores: A serves, B pulls */
static char g_a_addr[64];

static void pull_setup(void)
{
  daemon_start(&g_a, "80M", 1);
  daemon_start(&g_b, "80M", 1);
  store_client_t *c = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &c), 0);
  store_stats_t st = stats_of(c);
  ck_assert_int_gt(st.object_manager_port, 0);
  snprintf(g_a_addr, sizeof(g_a_addr), "127.0.0.1:%d", st.object_manager_port);
  store_client_destroy(c);
}

static void pull_teardown(void)
{
  int st = daemon_stop_checked(&g_a) | daemon_stop_checked(&g_b);
  g_store_failed |= st;
}

START_TEST(test_pull_object_with_metadata)
{
  enum { SIZE = (12 << 20) + 8 };
  store_client_t *a = NULL, *b = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &b), 0);
  uint8_t id[ID_OBJECT_SIZE], *buf;
  pattern_id(id, 1, 0x33);
  ck_assert_int_eq(store_client_create(a, id, SIZE, 100, "owner-address", 13, 0, &buf), 0);
  fill_pattern(buf, SIZE, 1);
  memset(buf + SIZE, 0x7e, 100);
  ck_assert_int_eq(store_client_seal(a, id), 0);
  ck_assert_int_eq(store_client_release(a, id), 0);
  const char *src[] = {g_a_addr};
  ck_assert_int_eq(store_client_pull(b, id, src, 1, 10000), 0);
  store_object_t o;
  ck_assert_int_eq(store_client_get(b, id, 1, 0, &o), 0);
  ck_assert(o.found);
  ck_assert_uint_eq(o.data_size, SIZE);
  ck_assert_uint_eq(o.metadata_size, 100);
  ck_assert(check_pattern(o.data, SIZE, 1));
  for (int k = 0; k < 100; k++)
    ck_assert_uint_eq(o.metadata[k], 0x7e);
  ck_assert_int_eq(store_client_release(b, id), 0);
  store_stats_t sb = stats_of(b), sa = stats_of(a);
  ck_assert_uint_eq(sb.total_pulled_objects, 1);
  ck_assert_uint_ge(sb.bytes_secondary, SIZE);
  ck_assert_uint_ge(sa.total_served_chunks, 3);
  ck_assert_int_eq(store_client_pull(b, id, src, 1, 1000), 0); /* already here */
  ck_assert_uint_eq(stats_of(b).total_pulled_objects, 1);
  ck_assert_int_eq(store_client_delete(b, id, 1), 0);
  ck_assert_int_eq(store_client_delete(a, id, 1), 0);
  store_client_destroy(a);
  store_client_destroy(b);
}
END_TEST

static int pull_child(void *arg)
{
  const uint8_t *id = arg;
  store_client_t *b;
  const char *src[] = {g_a_addr};
  if (store_client_connect(g_b.sock, &b) != 0)
    return 1;
  int rc = store_client_pull(b, id, src, 1, 10000);
  store_client_destroy(b);
  return rc == 0 ? 0 : 2;
}

START_TEST(test_concurrent_pulls_merge)
{
  store_client_t *a = NULL, *b = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &b), 0);
  uint8_t id[ID_OBJECT_SIZE];
  pattern_id(id, 2, 0x33);
  put_pattern(a, 2, 30 << 20, 0x33);
  uint64_t before = stats_of(b).total_pulled_objects;
  pid_t kids[3];
  for (int i = 0; i < 3; i++)
    kids[i] = fork_child(pull_child, id);
  for (int i = 0; i < 3; i++) {
    int st;
    ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  ck_assert_uint_eq(stats_of(b).total_pulled_objects, before + 1);
  get_and_check(b, 2, 30 << 20, 0x33);
  ck_assert_int_eq(store_client_delete(b, id, 1), 0);
  ck_assert_int_eq(store_client_delete(a, id, 1), 0);
  store_client_destroy(a);
  store_client_destroy(b);
}
END_TEST

START_TEST(test_pull_errors_and_failover)
{
  store_client_t *a = NULL, *b = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &b), 0);
  uint8_t id[ID_OBJECT_SIZE], missing[ID_OBJECT_SIZE];
  pattern_id(id, 3, 0x33);
  pattern_id(missing, 99, 0x33);
  put_pattern(a, 3, 6 << 20, 0x33);
  const char *good[] = {g_a_addr};
  int64_t t0 = now_ms();
  ck_assert_int_eq(store_client_pull(b, missing, good, 1, 5000), RAYC_ENOT_FOUND);
  ck_assert_int_lt(now_ms() - t0, 2000);
  const char *both[] = {"127.0.0.1:1", g_a_addr}; /* the first refuses connections */
  ck_assert_int_eq(store_client_pull(b, id, both, 2, 10000), 0);
  get_and_check(b, 3, 6 << 20, 0x33);
  const char *dead[] = {"127.0.0.1:1"};
  ck_assert_int_eq(store_client_pull(b, missing, dead, 1, 10000), RAYC_EUNAVAILABLE);
  ck_assert_int_eq(store_client_pull(b, missing, NULL, 0, 1000), RAYC_EINVALID_ARGUMENT);
  /* A source that accepts connections but never speaks: the pull times out. */
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sin);
  ck_assert_int_eq(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
  ck_assert_int_eq(listen(ls, 16), 0);
  ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);
  char mute[64];
  snprintf(mute, sizeof(mute), "127.0.0.1:%d", ntohs(sin.sin_port));
  const char *silent[] = {mute};
  t0 = now_ms();
  ck_assert_int_eq(store_client_pull(b, missing, silent, 1, 300), RAYC_ETIMEOUT);
  ck_assert_int_lt(now_ms() - t0, 2000);
  close(ls);
  ck_assert_uint_eq(stats_of(b).num_pulls_active, 0);
  ck_assert_int_eq(store_client_delete(b, id, 1), 0);
  ck_assert_int_eq(store_client_delete(a, id, 1), 0);
  store_client_destroy(a);
  store_client_destroy(b);
}
END_TEST

/* Secondary copies are evicted least recently used first when B needs room for a primary. */
START_TEST(test_secondary_copies_evicted_lru)
{
  store_client_t *a = NULL, *b = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &b), 0);
  const char *src[] = {g_a_addr};
  uint8_t x[ID_OBJECT_SIZE], y[ID_OBJECT_SIZE], big[ID_OBJECT_SIZE], *buf;
  pattern_id(x, 10, 0x44);
  pattern_id(y, 11, 0x44);
  pattern_id(big, 12, 0x44);
  put_pattern(a, 10, 20 << 20, 0x44);
  put_pattern(a, 11, 20 << 20, 0x44);
  ck_assert_int_eq(store_client_pull(b, x, src, 1, 10000), 0);
  ck_assert_int_eq(store_client_pull(b, y, src, 1, 10000), 0);
  get_and_check(b, 10, 20 << 20, 0x44); /* x used last: y is the least recently used */
  uint64_t evicted = stats_of(b).total_evicted_objects;
  ck_assert_int_eq(store_client_create(b, big, 50 << 20, 0, NULL, 0, 0, &buf), 0); /* 40 free: evict one */
  ck_assert_uint_eq(stats_of(b).total_evicted_objects, evicted + 1);
  ck_assert_int_eq(store_client_contains(b, x), 1);
  ck_assert_int_eq(store_client_contains(b, y), 0);
  ck_assert_int_eq(store_client_abort(b, big), 0);
  ck_assert_int_eq(store_client_pull(b, y, src, 1, 10000), 0); /* pulled again */
  get_and_check(b, 11, 20 << 20, 0x44);
  ck_assert_int_eq(store_client_delete(b, x, 1), 0);
  ck_assert_int_eq(store_client_delete(b, y, 1), 0);
  ck_assert_int_eq(store_client_delete(a, x, 1), 0);
  ck_assert_int_eq(store_client_delete(a, y, 1), 0);
  store_client_destroy(a);
  store_client_destroy(b);
}
END_TEST

/* The source has spilled the object (its memory is gone): it restores it to serve the chunks. */
START_TEST(test_pull_from_spilled_source)
{
  store_client_t *a = NULL, *b = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &b), 0);
  for (uint32_t i = 0; i < 60; i++) /* 120 MiB of primaries through A's 80 MiB */
    put_pattern(a, 100 + i, 2 << 20, 0x55);
  ck_assert_uint_gt(stats_of(a).num_spilled_only, 0);
  uint64_t restored = stats_of(a).total_restored_objects;
  uint8_t id[ID_OBJECT_SIZE];
  pattern_id(id, 100, 0x55);                         /* the first one out */
  ck_assert_int_eq(store_client_contains(a, id), 1); /* spilled, but here */
  const char *src[] = {g_a_addr};
  ck_assert_int_eq(store_client_pull(b, id, src, 1, 10000), 0);
  get_and_check(b, 100, 2 << 20, 0x55);
  ck_assert_uint_gt(stats_of(a).total_restored_objects, restored);
  ck_assert_int_eq(store_client_delete(b, id, 1), 0);
  for (uint32_t i = 0; i < 60; i++) {
    pattern_id(id, 100 + i, 0x55);
    ck_assert_int_eq(store_client_delete(a, id, 1), 0);
  }
  store_client_destroy(a);
  store_client_destroy(b);
}
END_TEST

typedef struct pull_arg {
  const uint8_t *id;
  int rc;
} pull_arg_t;

static void *pull_thread(void *p)
{
  pull_arg_t *a = p;
  store_client_t *b = NULL;
  const char *src[] = {g_a_addr};
  a->rc = store_client_connect(g_b.sock, &b);
  if (a->rc == 0)
    a->rc = store_client_pull(b, a->id, src, 1, 5000);
  store_client_destroy(b);
  return NULL;
}

/* A pull of an object a local client is creating waits for its seal; if that create is aborted,
 * the pull fetches it from the source instead. A get parked on B sees a pulled object arrive. */
START_TEST(test_pull_and_local_creates)
{
  store_client_t *a = NULL, *b = NULL, *g = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &b), 0);
  ck_assert_int_eq(store_client_connect(g_b.sock, &g), 0);
  uint8_t id[ID_OBJECT_SIZE], *buf;
  pattern_id(id, 20, 0x77);
  put_pattern(a, 20, 3 << 20, 0x77);
  ck_assert_int_eq(store_client_create(b, id, 3 << 20, 0, NULL, 0, 0, &buf), 0);
  fill_pattern(buf, 3 << 20, 20);
  pull_arg_t arg = {id, -1};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, pull_thread, &arg), 0);
  usleep(100 * 1000);
  ck_assert_int_eq(store_client_seal(b, id), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(arg.rc, 0);
  ck_assert_uint_eq(stats_of(b).bytes_secondary, 0); /* satisfied by the local create */
  ck_assert_int_eq(store_client_release(b, id), 0);
  ck_assert_int_eq(store_client_delete(b, id, 1), 0);
  ck_assert_int_eq(store_client_create(b, id, 3 << 20, 0, NULL, 0, 0, &buf), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, pull_thread, &arg), 0);
  usleep(100 * 1000);
  ck_assert_int_eq(store_client_abort(b, id), 0);
  store_object_t o;
  ck_assert_int_eq(store_client_get(g, id, 1, 5000, &o), 0); /* parked until the pull seals it */
  ck_assert(o.found && check_pattern(o.data, 3 << 20, 20));
  pthread_join(th, NULL);
  ck_assert_int_eq(arg.rc, 0);
  ck_assert_uint_ge(stats_of(b).bytes_secondary, 3 << 20);
  ck_assert_int_eq(store_client_release(g, id), 0);
  ck_assert_int_eq(store_client_delete(b, id, 1), 0);
  ck_assert_int_eq(store_client_delete(a, id, 1), 0);
  store_client_destroy(g);
  store_client_destroy(a);
  store_client_destroy(b);
}
END_TEST

START_TEST(test_free_objects_rpc)
{
  store_client_t *a = NULL;
  ck_assert_int_eq(store_client_connect(g_a.sock, &a), 0);
  uint8_t id[ID_OBJECT_SIZE];
  pattern_id(id, 7, 0x66);
  put_pattern(a, 7, 1 << 20, 0x66);
  rpc_client_t *rc = rpc_client_create(NULL);
  Rayc__FreeObjectsRequest req = RAYC__FREE_OBJECTS_REQUEST__INIT;
  ProtobufCBinaryData ids[2] = {pb_bytes(id, ID_OBJECT_SIZE), pb_bytes("short", 5)};
  req.n_object_ids = 2;
  req.object_ids = ids;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  rpc_channel_t *ch = rpc_channel_get(rc, g_a_addr);
  ck_assert_int_eq(
      rpc_call_sync(ch, &rayc__object_manager_service__descriptor, "FreeObjects", &req.base, 5000, &resp, &detail),
      RAYC_EINVALID_ARGUMENT);
  free(detail);
  ck_assert_int_eq(store_client_contains(a, id), 1); /* a bad request changes nothing */
  req.n_object_ids = 1;
  ck_assert_int_eq(
      rpc_call_sync(ch, &rayc__object_manager_service__descriptor, "FreeObjects", &req.base, 5000, &resp, NULL), 0);
  pb_free(resp);
  ck_assert_int_eq(store_client_contains(a, id), 0);
  rpc_client_destroy(rc);
  store_client_destroy(a);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("store_daemon");
  TCase *tc = tcase_create("store");
  tcase_add_unchecked_fixture(tc, store_setup, store_teardown);
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_zero_copy_between_processes);
  tcase_add_test(tc, test_get_missing_times_out);
  tcase_add_test(tc, test_get_waits_for_seal);
  tcase_add_test(tc, test_create_errors);
  tcase_add_test(tc, test_create_waits_for_room);
  tcase_add_test(tc, test_parked_creates_keep_order);
  tcase_add_test(tc, test_killed_creator_frees_memory);
  tcase_add_test(tc, test_disconnect_releases_references);
  tcase_add_test(tc, test_client_shared_by_threads);
  tcase_add_test(tc, test_malformed_frames);
  tcase_add_test(tc, test_malformed_requests);
  tcase_add_test(tc, test_random_and_mutated_frames);
  tcase_add_test(tc, test_dead_clients_parked_requests);
  tcase_add_test(tc, test_seal_notifications);
  tcase_add_test(tc, test_om_table_matches_service);
  suite_add_tcase(s, tc);
  TCase *spill = tcase_create("spill");
  tcase_set_timeout(spill, 60);
  tcase_add_test(spill, test_spill_three_times_capacity);
  tcase_add_test(spill, test_spill_files_removed_at_exit);
  suite_add_tcase(s, spill);
  TCase *pull = tcase_create("pull");
  tcase_add_unchecked_fixture(pull, pull_setup, pull_teardown);
  tcase_set_timeout(pull, 30);
  tcase_add_test(pull, test_pull_object_with_metadata);
  tcase_add_test(pull, test_concurrent_pulls_merge);
  tcase_add_test(pull, test_pull_errors_and_failover);
  tcase_add_test(pull, test_secondary_copies_evicted_lru);
  tcase_add_test(pull, test_pull_from_spilled_source);
  tcase_add_test(pull, test_pull_and_local_creates);
  tcase_add_test(pull, test_free_objects_rpc);
  suite_add_tcase(s, pull);
  TCase *life = tcase_create("lifecycle");
  tcase_set_timeout(life, 10);
  tcase_add_test(life, test_sigterm_is_graceful);
  tcase_add_test(life, test_rejects_small_store);
  suite_add_tcase(s, life);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  if (g_store_failed)
    fprintf(stderr, "the shared rayc-store failed (see above)\n");
  return failed || g_store_failed ? 1 : 0;
}
