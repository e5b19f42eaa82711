/*
 * rpc_test_server: a real rayc service (InternalKVGcsService, over an in-memory table) on rayc's
 * gRPC layer, for tests/unit/test_rpc.c.
 *
 *   rpc_test_server TOKEN [ADDR]     TOKEN "-" means no token check; ADDR defaults to 127.0.0.1:0
 *
 * Prints the bound port on stdout (one line), then runs a libuv loop (handlers run on it) until
 * SIGTERM, SIGINT or EOF on stdin. Exits 0 after a clean shutdown, so a test run under ASan sees
 * leaks of the server side through the exit status.
 *
 * Test hooks, chosen by the namespace of an InternalKVGet request:
 *   "__fail"   replies RAYC_EINFEASIBLE with detail "requested failure: <key>"
 *   "__sleep"  holds the call and replies (found = false) after <key> milliseconds; calls still
 *              held at shutdown are replied to after the server is destroyed (the late-reply path)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h" /* only the GCS messages: independent of other protos */

#define KV_BUCKETS 4096

struct kv_entry {
  struct kv_entry *next;
  char *ns;
  ProtobufCBinaryData key, value;
};

struct held { /* a call answered later by a timer */
  uv_timer_t timer;
  rpc_call_t *call;
  struct held *prev, *next;
};

struct app {
  uv_loop_t loop;
  rpc_server_t *srv;
  uv_signal_t sigterm, sigint;
  uv_pipe_t in;
  int in_open;
  struct kv_entry *kv[KV_BUCKETS];
  struct held held; /* sentinel */
};

static size_t kv_bucket(const char *ns, ProtobufCBinaryData key)
{
  uint32_t h = 2166136261u;
  for (const char *p = ns; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  for (size_t i = 0; i < key.len; i++)
    h = (h ^ key.data[i]) * 16777619u;
  return h % KV_BUCKETS;
}

static int kv_match(const struct kv_entry *e, const char *ns, ProtobufCBinaryData key)
{
  return strcmp(e->ns, ns) == 0 && e->key.len == key.len && memcmp(e->key.data, key.data, key.len) == 0;
}

static struct kv_entry **kv_find(struct app *a, const char *ns, ProtobufCBinaryData key)
{
  struct kv_entry **pp = &a->kv[kv_bucket(ns, key)];
  while (*pp && !kv_match(*pp, ns, key))
    pp = &(*pp)->next;
  return pp;
}

static ProtobufCBinaryData kv_dup(ProtobufCBinaryData b)
{
  ProtobufCBinaryData d = {b.len, xmemdup(b.data, b.len)};
  return d;
}

static void kv_free_entry(struct kv_entry *e)
{
  free(e->ns);
  free(e->key.data);
  free(e->value.data);
  free(e);
}

static void held_closed(uv_handle_t *h)
{
  free(h); /* the timer is the first member of struct held */
}

static void held_reply(struct held *h)
{
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  rpc_reply(h->call, &r.base);
  h->prev->next = h->next;
  h->next->prev = h->prev;
  uv_close((uv_handle_t *)&h->timer, held_closed);
}

static void held_fire(uv_timer_t *t)
{
  held_reply((struct held *)t);
}

static void kv_hold(struct app *a, rpc_call_t *call, const Rayc__KVGetRequest *req)
{
  char ms[32];
  snprintf(ms, sizeof(ms), "%.*s", (int)req->key.len, (const char *)req->key.data);
  struct held *h = xcalloc(1, sizeof(*h));
  h->call = call;
  h->next = a->held.next;
  h->prev = &a->held;
  a->held.next->prev = h;
  a->held.next = h;
  uv_timer_init(&a->loop, &h->timer);
  uv_timer_start(&h->timer, held_fire, strtoul(ms, NULL, 10), 0);
}

static void kv_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  struct app *a = ctx;
  const Rayc__KVGetRequest *req = (const Rayc__KVGetRequest *)m;
  if (strcmp(req->ns, "__fail") == 0) {
    rpc_reply_error(call, RAYC_EINFEASIBLE, "requested failure: %.*s", (int)req->key.len, (const char *)req->key.data);
    return;
  }
  if (strcmp(req->ns, "__sleep") == 0) {
    kv_hold(a, call, req);
    return;
  }
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  struct kv_entry *e = *kv_find(a, req->ns, req->key);
  if (e) {
    r.found = 1;
    r.value = e->value;
  }
  rpc_reply(call, &r.base);
}

static void kv_put(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  struct app *a = ctx;
  const Rayc__KVPutRequest *req = (const Rayc__KVPutRequest *)m;
  Rayc__KVPutReply r = RAYC__KVPUT_REPLY__INIT;
  struct kv_entry **pp = kv_find(a, req->ns, req->key);
  if (!*pp) {
    struct kv_entry *e = xcalloc(1, sizeof(*e));
    e->ns = xstrdup(req->ns);
    e->key = kv_dup(req->key);
    e->value = kv_dup(req->value);
    *pp = e;
    r.added = 1;
  } else if (req->overwrite) {
    free((*pp)->value.data);
    (*pp)->value = kv_dup(req->value);
  }
  rpc_reply(call, &r.base);
}

static int kv_has_prefix(const struct kv_entry *e, const char *ns, ProtobufCBinaryData prefix)
{
  return strcmp(e->ns, ns) == 0 && e->key.len >= prefix.len && memcmp(e->key.data, prefix.data, prefix.len) == 0;
}

static void kv_del(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  struct app *a = ctx;
  const Rayc__KVDelRequest *req = (const Rayc__KVDelRequest *)m;
  Rayc__KVDelReply r = RAYC__KVDEL_REPLY__INIT;
  for (size_t b = 0; b < KV_BUCKETS; b++) {
    for (struct kv_entry **pp = &a->kv[b]; *pp;) {
      int hit = req->by_prefix ? kv_has_prefix(*pp, req->ns, req->key) : kv_match(*pp, req->ns, req->key);
      if (!hit) {
        pp = &(*pp)->next;
        continue;
      }
      struct kv_entry *e = *pp;
      *pp = e->next;
      kv_free_entry(e);
      r.deleted++;
    }
  }
  rpc_reply(call, &r.base);
}

static void kv_keys(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  struct app *a = ctx;
  const Rayc__KVKeysRequest *req = (const Rayc__KVKeysRequest *)m;
  Rayc__KVKeysReply r = RAYC__KVKEYS_REPLY__INIT;
  size_t cap = 0;
  for (size_t b = 0; b < KV_BUCKETS; b++) {
    for (struct kv_entry *e = a->kv[b]; e; e = e->next) {
      if (!kv_has_prefix(e, req->ns, req->prefix))
        continue;
      if (r.n_keys == cap) {
        cap = cap ? 2 * cap : 16;
        r.keys = xrealloc(r.keys, cap * sizeof(*r.keys));
      }
      r.keys[r.n_keys++] = e->key; /* borrowed: packed before rpc_reply returns */
    }
  }
  rpc_reply(call, &r.base);
  free(r.keys);
}

static const rpc_method_t kv_methods[] = {
    {.service = &rayc__internal_kvgcs_service__descriptor, .method = "InternalKVGet", .handler = kv_get},
    {.service = &rayc__internal_kvgcs_service__descriptor, .method = "InternalKVPut", .handler = kv_put},
    {.service = &rayc__internal_kvgcs_service__descriptor, .method = "InternalKVDel", .handler = kv_del},
    {.service = &rayc__internal_kvgcs_service__descriptor, .method = "InternalKVKeys", .handler = kv_keys},
};

/* Idempotent: destroys the server first, then answers held calls (replies after destroy). */
static void app_shutdown(struct app *a)
{
  if (!a->srv)
    return;
  rpc_server_destroy(a->srv);
  a->srv = NULL;
  while (a->held.next != &a->held)
    held_reply(a->held.next);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  if (a->in_open)
    uv_close((uv_handle_t *)&a->in, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
  (void)signum;
  app_shutdown(h->data);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
  static char scratch[256]; /* stdin content is ignored; only EOF matters */
  (void)h;
  (void)size;
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  (void)buf;
  if (n < 0)
    app_shutdown(s->data);
}

static void app_watch(struct app *a)
{
  uv_signal_init(&a->loop, &a->sigterm);
  uv_signal_init(&a->loop, &a->sigint);
  a->sigterm.data = a->sigint.data = a;
  uv_signal_start(&a->sigterm, on_signal, SIGTERM);
  uv_signal_start(&a->sigint, on_signal, SIGINT);
  if (uv_guess_handle(0) == UV_NAMED_PIPE && uv_pipe_init(&a->loop, &a->in, 0) == 0) {
    a->in.data = a;
    uv_pipe_open(&a->in, 0);
    uv_read_start((uv_stream_t *)&a->in, on_alloc, on_stdin);
    a->in_open = 1;
  }
}

static void app_free_kv(struct app *a)
{
  for (size_t b = 0; b < KV_BUCKETS; b++) {
    while (a->kv[b]) {
      struct kv_entry *e = a->kv[b];
      a->kv[b] = e->next;
      kv_free_entry(e);
    }
  }
}

int main(int argc, char **argv)
{
  static struct app a;
  if (argc < 2) {
    fprintf(stderr, "usage: %s TOKEN|- [ADDR]\n", argv[0]);
    return 2;
  }
  log_init("rpc_test_server", LOG_WARN);
  uv_loop_init(&a.loop);
  a.held.next = a.held.prev = &a.held;
  rpc_server_opts_t opts = {.loop = &a.loop, .token = strcmp(argv[1], "-") ? argv[1] : NULL, .ctx = &a};
  a.srv = rpc_server_create(kv_methods, ARRAY_LEN(kv_methods), &opts);
  int port = a.srv ? rpc_server_listen(a.srv, argc > 2 ? argv[2] : "127.0.0.1:0") : -1;
  if (port < 0 || rpc_server_start(a.srv) < 0) {
    fprintf(stderr, "rpc_test_server: cannot serve (%d)\n", port);
    rpc_server_destroy(a.srv);
    return 1;
  }
  printf("%d\n", port);
  fflush(stdout);
  app_watch(&a);
  uv_run(&a.loop, UV_RUN_DEFAULT);
  app_free_kv(&a);
  return uv_loop_close(&a.loop) == 0 ? 0 : 3;
}
