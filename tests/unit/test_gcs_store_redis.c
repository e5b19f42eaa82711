/* Unit tests of the Redis GCS store (gcs/gcs_store_redis.c) against a real redis-server started as
 * a child on a Unix socket: write-through and reload, the hash layout, prefixes, syncs that wait
 * for Redis, many entries (SCAN cursors), and failure when Redis dies. Skipped (passing) when
 * redis-server is not installed. */
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_store.h"

#include <check.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char dir[64], sock[128], addr[160];
static pid_t redis_pid;
static uv_loop_t loop;

/* Starts redis-server on DIR/redis.sock and waits until it answers; 0 or -1. */
static int redis_start(void)
{
  snprintf(dir, sizeof(dir), "/tmp/rayc-test-redis-XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
  snprintf(addr, sizeof(addr), "unix:%s", sock);
  char log[128];
  snprintf(log, sizeof(log), "%s/redis.log", dir);
  char *argv[] = {(char *)"redis-server",
                  (char *)"--port",
                  (char *)"0",
                  (char *)"--unixsocket",
                  sock,
                  (char *)"--dir",
                  dir,
                  (char *)"--save",
                  (char *)"",
                  (char *)"--appendonly",
                  (char *)"no",
                  (char *)"--logfile",
                  log,
                  NULL};
  if (posix_spawnp(&redis_pid, "redis-server", NULL, NULL, argv, environ) != 0)
    return -1;
  for (int i = 0; i < 500; i++) {
    redisContext *c = redisConnectUnix(sock);
    int ok = c && !c->err;
    redisFree(c);
    if (ok)
      return 0;
    usleep(10 * 1000);
  }
  return -1;
}

static void redis_stop(void)
{
  if (redis_pid > 0) {
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = 0;
  }
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (dir[0] && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

static int have_redis(void)
{
  return system("command -v redis-server > /dev/null 2>&1") == 0;
}

static int fatal_calls;
static char fatal_msg[256];

static void on_fatal(void *arg, const char *msg)
{
  (void)arg;
  fatal_calls++;
  snprintf(fatal_msg, sizeof(fatal_msg), "%s", msg);
}

static gcs_store_t *open_store(const char *prefix)
{
  gcs_redis_opts_t o = {.address = addr, .prefix = prefix, .loop = &loop, .on_fatal = on_fatal};
  char *err = NULL;
  gcs_store_t *s = gcs_store_create_redis(&o, &err);
  ck_assert_msg(s != NULL, "%s", err ? err : "?");
  return s;
}

static void on_synced(void *arg, int status)
{
  int *out = arg;
  *out = status == 0 ? 1 : status;
}

/* Runs the loop until every write so far is acknowledged; returns the sync status. */
static int sync_now(gcs_store_t *s)
{
  int done = 0;
  gcs_store_sync(s, on_synced, &done);
  int64_t end = now_ms() + 5000;
  while (!done && now_ms() < end)
    uv_run(&loop, UV_RUN_ONCE);
  ck_assert_msg(done != 0, "sync never completed");
  return done == 1 ? 0 : done;
}

/* Closes the stores (NULL-terminated) and runs the loop until their connections are gone. */
static void close_stores(gcs_store_t *s, ...)
{
  va_list ap;
  va_start(ap, s);
  for (gcs_store_t *x = s; x; x = va_arg(ap, gcs_store_t *))
    gcs_store_close(x);
  va_end(ap);
  uv_run(&loop, UV_RUN_DEFAULT);
  va_start(ap, s);
  for (gcs_store_t *x = s; x; x = va_arg(ap, gcs_store_t *))
    gcs_store_destroy(x);
  va_end(ap);
  uv_run(&loop, UV_RUN_DEFAULT);
}

#define close_store(s) close_stores(s, NULL)

/* Runs a command on a blocking connection; returns the reply (freeReplyObject). */
static redisReply *raw(const char *fmt, ...)
{
  redisContext *c = redisConnectUnix(sock);
  ck_assert(c && !c->err);
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  redisFree(c);
  return r;
}

static void setup(void)
{
  log_init("test", LOG_ERROR);
  uv_loop_init(&loop);
  fatal_calls = 0;
  ck_assert_msg(redis_start() == 0, "redis-server did not start");
}

static void teardown(void)
{
  redis_stop();
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void count_entry(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  (void)key, (void)klen, (void)val, (void)vlen;
  (*(int *)arg)++;
}

START_TEST(write_through_and_reload)
{
  gcs_store_t *s = open_store("rayc:t1");
  ck_assert_str_eq(gcs_store_name(s), "redis");
  ck_assert_int_eq(gcs_store_put(s, "JOB", "\0\0\0\1", 4, "job one", 7, 1), 1);
  ck_assert_int_eq(gcs_store_put(s, "KV", "ns\0key", 6, "", 0, 0), 1);
  ck_assert_int_eq(gcs_store_put(s, "KV", "ns\0key", 6, "kept?", 5, 0), 0); /* no write */
  ck_assert_int_eq(gcs_store_put(s, "KV", "ns\0gone", 7, "x", 1, 0), 1);
  ck_assert_int_eq(gcs_store_del(s, "KV", "ns\0gone", 7, 0), 1);
  ck_assert_int_eq(sync_now(s), 0);
  /* the layout: one hash per table */
  redisReply *r = raw("HGET rayc:t1:JOB %b", "\0\0\0\1", (size_t)4);
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_str_eq(r->str, "job one");
  freeReplyObject(r);
  r = raw("HLEN rayc:t1:KV");
  ck_assert_int_eq(r->integer, 1);
  freeReplyObject(r);
  close_store(s);

  s = open_store("rayc:t1");
  uint8_t *v;
  size_t n;
  ck_assert_int_eq(gcs_store_get(s, "JOB", "\0\0\0\1", 4, &v, &n), 1);
  ck_assert_mem_eq(v, "job one", 7);
  free(v);
  ck_assert_int_eq(gcs_store_get(s, "KV", "ns\0key", 6, &v, &n), 1);
  ck_assert_uint_eq(n, 0);
  free(v);
  ck_assert_int_eq(gcs_store_get(s, "KV", "ns\0gone", 7, &v, &n), 0);
  close_store(s);
  ck_assert_int_eq(fatal_calls, 0);
}
END_TEST

START_TEST(prefixes_are_separate)
{
  gcs_store_t *a = open_store("we*ird[1]"), *b = open_store("we");
  gcs_store_put(a, "T", "k", 1, "A", 1, 1);
  gcs_store_put(b, "T", "k", 1, "B", 1, 1);
  sync_now(a);
  sync_now(b);
  close_stores(a, b, NULL);
  a = open_store("we*ird[1]");
  b = open_store("we");
  int na = 0, nb = 0;
  ck_assert_int_eq(gcs_store_scan(a, "T", NULL, 0, count_entry, &na), 1);
  ck_assert_int_eq(gcs_store_scan(b, "T", NULL, 0, count_entry, &nb), 1);
  uint8_t *v;
  size_t n;
  ck_assert_int_eq(gcs_store_get(a, "T", "k", 1, &v, &n), 1);
  ck_assert_mem_eq(v, "A", 1);
  free(v);
  close_stores(a, b, NULL);
}
END_TEST

START_TEST(many_entries_and_prefix_delete)
{
  gcs_store_t *s = open_store("rayc:many");
  char key[32];
  for (int i = 0; i < 3000; i++) {
    int len = snprintf(key, sizeof(key), "%s/%d", i % 3 ? "keep" : "drop", i);
    gcs_store_put(s, i % 2 ? "A" : "B", key, (size_t)len, key, (size_t)len, 1);
  }
  ck_assert_int_eq(gcs_store_del(s, "A", "drop/", 5, 1), 500);
  ck_assert_int_eq(sync_now(s), 0);
  close_store(s);
  s = open_store("rayc:many");
  int n = 0;
  ck_assert_int_eq(gcs_store_scan(s, "A", NULL, 0, count_entry, &n), 1000);
  ck_assert_int_eq(gcs_store_scan(s, "B", "drop/", 5, count_entry, &n), 500);
  close_store(s);
}
END_TEST

START_TEST(sync_waits_for_redis)
{
  gcs_store_t *s = open_store("rayc:sync");
  int done = 0;
  gcs_store_sync(s, on_synced, &done); /* nothing pending: at once */
  ck_assert_int_eq(done, 1);
  gcs_store_put(s, "T", "k", 1, "v", 1, 1);
  done = 0;
  gcs_store_sync(s, on_synced, &done);
  ck_assert_int_eq(done, 0); /* the write is in flight */
  while (!done)
    uv_run(&loop, UV_RUN_ONCE);
  ck_assert_int_eq(done, 1);
  close_store(s);
}
END_TEST

START_TEST(redis_death_is_fatal)
{
  gcs_store_t *s = open_store("rayc:dies");
  gcs_store_put(s, "T", "k", 1, "v", 1, 1);
  ck_assert_int_eq(sync_now(s), 0);
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  redis_pid = 0;
  gcs_store_put(s, "T", "k2", 2, "v", 1, 1);
  ck_assert_int_eq(sync_now(s), RAYC_EUNAVAILABLE);
  ck_assert_int_eq(fatal_calls, 1);
  ck_assert_msg(strstr(fatal_msg, "redis"), "%s", fatal_msg);
  int done = 0;
  gcs_store_sync(s, on_synced, &done); /* failed for good */
  ck_assert_int_eq(done, RAYC_EUNAVAILABLE);
  uint8_t *v; /* reads still come from memory */
  size_t n;
  ck_assert_int_eq(gcs_store_get(s, "T", "k2", 2, &v, &n), 1);
  free(v);
  close_store(s);
  ck_assert_int_eq(fatal_calls, 1);
}
END_TEST

START_TEST(bad_address_and_wrong_type)
{
  char *err = NULL;
  gcs_redis_opts_t o = {.address = "unix:/nonexistent/x.sock", .prefix = "p", .loop = &loop};
  ck_assert_ptr_null(gcs_store_create_redis(&o, &err));
  ck_assert_ptr_nonnull(strstr(err, "cannot connect to redis"));
  free(err);
  o.address = "nohostport";
  ck_assert_ptr_null(gcs_store_create_redis(&o, &err));
  ck_assert_ptr_nonnull(strstr(err, "bad --redis-address"));
  free(err);
  freeReplyObject(raw("SET p:T notahash"));
  o.address = addr;
  ck_assert_ptr_null(gcs_store_create_redis(&o, &err));
  ck_assert_msg(strstr(err, "WRONGTYPE") != NULL, "%s", err);
  free(err);
  uv_run(&loop, UV_RUN_DEFAULT);
}
END_TEST

int main(void)
{
  if (!have_redis()) {
    printf("redis-server not installed: skipping the redis store tests\n");
    return 0;
  }
  Suite *s = suite_create("gcs_store_redis");
  TCase *tc = tcase_create("redis");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, write_through_and_reload);
  tcase_add_test(tc, prefixes_are_separate);
  tcase_add_test(tc, many_entries_and_prefix_delete);
  tcase_add_test(tc, sync_waits_for_redis);
  tcase_add_test(tc, redis_death_is_fatal);
  tcase_add_test(tc, bad_address_and_wrong_type);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
