/*
 * Lazy hand-offs (loopq_post_lazy, loopq_flush; a table row's `lazy` test and rpc_server_flush):
 * work that may wait for a daemon's periodic timer reaches its loop without waking it. The GCS
 * hands idle heartbeats over so (docs/PERFORMANCE.md, "The GCS's idle heartbeats without a
 * wake-up (issue 17, session 9)").
 *
 * loopq: a lazy item does not run on a wake-up of its own, runs at loopq_flush() or with the next
 * ordinary post's wake-up, and keeps its place in the FIFO; posters on several threads mixing lazy
 * and ordinary posts keep their order. rpc: over real gRPC on loopback, a call whose row's lazy
 * test passes reaches its handler only at rpc_server_flush(), with its arrival time; one whose test
 * fails is handled without any flush.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "common/loopq.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h"

#define TOKEN  "0123456789abcdef0123456789abcdef"
#define KV_SVC (&rayc__internal_kvgcs_service__descriptor)

/* ---- loopq ---- */

static int order[16], norder;

static void record(void *arg)
{
  if (norder < (int)ARRAY_LEN(order))
    order[norder++] = (int)(intptr_t)arg;
}

static void on_guard(uv_timer_t *t)
{
  uv_stop(t->loop);
}

/* Runs the loop until it is stopped or ms pass. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
  uv_timer_t guard;
  uv_timer_init(loop, &guard);
  uv_timer_start(&guard, on_guard, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

struct poster {
  loopq_t *q;
  int first;
};

static uv_loop_t *stop_target;

static void record_and_stop(void *arg)
{
  record(arg);
  uv_stop(stop_target);
}

static void *post_ordinary(void *arg)
{
  struct poster *p = arg;
  loopq_post(p->q, record_and_stop, (void *)(intptr_t)p->first);
  return NULL;
}

START_TEST(test_loopq_lazy)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  stop_target = &loop;
  loopq_t *q = loopq_create(&loop);
  norder = 0;
  /* Lazy items alone do not wake the loop. */
  loopq_post_lazy(q, record, (void *)1);
  loopq_post_lazy(q, record, (void *)2);
  run_for(&loop, 200);
  ck_assert_int_eq(norder, 0);
  /* A flush runs them, in order. */
  loopq_flush(q);
  ck_assert_int_eq(norder, 2);
  ck_assert_int_eq(order[0], 1);
  ck_assert_int_eq(order[1], 2);
  /* An ordinary post from another thread behind lazy ones wakes the loop, which runs all three in
   * order (the lazy items queued first do not count as a pending wake-up). */
  loopq_post_lazy(q, record, (void *)3);
  loopq_post_lazy(q, record, (void *)4);
  struct poster p = {q, 5};
  pthread_t th;
  pthread_create(&th, NULL, post_ordinary, &p);
  pthread_join(th, NULL);
  run_for(&loop, 30000);
  ck_assert_int_eq(norder, 5);
  for (int i = 2; i < 5; i++)
    ck_assert_int_eq(order[i], i + 1);
  /* A lazy post behind a pending ordinary one rides on its wake-up. */
  loopq_post(q, record, (void *)6);
  loopq_post_lazy(q, record_and_stop, (void *)7);
  run_for(&loop, 30000);
  ck_assert_int_eq(norder, 7);
  ck_assert_int_eq(order[5], 6);
  ck_assert_int_eq(order[6], 7);
  /* Destroy runs lazy items still queued. */
  loopq_post_lazy(q, record, (void *)8);
  loopq_destroy(q);
  ck_assert_int_eq(norder, 8);
  ck_assert_int_eq(order[7], 8);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

#define MX_THREADS 4
#define MX_POSTS   20000

struct mx_state {
  uv_loop_t loop;
  loopq_t *q;
  int next[MX_THREADS]; /* loop thread only */
  int total, bad;
};

struct mx_item {
  struct mx_state *st;
  int thread, seq;
};

static void mx_run(void *arg)
{
  struct mx_item *it = arg;
  struct mx_state *st = it->st;
  if (it->seq != st->next[it->thread]++) /* FIFO per poster, lazy or not */
    st->bad++;
  if (++st->total == MX_THREADS * MX_POSTS)
    uv_stop(&st->loop);
  free(it);
}

struct mx_poster {
  struct mx_state *st;
  int id;
};

/* Every third post lazy; the last one ordinary, so that everything runs without a flush. */
static void *mx_post_thread(void *arg)
{
  struct mx_poster *p = arg;
  for (int i = 0; i < MX_POSTS; i++) {
    struct mx_item *it = xmalloc(sizeof(*it));
    *it = (struct mx_item){p->st, p->id, i};
    if (i % 3 == 1 && i != MX_POSTS - 1)
      loopq_post_lazy(p->st->q, mx_run, it);
    else
      loopq_post(p->st->q, mx_run, it);
  }
  return NULL;
}

START_TEST(test_loopq_lazy_threads)
{
  static struct mx_state st;
  memset(&st, 0, sizeof(st));
  uv_loop_init(&st.loop);
  st.q = loopq_create(&st.loop);
  pthread_t t[MX_THREADS];
  struct mx_poster p[MX_THREADS];
  for (int i = 0; i < MX_THREADS; i++) {
    p[i] = (struct mx_poster){&st, i};
    pthread_create(&t[i], NULL, mx_post_thread, &p[i]);
  }
  uv_run(&st.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < MX_THREADS; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(st.total, MX_THREADS * MX_POSTS);
  ck_assert_int_eq(st.bad, 0);
  loopq_destroy(st.q);
  uv_run(&st.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&st.loop), 0);
}
END_TEST

/* ---- a lazy row over gRPC ---- */

static atomic_int handled;
static int64_t arrival; /* loop thread */

/* InternalKVGet: echoes the key. Lazy when the key starts with "lazy". */
static void echo_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  arrival = rpc_call_arrival_ms(call);
  atomic_fetch_add(&handled, 1);
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  r.found = 1;
  r.value = ((const Rayc__KVGetRequest *)m)->key;
  rpc_reply(call, &r.base);
}

static int get_lazy(const ProtobufCMessage *m)
{
  const Rayc__KVGetRequest *r = (const Rayc__KVGetRequest *)m;
  return r->key.len >= 4 && memcmp(r->key.data, "lazy", 4) == 0;
}

static const rpc_method_t methods[] = {
    {.service = KV_SVC, .method = "InternalKVGet", .handler = echo_get, .required = "key", .lazy = get_lazy},
};

struct caller {
  rpc_channel_t *ch;
  const char *key;
  int rc;
  size_t value_len;
};

static void *call_thread(void *arg)
{
  struct caller *c = arg;
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  get.key = (ProtobufCBinaryData){.len = strlen(c->key), .data = (uint8_t *)c->key};
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  c->rc = rpc_call_sync(c->ch, KV_SVC, "InternalKVGet", &get.base, 60000, &resp, &detail);
  if (c->rc == 0)
    c->value_len = ((Rayc__KVGetReply *)resp)->value.len;
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  free(detail);
  return NULL;
}

START_TEST(test_lazy_row)
{
  log_init("test_rpc_lazy", LOG_ERROR);
  uv_loop_t loop;
  uv_loop_init(&loop);
  rpc_server_opts_t so = {.token = TOKEN, .loop = &loop};
  rpc_server_t *s = rpc_server_create(methods, ARRAY_LEN(methods), &so);
  ck_assert_ptr_nonnull(s);
  int port = rpc_server_listen(s, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get(c, target);

  /* A lazy call: its handler does not run while the loop just runs, but at the flush. */
  atomic_store(&handled, 0);
  int64_t sent = now_ms();
  struct caller lz = {ch, "lazy-key", -1, 0};
  pthread_t th;
  pthread_create(&th, NULL, call_thread, &lz);
  run_for(&loop, 500);
  int early = atomic_load(&handled);
  ck_assert_int_eq(early, 0);
  int64_t flushed = 0;
  for (int i = 0; i < 600 && atomic_load(&handled) == 0; i++) {
    run_for(&loop, 50);
    flushed = now_ms();
    rpc_server_flush(s);
  }
  int got = atomic_load(&handled);
  ck_assert_int_eq(got, 1);
  ck_assert_int_ge(arrival, sent); /* when it came, not when it was handled */
  ck_assert_int_le(arrival, flushed);
  pthread_join(th, NULL);
  ck_assert_int_eq(lz.rc, 0);
  ck_assert_int_eq((int)lz.value_len, 8);

  /* An ordinary call of the same row: handled with no flush. */
  struct caller ea = {ch, "eager", -1, 0};
  pthread_create(&th, NULL, call_thread, &ea);
  for (int i = 0; i < 600 && atomic_load(&handled) == 1; i++)
    run_for(&loop, 50);
  got = atomic_load(&handled);
  ck_assert_int_eq(got, 2);
  pthread_join(th, NULL);
  ck_assert_int_eq(ea.rc, 0);
  ck_assert_int_eq((int)ea.value_len, 5);

  rpc_client_destroy(c);
  rpc_server_destroy(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

int main(void)
{
  Suite *su = suite_create("rpc_lazy");
  TCase *tc = tcase_create("lazy");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_loopq_lazy);
  tcase_add_test(tc, test_loopq_lazy_threads);
  tcase_add_test(tc, test_lazy_row);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
