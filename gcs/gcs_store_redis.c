/*
 * The Redis GCS store: an in-memory mirror that serves every read, written through to Redis.
 *
 * Design. Each GCS table T is one Redis hash "<prefix>:T" whose fields are the table's keys, so
 * `redis-cli HGETALL rayc:6380:JOB` shows the jobs. At creation a blocking connection SCANs the
 * prefix and HSCANs each hash into the mirror (a memory store), then closes; from then on reads
 * never leave the process. Every put or del changes the mirror and queues an HSET or HDEL on an
 * asynchronous hiredis connection driven by the GCS loop (hiredis/adapters/libuv.h), so the loop
 * never waits for Redis. Redis answers commands of one connection in order; `issued` counts the
 * writes queued and `acked` those Redis confirmed, and a sync waits (FIFO) until `acked` reaches
 * the `issued` it saw.
 *
 * Connection state: OPEN -> CLOSING (gcs_store_close: pending writes drain) -> CLOSED, or
 * OPEN/CLOSING -> FAILED (connection lost, a write refused): then every waiting and later sync
 * fails with RAYC_EUNAVAILABLE and the fatal handler runs once, because a GCS that cannot persist
 * must not keep acknowledging changes (Ray's GCS exits too; a supervisor restarts it and it
 * reloads). Every change goes through redis_set_state(), which logs it.
 */
#include "gcs/gcs_store.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>

enum { REDIS_SCAN_COUNT = 1000, REDIS_DEL_BATCH = 512, REDIS_CONNECT_TIMEOUT_S = 5 };

enum redis_state { REDIS_OPEN, REDIS_CLOSING, REDIS_CLOSED, REDIS_FAILED };

typedef struct redis_waiter {
  uint64_t target; /* done once acked >= target */
  gcs_store_synced_fn done;
  void *arg;
} redis_waiter_t;

typedef struct redis_store {
  gcs_store_t base;
  gcs_store_t *mem;      /* owned: the mirror */
  redisAsyncContext *ac; /* owned by hiredis once connected; NULL after it is freed */
  char *prefix;          /* owned */
  enum redis_state state;
  uint64_t issued, acked;
  redis_waiter_t *wait; /* FIFO: wait[whead .. wn) */
  size_t whead, wn, wcap;
  gcs_store_fatal_fn on_fatal;
  void *fatal_arg;
} redis_store_t;

static const char *redis_state_name(enum redis_state s)
{
  static const char *names[] = {"OPEN", "CLOSING", "CLOSED", "FAILED"};
  return names[s];
}

static void redis_set_state(redis_store_t *r, enum redis_state state, const char *why)
{
  if (state == REDIS_FAILED)
    log_error("redis store: %s -> FAILED: %s", redis_state_name(r->state), why);
  else
    log_info("redis store: %s -> %s (%s)", redis_state_name(r->state), redis_state_name(state), why);
  r->state = state;
}

/* ---- waiters ---- */

/* Calls, in order, the waiters whose writes are all acknowledged; with err < 0, every waiter. */
static void redis_wake(redis_store_t *r, int err)
{
  while (r->whead < r->wn && (err < 0 || r->wait[r->whead].target <= r->acked)) {
    redis_waiter_t w = r->wait[r->whead++];
    w.done(w.arg, err < 0 ? err : 0);
  }
  if (r->whead == r->wn)
    r->whead = r->wn = 0;
}

static void redis_sync(gcs_store_t *s, gcs_store_synced_fn done, void *arg)
{
  redis_store_t *r = (redis_store_t *)s;
  if (r->state == REDIS_FAILED) {
    done(arg, RAYC_EUNAVAILABLE);
    return;
  }
  if (r->acked == r->issued && r->whead == r->wn) {
    done(arg, 0);
    return;
  }
  if (r->wn == r->wcap) {
    r->wcap = r->wcap ? 2 * r->wcap : 64;
    r->wait = xrealloc(r->wait, r->wcap * sizeof(*r->wait));
  }
  r->wait[r->wn++] = (redis_waiter_t){r->issued, done, arg};
}

/* ---- failure and the asynchronous connection ---- */

/* Enters FAILED once: fails every waiter and tells the owner. With free_ctx, also drops the
 * connection (from a reply callback hiredis frees it when the callback returns). */
static void redis_fail(redis_store_t *r, const char *why, int free_ctx)
{
  if (r->state == REDIS_FAILED || r->state == REDIS_CLOSED)
    return;
  redis_set_state(r, REDIS_FAILED, why);
  if (free_ctx && r->ac)
    redisAsyncFree(r->ac);
  redis_wake(r, RAYC_EUNAVAILABLE);
  if (r->on_fatal)
    r->on_fatal(r->fatal_arg, why);
}

static void redis_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
  redis_store_t *r = priv;
  redisReply *rep = reply;
  (void)ac;
  if (!rep) { /* the connection is going away: on_disconnect says why */
    if (r->state == REDIS_OPEN)
      redis_fail(r, "redis connection lost with writes in flight", 0);
    return;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    char *why = xasprintf("redis refused a write: %.*s", (int)rep->len, rep->str);
    redis_fail(r, why, 1);
    free(why);
    return;
  }
  r->acked++;
  redis_wake(r, 0);
}

static void redis_on_connect(const redisAsyncContext *ac, int status)
{
  redis_store_t *r = ac->data;
  if (status == REDIS_OK)
    return;
  r->ac = NULL; /* hiredis frees a context that failed to connect */
  char *why = xasprintf("cannot connect to redis for writes: %s", ac->errstr);
  redis_fail(r, why, 0);
  free(why);
}

static void redis_on_disconnect(const redisAsyncContext *ac, int status)
{
  redis_store_t *r = ac->data;
  r->ac = NULL;
  if (r->state == REDIS_CLOSING) {
    redis_set_state(r, REDIS_CLOSED, status == REDIS_OK ? "all writes done" : ac->errstr);
    redis_wake(r, r->acked == r->issued ? 0 : RAYC_EUNAVAILABLE);
    return;
  }
  char *why = xasprintf("redis connection lost: %s", ac->errstr[0] ? ac->errstr : "closed by peer");
  redis_fail(r, why, 0);
  free(why);
}

/* Queues one write; on failure to queue, the store fails. */
static void redis_issue(redis_store_t *r, int argc, const char **argv, const size_t *lens)
{
  if (r->state != REDIS_OPEN || !r->ac) {
    log_warn("redis store: a change after the store %s is not persisted",
             r->state == REDIS_FAILED ? "failed" : "closed");
    return;
  }
  if (redisAsyncCommandArgv(r->ac, redis_on_reply, r, argc, argv, lens) != REDIS_OK) {
    redis_fail(r, "cannot queue a write to redis", 1);
    return;
  }
  r->issued++;
}

/* ---- ops ---- */

static char *redis_key(const redis_store_t *r, const char *table)
{
  return xasprintf("%s:%s", r->prefix, table);
}

static int redis_put(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val, size_t vlen,
                     int overwrite)
{
  redis_store_t *r = (redis_store_t *)s;
  int added = gcs_store_put(r->mem, table, key, klen, val, vlen, overwrite);
  if (added < 0 || (!added && !overwrite))
    return added;
  char *hkey = redis_key(r, table);
  const char *argv[] = {"HSET", hkey, key, val};
  size_t lens[] = {4, strlen(hkey), klen, vlen};
  redis_issue(r, 4, argv, lens);
  free(hkey);
  return added;
}

static int redis_get(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
  return gcs_store_get(((redis_store_t *)s)->mem, table, key, klen, val, vlen);
}

static int redis_scan(gcs_store_t *s, const char *table, const void *prefix, size_t plen, gcs_store_scan_fn fn,
                      void *arg)
{
  return gcs_store_scan(((redis_store_t *)s)->mem, table, prefix, plen, fn, arg);
}

typedef struct redis_keys {
  ProtobufCBinaryData *v;
  size_t n, cap;
} redis_keys_t;

static void redis_collect_key(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  redis_keys_t *k = arg;
  (void)val, (void)vlen;
  if (k->n == k->cap) {
    k->cap = k->cap ? 2 * k->cap : 16;
    k->v = xrealloc(k->v, k->cap * sizeof(*k->v));
  }
  k->v[k->n].len = klen;
  k->v[k->n].data = xmalloc(klen + 1);
  if (klen)
    memcpy(k->v[k->n].data, key, klen);
  k->n++;
}

/* HDEL of keys[from .. to). */
static void redis_hdel(redis_store_t *r, const char *hkey, const redis_keys_t *k, size_t from, size_t to)
{
  size_t argc = 2 + (to - from);
  const char **argv = xcalloc(argc, sizeof(*argv));
  size_t *lens = xcalloc(argc, sizeof(*lens));
  argv[0] = "HDEL", lens[0] = 4;
  argv[1] = hkey, lens[1] = strlen(hkey);
  for (size_t i = from; i < to; i++) {
    argv[2 + i - from] = (const char *)k->v[i].data;
    lens[2 + i - from] = k->v[i].len;
  }
  redis_issue(r, (int)argc, argv, lens);
  free(lens);
  free(argv);
}

static int redis_del(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix)
{
  redis_store_t *r = (redis_store_t *)s;
  redis_keys_t k = {0};
  if (by_prefix)
    gcs_store_scan(r->mem, table, key, klen, redis_collect_key, &k);
  int n = gcs_store_del(r->mem, table, key, klen, by_prefix);
  if (n > 0 && !by_prefix)
    redis_collect_key(&k, key, klen, NULL, 0);
  char *hkey = redis_key(r, table);
  for (size_t i = 0; n > 0 && i < k.n; i += REDIS_DEL_BATCH)
    redis_hdel(r, hkey, &k, i, i + REDIS_DEL_BATCH < k.n ? i + REDIS_DEL_BATCH : k.n);
  free(hkey);
  for (size_t i = 0; i < k.n; i++)
    free(k.v[i].data);
  free(k.v);
  return n;
}

static void redis_close(gcs_store_t *s)
{
  redis_store_t *r = (redis_store_t *)s;
  if (r->state != REDIS_OPEN)
    return;
  if (!r->ac) {
    redis_set_state(r, REDIS_CLOSED, "closed before connecting");
    return;
  }
  int idle = r->issued == r->acked && !(r->ac->c.flags & REDIS_IN_CALLBACK);
  redis_set_state(r, REDIS_CLOSING, idle ? "nothing in flight" : "waiting for the writes in flight");
  redisAsyncDisconnect(r->ac);
  if (idle && r->ac) {
    /* hiredis freed the context at once, without redis_on_disconnect if it never connected
     * (it connects on its first write) */
    r->ac = NULL;
    redis_set_state(r, REDIS_CLOSED, "nothing was written");
  }
}

static void redis_destroy(gcs_store_t *s)
{
  redis_store_t *r = (redis_store_t *)s;
  if (r->ac) { /* never closed: drop the connection; its loop handle closes on the next run */
    r->state = REDIS_CLOSED;
    redisAsyncFree(r->ac);
  }
  redis_wake(r, RAYC_ECANCELLED);
  gcs_store_destroy(r->mem);
  free(r->wait);
  free(r->prefix);
  free(r);
}

static const gcs_store_ops_t redis_ops = {
    .name = "redis",
    .put = redis_put,
    .get = redis_get,
    .del = redis_del,
    .scan = redis_scan,
    .sync = redis_sync,
    .close = redis_close,
    .destroy = redis_destroy,
};

/* ---- address, loading ---- */

int gcs_redis_parse_address(const char *addr, char **host, int *port, char **path)
{
  *host = *path = NULL;
  *port = 0;
  if (strncmp(addr, "unix:", 5) == 0) {
    if (addr[5] != '/')
      return RAYC_EINVALID_ARGUMENT;
    *path = xstrdup(addr + 5);
    return 0;
  }
  char h[256];
  if (hostport_split(addr, h, sizeof(h), port) != 0)
    return RAYC_EINVALID_ARGUMENT;
  *host = xstrdup(h);
  return 0;
}

/* Runs one command on the blocking connection; NULL with *err set on failure or an error reply. */
static redisReply *redis_cmd(redisContext *c, const char *what, int argc, const char **argv, const size_t *lens,
                             char **err)
{
  redisReply *rep = redisCommandArgv(c, argc, argv, lens);
  if (!rep) {
    *err = xasprintf("redis %s failed: %s", what, c->errstr);
    return NULL;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    *err = xasprintf("redis %s failed: %.*s", what, (int)rep->len, rep->str);
    freeReplyObject(rep);
    return NULL;
  }
  return rep;
}

/* A SCAN/HSCAN reply: [cursor, [items...]]. */
static int redis_is_scan_reply(const redisReply *rep)
{
  return rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_STRING &&
         rep->element[1]->type == REDIS_REPLY_ARRAY;
}

/* Copies the reply's cursor into cursor[32]; returns 0 when the iteration is over. */
static int redis_next_cursor(const redisReply *rep, char *cursor)
{
  snprintf(cursor, 32, "%s", rep->element[0]->str);
  return strcmp(cursor, "0") != 0;
}

/* Loads the hash key (table = the part after "<prefix>:") into the mirror; returns the number
 * of entries or a negative code with *err set. */
static int redis_load_hash(redis_store_t *r, redisContext *c, const redisReply *key, char **err)
{
  const char *table = key->str + strlen(r->prefix) + 1;
  if (memchr(key->str, '\0', key->len) || !*table) {
    *err = xasprintf("redis key '%s' under prefix '%s' names no table", key->str, r->prefix);
    return RAYC_EINVALID_ARGUMENT;
  }
  char cursor[32] = "0";
  int n = 0, more = 1;
  while (more) {
    const char *argv[] = {"HSCAN", key->str, cursor, "COUNT", "1000"};
    redisReply *rep = redis_cmd(c, "HSCAN", 5, argv, NULL, err);
    if (!rep || !redis_is_scan_reply(rep)) {
      if (rep && !*err)
        *err = xasprintf("redis key '%s': unexpected HSCAN reply", key->str);
      freeReplyObject(rep);
      return RAYC_EIO;
    }
    const redisReply *items = rep->element[1];
    for (size_t i = 0; i + 1 < items->elements; i += 2, n++)
      gcs_store_put(r->mem, table, items->element[i]->str, items->element[i]->len, items->element[i + 1]->str,
                    items->element[i + 1]->len, 1);
    more = redis_next_cursor(rep, cursor);
    freeReplyObject(rep);
  }
  return n;
}

/* The SCAN pattern matching "<prefix>:*", glob characters of the prefix escaped. */
static char *redis_pattern(const char *prefix)
{
  char *p = xmalloc(2 * strlen(prefix) + 3), *o = p;
  for (const char *s = prefix; *s; s++) {
    if (strchr("*?[]\\", *s))
      *o++ = '\\';
    *o++ = *s;
  }
  strcpy(o, ":*");
  return p;
}

/* Loads every table under the prefix; returns the number of entries or a negative code. */
static int redis_load(redis_store_t *r, redisContext *c, char **err)
{
  char *pattern = redis_pattern(r->prefix), cursor[32] = "0";
  int total = 0, more = 1;
  while (more && total >= 0) {
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
    redisReply *rep = redis_cmd(c, "SCAN", 6, argv, NULL, err);
    if (!rep || !redis_is_scan_reply(rep)) {
      if (rep)
        *err = xstrdup("unexpected redis SCAN reply");
      freeReplyObject(rep);
      total = RAYC_EIO;
      break;
    }
    const redisReply *keys = rep->element[1];
    for (size_t i = 0; i < keys->elements && total >= 0; i++) {
      int n = redis_load_hash(r, c, keys->element[i], err);
      total = n < 0 ? n : total + n;
    }
    more = redis_next_cursor(rep, cursor);
    freeReplyObject(rep);
  }
  free(pattern);
  return total;
}

/* ---- creation ---- */

/* Opens the blocking connection (and authenticates); NULL with *err set. */
static redisContext *redis_connect_sync(const gcs_redis_opts_t *o, const char *host, int port, const char *path,
                                        char **err)
{
  struct timeval tv = {REDIS_CONNECT_TIMEOUT_S, 0};
  redisContext *c = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
  if (!c || c->err) {
    *err = xasprintf("cannot connect to redis at %s: %s", o->address, c ? c->errstr : "out of memory");
    redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  if (o->password && *o->password) {
    const char *argv[] = {"AUTH", o->password};
    redisReply *rep = redis_cmd(c, "AUTH", 2, argv, NULL, err);
    if (!rep) {
      redisFree(c);
      return NULL;
    }
    freeReplyObject(rep);
  }
  return c;
}

/* Opens the asynchronous connection for writes on the loop. */
static int redis_connect_async(redis_store_t *r, const gcs_redis_opts_t *o, const char *host, int port,
                               const char *path, char **err)
{
  redisAsyncContext *ac = path ? redisAsyncConnectUnix(path) : redisAsyncConnect(host, port);
  if (!ac || ac->err) {
    *err = xasprintf("cannot connect to redis at %s: %s", o->address, ac ? ac->errstr : "out of memory");
    if (ac)
      redisAsyncFree(ac);
    return RAYC_EUNAVAILABLE;
  }
  ac->data = r;
  if (redisLibuvAttach(ac, o->loop) != REDIS_OK) {
    *err = xstrdup("cannot attach the redis connection to the loop");
    redisAsyncFree(ac);
    return RAYC_EINTERNAL;
  }
  r->ac = ac;
  redisAsyncSetConnectCallback(ac, redis_on_connect);
  redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
  if (o->password && *o->password) {
    const char *argv[] = {"AUTH", o->password};
    redis_issue(r, 2, argv, NULL);
  }
  return 0;
}

/* Loads the tables over a blocking connection, then opens the one for writes. */
static int redis_open(redis_store_t *r, const gcs_redis_opts_t *o, char **err)
{
  char *host = NULL, *path = NULL;
  int port = 0, n = RAYC_EINVALID_ARGUMENT;
  if (gcs_redis_parse_address(o->address, &host, &port, &path) < 0) {
    *err = xasprintf("bad --redis-address '%s': expected HOST:PORT or unix:/PATH", o->address);
    return n;
  }
  redisContext *c = redis_connect_sync(o, host, port, path, err);
  if (c) {
    int64_t t0 = now_ms();
    n = redis_load(r, c, err);
    redisFree(c);
    if (n >= 0)
      log_info("storage: redis at %s, prefix '%s': loaded %d entries in %lld ms", o->address, r->prefix, n,
               (long long)(now_ms() - t0));
  }
  if (n >= 0)
    n = redis_connect_async(r, o, host, port, path, err);
  free(host);
  free(path);
  return n;
}

gcs_store_t *gcs_store_create_redis(const gcs_redis_opts_t *o, char **err)
{
  redis_store_t *r = xcalloc(1, sizeof(*r));
  r->base.ops = &redis_ops;
  r->mem = gcs_store_create_memory();
  r->prefix = xstrdup(o->prefix);
  r->on_fatal = o->on_fatal;
  r->fatal_arg = o->fatal_arg;
  *err = NULL;
  if (redis_open(r, o, err) < 0) {
    r->state = REDIS_CLOSED;
    redis_destroy(&r->base);
    return NULL;
  }
  return &r->base;
}
