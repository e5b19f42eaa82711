/*
 * Cold methods (RPC_COLD, common/rpc_server.c): a table row that is not registered with gRPC and is
 * served from the server's unregistered requests by its path. Checked over real gRPC on loopback
 * TCP, side by side with a hot (registered) row of the same server: a cold call is answered by its
 * handler with the same reply, refused without the token with the same status and text, refused
 * when malformed or missing a required field with the same status and text, counted in the same
 * per-method metrics; an unknown path gets UNIMPLEMENTED (UNAUTHENTICATED without the token); many
 * cold calls in flight are all answered; and a server destroyed while a handler holds a cold call
 * survives the late reply, with and without a loop. Every test runs after rpc_small_reads_setup(), as
 * in the GCS; the last one also with small_reads and no_header_table, with a 20 MiB request.
 */
#include <check.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h"

#define TOKEN     "0123456789abcdef0123456789abcdef"
#define KV_SVC    (&rayc__internal_kvgcs_service__descriptor)
#define BIG_VALUE ((size_t)20 << 20)

static atomic_int handled;         /* handler runs */
static _Atomic(rpc_call_t *) held; /* a call hold_keys keeps */
static sem_t held_sem;

/* InternalKVGet (hot) and InternalKVPut (cold): echo the key, so a reply proves the handler ran on
 * this request. */
static void echo_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  atomic_fetch_add(&handled, 1);
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  r.found = 1;
  r.value = ((const Rayc__KVGetRequest *)m)->key;
  rpc_reply(call, &r.base);
}

static void echo_put(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  atomic_fetch_add(&handled, 1);
  Rayc__KVPutReply r = RAYC__KVPUT_REPLY__INIT;
  const Rayc__KVPutRequest *req = (const Rayc__KVPutRequest *)m;
  r.added = req->key.len == 5 || /* "hello", or the big value whole */
            (req->value.len == BIG_VALUE && req->value.data[0] == 'a' && req->value.data[BIG_VALUE - 1] == 'z');
  rpc_reply(call, &r.base);
}

/* InternalKVDel (cold, requires key): answers with the key's length. */
static void on_del(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  atomic_fetch_add(&handled, 1);
  Rayc__KVDelReply r = RAYC__KVDEL_REPLY__INIT;
  r.deleted = (int32_t)((const Rayc__KVDelRequest *)m)->key.len;
  rpc_reply(call, &r.base);
}

/* InternalKVKeys (cold): held until the test replies. */
static void hold_keys(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  (void)m;
  atomic_store(&held, call);
  sem_post(&held_sem);
}

static const rpc_method_t methods[] = {
    {.service = KV_SVC, .method = "InternalKVGet", .handler = echo_get, .required = "key"},
    {.service = KV_SVC, .method = "InternalKVPut", .handler = echo_put, .required = "key", .flags = RPC_COLD},
    {.service = KV_SVC, .method = "InternalKVDel", .handler = on_del, .required = "key", .flags = RPC_COLD},
    {.service = KV_SVC, .method = "InternalKVKeys", .handler = hold_keys, .flags = RPC_COLD},
};

typedef struct raw_result {
  grpc_status_code status;
  char text[256];
} raw_result_t;

/* Sends raw bytes to path through the C core directly, with token (NULL: none) as the
 * `authorization` metadata; returns the status and its text. */
static raw_result_t raw_call(const char *target, const char *path, const void *bytes, size_t len, const char *token)
{
  grpc_init();
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(30000, GPR_TIMESPAN));
  grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, grpc_slice_from_static_string(path),
                                             NULL, dl, NULL);
  grpc_slice payload = grpc_slice_from_copied_buffer(bytes, len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);
  grpc_metadata auth = {.key = grpc_slice_from_static_string("authorization"),
                        .value = grpc_slice_from_static_string(token ? token : "")};
  grpc_metadata_array init_md, trail_md;
  grpc_metadata_array_init(&init_md);
  grpc_metadata_array_init(&trail_md);
  grpc_byte_buffer *recv = NULL;
  raw_result_t res = {.status = GRPC_STATUS_OK};
  grpc_slice details;
  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = token ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = token ? &auth : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
  ops[5].data.recv_status_on_client.status = &res.status;
  ops[5].data.recv_status_on_client.status_details = &details;
  ck_assert_int_eq(grpc_call_start_batch(call, ops, 6, ops, NULL), GRPC_CALL_OK);
  grpc_event ev = grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  ck_assert_int_eq(ev.type, GRPC_OP_COMPLETE);
  snprintf(res.text, sizeof(res.text), "%.*s", (int)GRPC_SLICE_LENGTH(details),
           (const char *)GRPC_SLICE_START_PTR(details));
  if (recv)
    grpc_byte_buffer_destroy(recv);
  grpc_byte_buffer_destroy(bb);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&init_md);
  grpc_metadata_array_destroy(&trail_md);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
  grpc_channel_destroy(ch);
  grpc_shutdown();
  return res;
}

static rpc_server_t *server_start(uv_loop_t *loop, char *target, size_t len)
{
  rpc_server_opts_t so = {.token = TOKEN, .loop = loop};
  rpc_server_t *s = rpc_server_create(methods, ARRAY_LEN(methods), &so);
  ck_assert_ptr_nonnull(s);
  int port = rpc_server_listen(s, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  snprintf(target, len, "127.0.0.1:%d", port);
  return s;
}

/* The value of a metric sample ("name{labels}"), or -1 when it is absent. */
static double sample(const char *name)
{
  size_t len;
  char *text = metrics_render(&len);
  double v = -1;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    size_t n = strlen(name);
    if (strncmp(line, name, n) == 0 && line[n] == ' ')
      v = strtod(line + n + 1, NULL);
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return v;
}

#define DEL_COUNT  "rayc_grpc_server_req_handling_seconds_count{Method=\"rayc.InternalKVGcsService/InternalKVDel\"}"
#define DEL_FAILED "rayc_grpc_server_req_failed_total{Method=\"rayc.InternalKVGcsService/InternalKVDel\"}"
#define PUT_COUNT  "rayc_grpc_server_req_handling_seconds_count{Method=\"rayc.InternalKVGcsService/InternalKVPut\"}"

static ProtobufCBinaryData bin(const char *s)
{
  return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)s};
}

START_TEST(test_cold_served)
{
  log_init("test_rpc_cold", LOG_ERROR);
  char target[64];
  rpc_server_t *s = server_start(NULL, target, sizeof(target));
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get(c, target);
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  atomic_store(&handled, 0);
  double del0 = fmax(sample(DEL_COUNT), 0), del_failed0 = fmax(sample(DEL_FAILED), 0);
  /* The hot row, then the cold ones: each reply is its handler's answer to this request. */
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  get.key = bin("hot-key");
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVGet", &get.base, 30000, &resp, &detail), 0);
  ck_assert_int_eq((int)((Rayc__KVGetReply *)resp)->value.len, 7);
  protobuf_c_message_free_unpacked(resp, NULL);
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.key = bin("hello");
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVPut", &put.base, 30000, &resp, &detail), 0);
  ck_assert(((Rayc__KVPutReply *)resp)->added);
  protobuf_c_message_free_unpacked(resp, NULL);
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT;
  del.key = bin("twelve bytes");
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVDel", &del.base, 30000, &resp, &detail), 0);
  ck_assert_int_eq(((Rayc__KVDelReply *)resp)->deleted, 12);
  protobuf_c_message_free_unpacked(resp, NULL);
  ck_assert_int_eq(atomic_load(&handled), 3);
  /* Counted per method like a hot row: two calls of InternalKVDel, one of them failed. */

  del.key = bin("");
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVDel", &del.base, 30000, &resp, &detail),
                   RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(detail, "InternalKVDel: "));
  free(detail);
  ck_assert_int_eq(atomic_load(&handled), 3);
  ck_assert(sample(DEL_COUNT) == del0 + 2);
  ck_assert(sample(DEL_FAILED) == del_failed0 + 1);
  ck_assert(sample(PUT_COUNT) >= 1);
  rpc_client_destroy(c);
  rpc_server_destroy(s);
}
END_TEST

/* A cold row refuses exactly what a hot row refuses, with the same status and text. */
START_TEST(test_cold_refused_like_hot)
{
  log_init("test_rpc_cold", LOG_ERROR);
  char target[64];
  rpc_server_t *s = server_start(NULL, target, sizeof(target));
  atomic_store(&handled, 0);
  const char *hot = "/rayc.InternalKVGcsService/InternalKVGet", *cold = "/rayc.InternalKVGcsService/InternalKVDel";
  uint8_t good[16];
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT; /* same wire shape as a KVGetRequest */
  del.key = bin("k");
  size_t n = protobuf_c_message_pack(&del.base, good);
  const char *tokens[] = {NULL, "", "0123456789abcdef0123456789abcdeX"};
  for (size_t i = 0; i < ARRAY_LEN(tokens); i++) {
    raw_result_t h = raw_call(target, hot, good, n, tokens[i]), c = raw_call(target, cold, good, n, tokens[i]);
    ck_assert_int_eq(h.status, GRPC_STATUS_UNAUTHENTICATED);
    ck_assert_int_eq(c.status, GRPC_STATUS_UNAUTHENTICATED);
    ck_assert_str_eq(c.text, h.text);
  }
  ck_assert_uint_eq(rpc_server_auth_failures(s), 6);
  /* Malformed bytes, and a request without its required field. */
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  raw_result_t h = raw_call(target, hot, junk, sizeof(junk), TOKEN),
               c = raw_call(target, cold, junk, sizeof(junk), TOKEN);
  ck_assert_int_eq(c.status, GRPC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(h.status, GRPC_STATUS_INVALID_ARGUMENT);
  ck_assert_str_eq(c.text, h.text);
  h = raw_call(target, hot, "", 0, TOKEN);
  c = raw_call(target, cold, "", 0, TOKEN);
  ck_assert_int_eq(c.status, GRPC_STATUS_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(h.text, "InternalKVGet: "));
  ck_assert_ptr_nonnull(strstr(c.text, "InternalKVDel: "));
  ck_assert_str_eq(strchr(c.text, ' '), strchr(h.text, ' ')); /* the same reason */
  ck_assert_uint_eq(rpc_server_invalid_requests(s), 4);
  /* The good request passes both. */
  ck_assert_int_eq(raw_call(target, hot, good, n, TOKEN).status, GRPC_STATUS_OK);
  ck_assert_int_eq(raw_call(target, cold, good, n, TOKEN).status, GRPC_STATUS_OK);
  ck_assert_int_eq(atomic_load(&handled), 2);
  /* Paths no row has: UNIMPLEMENTED with the token, UNAUTHENTICATED without. */
  ck_assert_int_eq(raw_call(target, "/rayc.InternalKVGcsService/Nope", good, n, TOKEN).status,
                   GRPC_STATUS_UNIMPLEMENTED);
  ck_assert_int_eq(raw_call(target, "/rayc.NoService/InternalKVDel", good, n, TOKEN).status, GRPC_STATUS_UNIMPLEMENTED);
  ck_assert_int_eq(raw_call(target, "/rayc.InternalKVGcsService/InternalKVDelX", "", 0, TOKEN).status,
                   GRPC_STATUS_UNIMPLEMENTED);
  ck_assert_int_eq(raw_call(target, "/rayc.InternalKVGcsService/Nope", good, n, NULL).status,
                   GRPC_STATUS_UNAUTHENTICATED);
  ck_assert_int_eq(atomic_load(&handled), 2);
  rpc_server_destroy(s);
}
END_TEST

typedef struct many {
  uv_loop_t loop;
  uv_async_t stop;
  rpc_server_t *s;
  atomic_int ok, failed;
} many_t;

static void many_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)detail;
  many_t *m = arg;
  if (status == 0 && resp && ((Rayc__KVDelReply *)resp)->deleted == 6)
    atomic_fetch_add(&m->ok, 1);
  else
    atomic_fetch_add(&m->failed, 1);
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
}

static void *loop_main(void *arg)
{
  uv_run(arg, UV_RUN_DEFAULT);
  return NULL;
}

/* On the loop's thread, as rpc.h asks of a server with a loop; the loop then has nothing left. */
static void on_stop(uv_async_t *a)
{
  many_t *m = a->data;
  rpc_server_destroy(m->s);
  uv_close((uv_handle_t *)a, NULL);
}

/* 2,000 cold calls in flight at once (more than the unregistered requests kept outstanding), served
 * on a loop: every one answered. */
START_TEST(test_cold_many_on_loop)
{
  log_init("test_rpc_cold", LOG_ERROR);
  many_t m = {0};
  uv_loop_init(&m.loop);
  uv_async_init(&m.loop, &m.stop, on_stop);
  char target[64];
  m.stop.data = &m;
  m.s = server_start(&m.loop, target, sizeof(target));
  pthread_t th;
  pthread_create(&th, NULL, loop_main, &m.loop);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get(c, target);
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT;
  del.key = bin("sixsix");
  enum { N = 2000 };
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVDel", &del.base, 60000, many_done, &m), 0);
  for (int i = 0; i < 6000 && atomic_load(&m.ok) + atomic_load(&m.failed) < N; i++)
    usleep(10000);
  ck_assert_int_eq(atomic_load(&m.ok), N);
  ck_assert_int_eq(atomic_load(&m.failed), 0);
  rpc_client_destroy(c);
  uv_async_send(&m.stop);
  pthread_join(th, NULL);
  ck_assert_int_eq(uv_loop_close(&m.loop), 0);
}
END_TEST

/* A server destroyed while a handler holds a cold call: the client sees CANCELLED, the late reply
 * frees the orphan (no crash; the asan build checks for leaks). */
START_TEST(test_cold_orphaned)
{
  log_init("test_rpc_cold", LOG_ERROR);
  sem_init(&held_sem, 0, 0);
  char target[64];
  rpc_server_t *s = server_start(NULL, target, sizeof(target));
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get(c, target);
  Rayc__KVKeysRequest keys = RAYC__KVKEYS_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  many_t m = {0};
  ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVKeys", &keys.base, 60000, many_done, &m), 0);
  sem_wait(&held_sem);
  rpc_server_destroy(s);
  for (int i = 0; i < 3000 && atomic_load(&m.failed) == 0; i++)
    usleep(10000);
  ck_assert_int_eq(atomic_load(&m.failed), 1);
  Rayc__KVKeysReply r = RAYC__KVKEYS_REPLY__INIT;
  rpc_reply(atomic_load(&held), &r.base);
  /* Nothing listens any more. */
  ck_assert_int_ne(rpc_call_sync(ch, KV_SVC, "InternalKVKeys", &keys.base, 2000, &resp, &detail), 0);
  free(detail);
  rpc_client_destroy(c);
  sem_destroy(&held_sem);
}
END_TEST

/* A server with small reads and no header table (the GCS's settings) takes a 20 MiB request on a
 * cold row (read by the server itself) and many small calls on one connection. */
START_TEST(test_lean_server_big_request)
{
  log_init("test_rpc_cold", LOG_ERROR);
  rpc_server_opts_t so = {.token = TOKEN, .small_reads = 1, .no_header_table = 1, .no_bdp_probe = 1};
  rpc_server_t *s = rpc_server_create(methods, ARRAY_LEN(methods), &so);
  ck_assert_ptr_nonnull(s);
  int port = rpc_server_listen(s, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get(c, target);
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  for (int i = 0; i < 200; i++) {
    Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
    get.key = bin("k");
    ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVGet", &get.base, 30000, &resp, &detail), 0);
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  uint8_t *big = xmalloc(BIG_VALUE);
  memset(big, 'm', BIG_VALUE);
  big[0] = 'a';
  big[BIG_VALUE - 1] = 'z';
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.key = bin("big");
  put.value = (ProtobufCBinaryData){.len = BIG_VALUE, .data = big};
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVPut", &put.base, 60000, &resp, &detail), 0);
  ck_assert(((Rayc__KVPutReply *)resp)->added);
  protobuf_c_message_free_unpacked(resp, NULL);
  free(big);
  rpc_client_destroy(c);
  rpc_server_destroy(s);
}
END_TEST

int main(void)
{
  /* As the GCS does: before any gRPC use; the environment is left as it was. */
  const char *env = getenv("GRPC_EXPERIMENTS");
  char *before = env ? xstrdup(env) : NULL;
  if (rpc_small_reads_setup() != 0 ||
      (before ? !getenv("GRPC_EXPERIMENTS") || strcmp(before, getenv("GRPC_EXPERIMENTS"))
              : getenv("GRPC_EXPERIMENTS") != NULL)) {
    fprintf(stderr, "rpc_small_reads_setup failed or left GRPC_EXPERIMENTS changed\n");
    return EXIT_FAILURE;
  }
  free(before);
  Suite *su = suite_create("rpc_cold");
  TCase *tc = tcase_create("cold");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_cold_served);
  tcase_add_test(tc, test_cold_refused_like_hot);
  tcase_add_test(tc, test_cold_many_on_loop);
  tcase_add_test(tc, test_cold_orphaned);
  tcase_add_test(tc, test_lean_server_big_request);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
