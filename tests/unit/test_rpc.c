/*
 * Tests of the gRPC layer (common/rpc_server.c, rpc_client.c) and the loop hand-off queue (common/loopq.c).
 *
 * Most cases talk to tests/helpers/rpc_test_server (InternalKVGcsService over an in-memory table,
 * handlers on a libuv loop), started with posix_spawn per test: a process that called grpc_init
 * must never fork, so gRPC is only initialised inside tests and fixtures, and the helper is
 * exec'ed. The helper is found through $RAYC_BUILD/tests, else next to this binary. Its exit
 * status is checked at teardown, so under ASan its leaks fail the test too.
 *
 * Some cases run a server in this process (no loop: handlers on the completion-queue thread) to
 * check late replies, client destroy with calls in flight, and the auth counter.
 * Timings (sync latency, pipelined calls/s) are printed, never asserted.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loopq.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h" /* only the GCS messages: independent of other protos */

extern char **environ;

/* A bytes field borrowing len bytes at p. */
static ProtobufCBinaryData kv_bytes(const void *p, size_t len)
{
  ProtobufCBinaryData b = {len, (uint8_t *)(uintptr_t)p};
  return b;
}

/* Frees an unpacked message (accepts NULL). */
static void msg_free(void *m)
{
  if (m)
    protobuf_c_message_free_unpacked((ProtobufCMessage *)m, NULL);
}

#define TOKEN  "0123456789abcdef0123456789abcdef"
#define KV_SVC (&rayc__internal_kvgcs_service__descriptor)
#define NCALLS 10000

/* ---- the helper process ---- */

static struct {
  pid_t pid;
  int in_fd; /* its stdin: closing it also stops it */
  int port;
  char target[64];
} helper = {.pid = -1, .in_fd = -1};

static void helper_path(char *out, size_t n)
{
  const char *b = getenv("RAYC_BUILD");
  if (b && *b) {
    snprintf(out, n, "%s/tests/rpc_test_server", b);
    return;
  }
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ck_assert_int_gt(len, 0);
  self[len] = '\0';
  snprintf(out, n, "%s/rpc_test_server", dirname(self));
}

/* Reads the port line the helper prints, waiting at most 20 s. */
static int helper_read_port(int fd)
{
  char line[32];
  size_t n = 0;
  while (n < sizeof(line) - 1) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20000) != 1)
      return -1;
    ssize_t r = read(fd, line + n, 1);
    if (r <= 0)
      return -1;
    if (line[n] == '\n')
      break;
    n++;
  }
  line[n] = '\0';
  return atoi(line);
}

static void helper_start(const char *token)
{
  char path[PATH_MAX + 32];
  helper_path(path, sizeof(path));
  int out[2], in[2];
  ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  char *argv[] = {path, (char *)token, NULL};
  int err = posix_spawn(&helper.pid, path, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  ck_assert_msg(err == 0, "cannot spawn %s: %s", path, strerror(err));
  helper.in_fd = in[1];
  helper.port = helper_read_port(out[0]);
  close(out[0]);
  ck_assert_msg(helper.port > 0, "%s printed no port", path);
  snprintf(helper.target, sizeof(helper.target), "127.0.0.1:%d", helper.port);
}

/* Stops the helper; returns its exit status (or -1 when it died of a signal). */
static int helper_stop(void)
{
  if (helper.pid < 0)
    return 0;
  kill(helper.pid, SIGTERM);
  close(helper.in_fd);
  int st = 0;
  while (waitpid(helper.pid, &st, 0) < 0 && errno == EINTR)
    ;
  helper.pid = -1;
  helper.in_fd = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- fixture: helper + a client with the right token (no loop) ---- */

static rpc_client_t *cli;
static rpc_channel_t *chan;

static void kv_setup(void)
{
  log_init("test_rpc", LOG_ERROR);
  helper_start(TOKEN);
  rpc_client_opts_t o = {.token = TOKEN};
  cli = rpc_client_create(&o);
  ck_assert_ptr_nonnull(cli);
  chan = rpc_channel_get(cli, helper.target);
}

static void kv_teardown(void)
{
  rpc_client_destroy(cli);
  cli = NULL;
  ck_assert_int_eq(helper_stop(), 0);
}

/* ---- small call wrappers ---- */

static int kv_put(rpc_channel_t *ch, const char *ns, const char *key, const char *val, char **detail)
{
  Rayc__KVPutRequest req = RAYC__KVPUT_REQUEST__INIT;
  req.ns = (char *)ns;
  req.key = kv_bytes(key, strlen(key));
  req.value = kv_bytes(val, strlen(val));
  req.overwrite = 1;
  ProtobufCMessage *resp = NULL;
  int err = rpc_call_sync(ch, KV_SVC, "InternalKVPut", &req.base, 5000, &resp, detail);
  msg_free(resp);
  return err;
}

/* Returns 0 and *val (new, NUL-terminated; NULL when not found), or the error. */
static int kv_get(rpc_channel_t *ch, const char *ns, const char *key, int timeout_ms, char **val, char **detail)
{
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)ns;
  req.key = kv_bytes(key, strlen(key));
  ProtobufCMessage *resp = NULL;
  *val = NULL;
  int err = rpc_call_sync(ch, KV_SVC, "InternalKVGet", &req.base, timeout_ms, &resp, detail);
  if (err == 0) {
    Rayc__KVGetReply *r = (Rayc__KVGetReply *)resp;
    if (r->found)
      *val = xasprintf("%.*s", (int)r->value.len, (const char *)r->value.data);
    msg_free(resp);
  }
  return err;
}

/* ---- sync ---- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

START_TEST(test_sync_10k)
{
  /* 10 rounds of 1,000 calls; the machine is shared, so report the best and the median round. */
  char key[32], val[32];
  double round_us[10];
  for (int r = 0; r < 10; r++) {
    int64_t t0 = now_us();
    for (int i = r * NCALLS / 10; i < (r + 1) * NCALLS / 10; i++) {
      snprintf(key, sizeof(key), "k%d", i / 2);
      snprintf(val, sizeof(val), "v%d", i / 2);
      if (i % 2 == 0) {
        ck_assert_int_eq(kv_put(chan, "sync", key, val, NULL), 0);
        continue;
      }
      char *got;
      ck_assert_int_eq(kv_get(chan, "sync", key, 5000, &got, NULL), 0);
      ck_assert_ptr_nonnull(got);
      ck_assert_str_eq(got, val);
      free(got);
    }
    round_us[r] = (double)(now_us() - t0) / (NCALLS / 10);
  }
  qsort(round_us, 10, sizeof(double), cmp_double);
  printf("rpc: sync unary round trip over TCP loopback (handler on a loop): best %.1f us, median %.1f us "
         "(10 x %d calls)\n",
         round_us[0], round_us[5], NCALLS / 10);
}
END_TEST

/* ---- async, no loop: callbacks on the client thread ---- */

struct async_state {
  sem_t window; /* bounds the calls in flight */
  atomic_int done, bad;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int total;
  pthread_t caller;
  atomic_int on_caller_thread;
};

static void async_finish(struct async_state *st)
{
  sem_post(&st->window);
  if (pthread_equal(pthread_self(), st->caller))
    atomic_fetch_add(&st->on_caller_thread, 1);
  if (atomic_fetch_add(&st->done, 1) + 1 == st->total) {
    pthread_mutex_lock(&st->mu);
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
  }
}

static struct async_state *g_async;

static void async_put_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  (void)detail;
  if (status != 0 || !resp)
    atomic_fetch_add(&g_async->bad, 1);
  msg_free(resp);
  async_finish(g_async);
}

static void async_get_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)detail;
  char want[32];
  snprintf(want, sizeof(want), "val-%d", (int)(intptr_t)arg);
  Rayc__KVGetReply *r = (Rayc__KVGetReply *)resp;
  if (status != 0 || !r || !r->found || r->value.len != strlen(want) || memcmp(r->value.data, want, r->value.len))
    atomic_fetch_add(&g_async->bad, 1);
  msg_free(resp);
  async_finish(g_async);
}

static void async_wait(struct async_state *st)
{
  pthread_mutex_lock(&st->mu);
  while (atomic_load(&st->done) < st->total)
    pthread_cond_wait(&st->cv, &st->mu);
  pthread_mutex_unlock(&st->mu);
}

static void async_run(struct async_state *st, int get, int window)
{
  char key[32], val[32];
  atomic_store(&st->done, 0);
  st->total = NCALLS;
  sem_init(&st->window, 0, (unsigned)window);
  for (int i = 0; i < NCALLS; i++) {
    sem_wait(&st->window);
    snprintf(key, sizeof(key), "key-%d", i);
    snprintf(val, sizeof(val), "val-%d", i);
    int err;
    if (get) {
      Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
      req.ns = (char *)"async";
      req.key = kv_bytes(key, strlen(key));
      err = rpc_call(chan, KV_SVC, "InternalKVGet", &req.base, 10000, async_get_done, (void *)(intptr_t)i);
    } else {
      Rayc__KVPutRequest req = RAYC__KVPUT_REQUEST__INIT;
      req.ns = (char *)"async";
      req.key = kv_bytes(key, strlen(key));
      req.value = kv_bytes(val, strlen(val));
      err = rpc_call(chan, KV_SVC, "InternalKVPut", &req.base, 10000, async_put_done, NULL);
    }
    ck_assert_int_eq(err, 0);
  }
  async_wait(st);
  sem_destroy(&st->window);
}

START_TEST(test_async_10k)
{
  struct async_state st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .caller = pthread_self()};
  g_async = &st;
  int64_t t0 = now_us();
  async_run(&st, 0, 256);
  int64_t t1 = now_us();
  async_run(&st, 1, 256);
  int64_t t2 = now_us();
  ck_assert_int_eq(atomic_load(&st.bad), 0);
  ck_assert_int_eq(atomic_load(&st.on_caller_thread), 0);
  printf("rpc: pipelined async calls (256 in flight): puts %.0f calls/s, gets %.0f calls/s\n",
         NCALLS * 1e6 / (double)(t1 - t0), NCALLS * 1e6 / (double)(t2 - t1));
  g_async = NULL;
}
END_TEST

/* ---- async with a loop: callbacks on the loop thread ---- */

struct loop_state {
  uv_loop_t loop;
  rpc_client_t *c;
  int done, bad, total;
  pthread_t loop_thread;
};

static void loop_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  struct loop_state *ls = arg;
  (void)detail;
  if (status != 0 || !resp || !pthread_equal(pthread_self(), ls->loop_thread))
    ls->bad++;
  msg_free(resp);
  if (++ls->done == ls->total)
    uv_stop(&ls->loop);
}

static void cancelled_on_loop(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)detail;
  msg_free(resp);
  *(int *)arg = status;
}

START_TEST(test_async_loop)
{
  struct loop_state ls = {.total = 2000, .loop_thread = pthread_self()};
  uv_loop_init(&ls.loop);
  rpc_client_opts_t o = {.loop = &ls.loop, .token = TOKEN};
  ls.c = rpc_client_create(&o);
  rpc_channel_t *ch = rpc_channel_get(ls.c, helper.target);
  ck_assert_ptr_eq(ch, rpc_channel_get(ls.c, helper.target)); /* channels are cached per target */
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"loop";
  req.key = kv_bytes("x", 1);
  int64_t t0 = now_us();
  for (int i = 0; i < ls.total; i++) /* all in flight at once */
    ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVGet", &req.base, 10000, loop_done, &ls), 0);
  uv_run(&ls.loop, UV_RUN_DEFAULT);
  int64_t t1 = now_us();
  ck_assert_int_eq(ls.done, ls.total);
  ck_assert_int_eq(ls.bad, 0);
  printf("rpc: %d calls in flight, callbacks on a loop: %.0f calls/s\n", ls.total, ls.total * 1e6 / (double)(t1 - t0));
  /* A call still in flight at destroy gets its callback, CANCELLED, on this thread, before destroy returns. */
  int status = 1;
  Rayc__KVGetRequest slow = RAYC__KVGET_REQUEST__INIT;
  slow.ns = (char *)"__sleep";
  slow.key = kv_bytes("10000", 5);
  ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVGet", &slow.base, 0, cancelled_on_loop, &status), 0);
  uv_run(&ls.loop, UV_RUN_NOWAIT);
  rpc_client_destroy(ls.c); /* from the loop thread, as required */
  ck_assert_int_eq(status, RAYC_ECANCELLED);
  uv_run(&ls.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&ls.loop), 0);
}
END_TEST

/* ---- errors ---- */

static int err_status;
static char err_detail[256];

static void err_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  /* Runs on the client thread: record, assert later on the test thread. */
  err_status = resp ? 12345 : status;
  snprintf(err_detail, sizeof(err_detail), "%s", detail);
  msg_free(resp);
  sem_post(arg);
}

START_TEST(test_error_reply)
{
  char *val, *detail = NULL;
  ck_assert_int_eq(kv_get(chan, "__fail", "boom", 5000, &val, &detail), RAYC_EINFEASIBLE);
  ck_assert_ptr_nonnull(detail);
  ck_assert_str_eq(detail, "requested failure: boom");
  free(detail);
  /* The same through the async path. */
  sem_t sem;
  sem_init(&sem, 0, 0);
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"__fail";
  req.key = kv_bytes("bang", 4);
  ck_assert_int_eq(rpc_call(chan, KV_SVC, "InternalKVGet", &req.base, 5000, err_done, &sem), 0);
  sem_wait(&sem);
  ck_assert_int_eq(err_status, RAYC_EINFEASIBLE);
  ck_assert_str_eq(err_detail, "requested failure: bang");
  sem_destroy(&sem);
  /* A method the service does not have, and a request of the wrong type, never start. */
  ProtobufCMessage *resp = NULL;
  int err = rpc_call_sync(chan, KV_SVC, "NoSuchMethod", &req.base, 1000, &resp, &detail);
  ck_assert_int_eq(err, RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(detail);
  free(detail);
  ck_assert_int_eq(rpc_call(chan, KV_SVC, "InternalKVPut", &req.base, 1000, err_done, &sem), RAYC_EINVALID_ARGUMENT);
}
END_TEST

START_TEST(test_deadline)
{
  char *val, *detail = NULL;
  int64_t t0 = now_ms();
  ck_assert_int_eq(kv_get(chan, "__sleep", "3000", 100, &val, &detail), RAYC_ETIMEOUT);
  int64_t ms = now_ms() - t0;
  ck_assert_int_lt(ms, 1500);
  ck_assert_ptr_nonnull(detail);
  free(detail);
  /* The server keeps serving; it still holds the expired call (answered after its destroy). */
  ck_assert_int_eq(kv_put(chan, "d", "a", "b", NULL), 0);
  ck_assert_int_eq(kv_get(chan, "d", "a", 5000, &val, NULL), 0);
  ck_assert_str_eq(val, "b");
  free(val);
}
END_TEST

/* A channel forgotten while a call is in flight on it: the call is still answered; the next
 * rpc_channel_get of the target makes a working channel; forgetting an unknown target does nothing. */
START_TEST(test_channel_forget)
{
  sem_t sem;
  sem_init(&sem, 0, 0);
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"__sleep";
  req.key = kv_bytes("300", 3);
  err_status = 0;
  ck_assert_int_eq(rpc_call(chan, KV_SVC, "InternalKVGet", &req.base, 10000, err_done, &sem), 0);
  rpc_channel_forget(cli, helper.target);
  chan = NULL;
  rpc_channel_forget(cli, "127.0.0.1:1"); /* never made */
  sem_wait(&sem);
  ck_assert_msg(err_status == 12345, "the call in flight failed: %d (%s)", err_status, err_detail);
  sem_destroy(&sem);
  chan = rpc_channel_get(cli, helper.target);
  char *val = NULL;
  ck_assert_int_eq(kv_put(chan, "f", "k", "v", NULL), 0);
  ck_assert_int_eq(kv_get(chan, "f", "k", 5000, &val, NULL), 0);
  ck_assert_str_eq(val, "v");
  free(val);
}
END_TEST

static grpc_status_code raw_call_token(const char *target, const char *path, const void *bytes, size_t len,
                                       const char *token);

START_TEST(test_auth)
{
  rpc_client_opts_t none = {0}, wrong = {.token = "0123456789abcdef0123456789abcdeX"}, shorter = {.token = "0123"};
  rpc_client_opts_t *opts[] = {&none, &wrong, &shorter};
  for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
    rpc_client_t *c = rpc_client_create(opts[i]);
    rpc_channel_t *ch = rpc_channel_get(c, helper.target);
    char *detail = NULL;
    ck_assert_int_eq(kv_put(ch, "auth", "key", "evil", &detail), RAYC_EUNAUTHENTICATED);
    ck_assert_str_eq(detail, "missing or wrong cluster token");
    free(detail);
    rpc_client_destroy(c);
  }
  /* Paths no table has need the token too: a peer without it learns nothing, not even which
   * methods exist. */
  ck_assert_int_eq(raw_call_token(helper.target, "/rayc.InternalKVGcsService/Nope", "", 0, NULL),
                   GRPC_STATUS_UNAUTHENTICATED);
  ck_assert_int_eq(raw_call_token(helper.target, "/rayc.NoService/X", "", 0, "wrong"), GRPC_STATUS_UNAUTHENTICATED);
  ck_assert_int_eq(raw_call_token(helper.target, "/rayc.InternalKVGcsService/InternalKVPut", "", 0, NULL),
                   GRPC_STATUS_UNAUTHENTICATED);
  ck_assert_int_eq(raw_call_token(helper.target, "/rayc.InternalKVGcsService/Nope", "", 0, TOKEN),
                   GRPC_STATUS_UNIMPLEMENTED);
  /* A token that cannot travel as an HTTP/2 header is refused at once. */
  ck_assert_ptr_null(rpc_client_create(&(rpc_client_opts_t){.token = "bad\ntoken"}));
  char *val = (char *)"unset";
  ck_assert_int_eq(kv_get(chan, "auth", "key", 5000, &val, NULL), 0);
  ck_assert_ptr_null(val); /* nothing was written */
}
END_TEST

/* Sends raw bytes to path through the C core directly, with token (NULL: none) as the
 * `authorization` metadata; returns the gRPC status code. */
static grpc_status_code raw_call_token(const char *target, const char *path, const void *bytes, size_t len,
                                       const char *token)
{
  grpc_init();
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method = grpc_slice_from_static_string(path);
  gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(5000, GPR_TIMESPAN));
  grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, dl, NULL);
  grpc_slice payload = grpc_slice_from_copied_buffer(bytes, len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);
  grpc_metadata auth = {.key = grpc_slice_from_static_string("authorization"),
                        .value = grpc_slice_from_static_string(token ? token : "")};
  grpc_metadata_array init_md, trail_md;
  grpc_metadata_array_init(&init_md);
  grpc_metadata_array_init(&trail_md);
  grpc_byte_buffer *recv = NULL;
  grpc_status_code status = GRPC_STATUS_OK;
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
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  ck_assert_int_eq(grpc_call_start_batch(call, ops, 6, ops, NULL), GRPC_CALL_OK);
  grpc_event ev = grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  ck_assert_int_eq(ev.type, GRPC_OP_COMPLETE);
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
  return status;
}

static grpc_status_code raw_call(const char *target, const char *path, const void *bytes, size_t len)
{
  return raw_call_token(target, path, bytes, len, TOKEN);
}

START_TEST(test_malformed)
{
  /* Field 2 (bytes) claims 100 bytes but carries 3: protobuf-c rejects it. */
  static const char garbage[] = "\x12\x64"
                                "abc";
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(raw_call(helper.target, "/rayc.InternalKVGcsService/InternalKVPut", garbage, sizeof(garbage) - 1),
                     GRPC_STATUS_INVALID_ARGUMENT);
  ck_assert_int_eq(raw_call(helper.target, "/rayc.InternalKVGcsService/Nope", "", 0), GRPC_STATUS_UNIMPLEMENTED);
  ck_assert_int_eq(raw_call(helper.target, "/rayc.NoService/InternalKVPut", "", 0), GRPC_STATUS_UNIMPLEMENTED);
  /* An empty payload is a valid (all-default) message. */
  ck_assert_int_eq(raw_call(helper.target, "/rayc.InternalKVGcsService/InternalKVGet", "", 0), GRPC_STATUS_OK);
  /* Still serving. */
  char *val;
  ck_assert_int_eq(kv_put(chan, "m", "k", "v", NULL), 0);
  ck_assert_int_eq(kv_get(chan, "m", "k", 5000, &val, NULL), 0);
  ck_assert_str_eq(val, "v");
  free(val);
}
END_TEST

/* ---- unreachable ---- */

static int closed_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd); /* bound, never listened, now closed: connecting is refused */
  return ntohs(a.sin_port);
}

START_TEST(test_unreachable)
{
  log_init("test_rpc", LOG_ERROR);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", closed_port());
  rpc_client_opts_t o = {.token = TOKEN};
  rpc_client_t *c = rpc_client_create(&o);
  rpc_channel_t *ch = rpc_channel_get(c, target);
  char *val, *detail = NULL;
  int64_t t0 = now_ms();
  int err = kv_get(ch, "x", "y", 5000, &val, &detail);
  ck_assert_msg(err == RAYC_EUNAVAILABLE || err == RAYC_ETIMEOUT, "got %s", rayc_err_name(err));
  ck_assert_int_lt(now_ms() - t0, 5500);
  ck_assert_ptr_nonnull(detail);
  free(detail);
  /* The async path too; destroy must not hang either. */
  sem_t sem;
  sem_init(&sem, 0, 0);
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVGet", &req.base, 5000, err_done, &sem), 0);
  sem_wait(&sem);
  ck_assert_msg(err_status == RAYC_EUNAVAILABLE || err_status == RAYC_ETIMEOUT, "got %s", rayc_err_name(err_status));
  sem_destroy(&sem);
  rpc_client_destroy(c);
}
END_TEST

/* ---- tables ---- */

static void noop_handler(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  (void)ctx;
  (void)req;
  rpc_reply(call, NULL);
}

#define KV_ROW(m)                                             \
  {                                                           \
    .service = KV_SVC, .method = (m), .handler = noop_handler \
  }

START_TEST(test_methods_check)
{
  log_init("test_rpc", LOG_ERROR);
  const rpc_method_t full[] = {KV_ROW("InternalKVGet"), KV_ROW("InternalKVPut"), KV_ROW("InternalKVDel"),
                               KV_ROW("InternalKVKeys")};
  const rpc_method_t missing[] = {KV_ROW("InternalKVGet"), KV_ROW("InternalKVPut"), KV_ROW("InternalKVKeys")};
  const rpc_method_t dup[] = {KV_ROW("InternalKVGet"), KV_ROW("InternalKVPut"), KV_ROW("InternalKVDel"),
                              KV_ROW("InternalKVKeys"), KV_ROW("InternalKVPut")};
  ck_assert_int_eq(rpc_methods_check(full, ARRAY_LEN(full), KV_SVC), 0);
  ck_assert_int_eq(rpc_methods_check(missing, ARRAY_LEN(missing), KV_SVC), 1);
  ck_assert_int_eq(rpc_methods_check(dup, ARRAY_LEN(dup), KV_SVC), 1);
  ck_assert_int_eq(rpc_methods_check(full, ARRAY_LEN(full), &rayc__node_info_gcs_service__descriptor), 4);
}
END_TEST

START_TEST(test_create_rejects_bad_rows)
{
  log_init("test_rpc", LOG_ERROR);
  const rpc_method_t bad_name[] = {KV_ROW("InternalKVGet"), KV_ROW("InternalKVGett")};
  const rpc_method_t dup[] = {KV_ROW("InternalKVGet"), KV_ROW("InternalKVGet")};
  const rpc_method_t no_handler[] = {{.service = KV_SVC, .method = "InternalKVGet"}};
  ck_assert_ptr_null(rpc_server_create(bad_name, ARRAY_LEN(bad_name), NULL));
  ck_assert_ptr_null(rpc_server_create(dup, ARRAY_LEN(dup), NULL));
  ck_assert_ptr_null(rpc_server_create(no_handler, ARRAY_LEN(no_handler), NULL));
  /* A good table makes a server even if it never starts. */
  const rpc_method_t good[] = {KV_ROW("InternalKVGet")};
  rpc_server_t *s = rpc_server_create(good, ARRAY_LEN(good), NULL);
  ck_assert_ptr_nonnull(s);
  rpc_server_destroy(s);
}
END_TEST

/* ---- in-process server without a loop ---- */

static struct {
  pthread_t test_thread;
  atomic_int on_test_thread;
  rpc_call_t *_Atomic held; /* a Put held by its handler */
  sem_t held_sem;
} inproc;

static void echo_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__KVGetRequest *req = (const Rayc__KVGetRequest *)m;
  if (pthread_equal(pthread_self(), inproc.test_thread))
    atomic_fetch_add(&inproc.on_test_thread, 1);
  if (strncmp(rpc_call_peer(call), "ipv", 3) != 0 && strncmp(rpc_call_peer(call), "unix", 4) != 0)
    atomic_fetch_add(&inproc.on_test_thread, 1000); /* a bad peer text fails the test later */
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  r.found = 1;
  r.value = req->key; /* echo */
  rpc_reply(call, &r.base);
}

static void hold_put(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  (void)m;
  atomic_store(&inproc.held, call);
  sem_post(&inproc.held_sem);
}

static const rpc_method_t inproc_methods[] = {
    {.service = KV_SVC, .method = "InternalKVGet", .handler = echo_get},
    {.service = KV_SVC, .method = "InternalKVPut", .handler = hold_put},
};

static void cancelled_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)detail;
  int *out = arg;
  ck_assert_ptr_null(resp);
  *out = status;
  ck_assert(pthread_equal(pthread_self(), inproc.test_thread)); /* destroy delivers on its thread */
}

static rpc_server_t *inproc_server(const char *addr, int *port)
{
  rpc_server_opts_t so = {.token = TOKEN};
  rpc_server_t *s = rpc_server_create(inproc_methods, ARRAY_LEN(inproc_methods), &so);
  ck_assert_ptr_nonnull(s);
  *port = rpc_server_listen(s, addr);
  ck_assert_int_ge(*port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  return s;
}

START_TEST(test_inproc_noloop)
{
  log_init("test_rpc", LOG_ERROR);
  inproc.test_thread = pthread_self();
  sem_init(&inproc.held_sem, 0, 0);
  int port;
  rpc_server_t *s = inproc_server("127.0.0.1:0", &port);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_client_opts_t co = {.token = TOKEN};
  rpc_client_t *c = rpc_client_create(&co);
  rpc_channel_t *ch = rpc_channel_get(c, target);
  char *val;
  ck_assert_int_eq(kv_get(ch, "", "hello", 5000, &val, NULL), 0);
  ck_assert_str_eq(val, "hello");
  free(val);
  ck_assert_int_eq(atomic_load(&inproc.on_test_thread), 0);
  /* One rejected call is counted. */
  rpc_client_t *bad = rpc_client_create(&(rpc_client_opts_t){.token = "nope"});
  ck_assert_int_eq(kv_get(rpc_channel_get(bad, target), "", "x", 5000, &val, NULL), RAYC_EUNAUTHENTICATED);
  rpc_client_destroy(bad);
  ck_assert_uint_eq(rpc_server_auth_failures(s), 1);
  /* Destroying a client with a call in flight delivers CANCELLED before returning. */
  int status = 1;
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVPut", &put.base, 0, cancelled_done, &status), 0);
  sem_wait(&inproc.held_sem); /* the server's handler holds it */
  rpc_client_destroy(c);
  ck_assert_int_eq(status, RAYC_ECANCELLED);
  /* Destroying the server while the handler holds a call, then replying late: no crash, no leak. */
  rpc_server_destroy(s);
  Rayc__KVPutReply r = RAYC__KVPUT_REPLY__INIT;
  rpc_reply(atomic_load(&inproc.held), &r.base);
  sem_destroy(&inproc.held_sem);
}
END_TEST

/* A reply started just before the server is destroyed still reaches its client: the destroy waits
 * for replies already sent (an actor's worker that answers its last call and exits at once, as
 * rayc_actor_exit does, must not turn that answer into CANCELLED). */
static void sent_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)detail;
  msg_free(resp);
  *(int *)arg = status;
}

START_TEST(test_reply_then_destroy)
{
  log_init("test_rpc", LOG_ERROR);
  inproc.test_thread = pthread_self();
  sem_init(&inproc.held_sem, 0, 0);
  int lost = 0;
  for (int i = 0; i < 150; i++) {
    int port;
    rpc_server_t *s = inproc_server("127.0.0.1:0", &port);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
    int status = 1;
    Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
    ck_assert_int_eq(rpc_call(rpc_channel_get(c, target), KV_SVC, "InternalKVPut", &put.base, 10000, sent_done,
                              &status),
                     0);
    sem_wait(&inproc.held_sem);
    Rayc__KVPutReply r = RAYC__KVPUT_REPLY__INIT;
    rpc_reply(atomic_load(&inproc.held), &r.base);
    rpc_server_destroy(s);
    rpc_client_destroy(c); /* waits for the call's callback */
    lost += status != 0;
  }
  sem_destroy(&inproc.held_sem);
  ck_assert_msg(lost == 0, "%d of 150 replies sent before the server's destroy never arrived", lost);
}
END_TEST

START_TEST(test_unix_socket)
{
  log_init("test_rpc", LOG_ERROR);
  char path[64], target[80];
  snprintf(path, sizeof(path), "/tmp/rayc-test-rpc-%d.sock", (int)getpid());
  snprintf(target, sizeof(target), "unix:%s", path);
  unlink(path);
  int port;
  rpc_server_t *s = inproc_server(target, &port);
  ck_assert_int_eq(port, 0);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get(c, target);
  char *val;
  int64_t t0 = now_us();
  for (int i = 0; i < 2000; i++) {
    ck_assert_int_eq(kv_get(ch, "", "unix", 5000, &val, NULL), 0);
    ck_assert_str_eq(val, "unix");
    free(val);
  }
  printf("rpc: sync unary round trip over a Unix socket: %.1f us/call (handler on the CQ thread)\n",
         (double)(now_us() - t0) / 2000);
  rpc_client_destroy(c);
  rpc_server_destroy(s);
  unlink(path);
}
END_TEST

/* ---- in-process server on a loop, destroyed from inside its own handler ---- */

static struct {
  uv_loop_t loop;
  rpc_server_t *srv;
  rpc_client_t *cli;
  rpc_call_t *held; /* a Put its handler keeps */
  int handled_on_loop, handled_elsewhere;
  int ok, cancelled, other, callbacks, expected;
  int killed;
  rpc_channel_t *ch;
  pthread_t loop_thread;
} lp;

static void lp_maybe_kill(void);

static void lp_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  (void)m;
  if (pthread_equal(pthread_self(), lp.loop_thread))
    lp.handled_on_loop++;
  else
    lp.handled_elsewhere++;
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  rpc_reply(call, &r.base);
}

static void lp_put(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  (void)m;
  lp.held = call;
  lp_maybe_kill();
}

/* Destroys the server from inside a handler, then finishes its own call and the held one late. */
static void lp_del(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  (void)m;
  rpc_server_destroy(lp.srv);
  lp.srv = NULL;
  Rayc__KVDelReply r = RAYC__KVDEL_REPLY__INIT;
  rpc_reply(call, &r.base);
  rpc_reply_error(lp.held, RAYC_EINTERNAL, "too late");
  lp.held = NULL;
}

static void lp_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  (void)detail;
  if (status == 0)
    lp.ok++;
  else if (status == RAYC_ECANCELLED || status == RAYC_EUNAVAILABLE)
    lp.cancelled++; /* calls caught by the destroy */
  else
    lp.other++;
  msg_free(resp);
  if (++lp.callbacks == lp.expected)
    uv_stop(&lp.loop);
  lp_maybe_kill();
}

static const rpc_method_t lp_methods[] = {
    {.service = KV_SVC, .method = "InternalKVGet", .handler = lp_get},
    {.service = KV_SVC, .method = "InternalKVPut", .handler = lp_put},
    {.service = KV_SVC, .method = "InternalKVDel", .handler = lp_del},
};

/* Once the first Gets are answered and the Put is held: send the Del that destroys the server. */
static void lp_maybe_kill(void)
{
  if (lp.killed || lp.ok < 300 || !lp.held)
    return;
  lp.killed = 1;
  rpc_channel_t *ch = lp.ch;
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT;
  ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVDel", &del.base, 5000, lp_done, NULL), 0);
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  for (int i = 0; i < 200; i++) /* racing with the destroy: answered or cancelled, never lost */
    ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVGet", &get.base, 5000, lp_done, NULL), 0);
}

START_TEST(test_loop_server_destroyed_in_handler)
{
  log_init("test_rpc", LOG_ERROR);
  memset(&lp, 0, sizeof(lp));
  lp.loop_thread = pthread_self();
  uv_loop_init(&lp.loop);
  rpc_server_opts_t so = {.loop = &lp.loop, .token = TOKEN};
  lp.srv = rpc_server_create(lp_methods, ARRAY_LEN(lp_methods), &so);
  int port = rpc_server_listen(lp.srv, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(lp.srv), 0);
  lp.cli = rpc_client_create(&(rpc_client_opts_t){.loop = &lp.loop, .token = TOKEN});
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_channel_t *ch = lp.ch = rpc_channel_get(lp.cli, target);
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVPut", &put.base, 0, lp_done, NULL), 0);
  for (int i = 0; i < 300; i++)
    ck_assert_int_eq(rpc_call(ch, KV_SVC, "InternalKVGet", &get.base, 5000, lp_done, NULL), 0);
  lp.expected = 1 + 300 + 1 + 200;
  uv_run(&lp.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(lp.callbacks, lp.expected);
  ck_assert_int_eq(lp.other, 0);
  ck_assert_int_ge(lp.ok, 300);      /* the first Gets were answered before the destroy */
  ck_assert_int_ge(lp.cancelled, 2); /* the held Put and the Del itself */
  ck_assert_int_eq(lp.handled_elsewhere, 0);
  ck_assert_int_ge(lp.handled_on_loop, 300);
  ck_assert_ptr_null(lp.srv);
  rpc_client_destroy(lp.cli);
  uv_run(&lp.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&lp.loop), 0);
}
END_TEST

/* A port taken by one server cannot be taken by a second (no SO_REUSEPORT sharing). */
START_TEST(test_port_in_use)
{
  log_init("test_rpc", LOG_ERROR);
  int port;
  rpc_server_t *a = inproc_server("127.0.0.1:0", &port);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  rpc_server_t *b = rpc_server_create(inproc_methods, ARRAY_LEN(inproc_methods), NULL);
  ck_assert_int_lt(rpc_server_listen(b, addr), 0);
  rpc_server_destroy(b);
  rpc_server_destroy(a);
}
END_TEST

/* ---- loopq ---- */

#define LQ_THREADS 4
#define LQ_POSTS   20000

struct lq_state {
  uv_loop_t loop;
  loopq_t *q;
  int next[LQ_THREADS]; /* loop thread only */
  int total, bad;
};

struct lq_item {
  struct lq_state *st;
  int thread, seq;
};

static void lq_run(void *arg)
{
  struct lq_item *it = arg;
  struct lq_state *st = it->st;
  if (it->seq != st->next[it->thread]++) /* FIFO per poster */
    st->bad++;
  if (++st->total == LQ_THREADS * LQ_POSTS)
    uv_stop(&st->loop);
  free(it);
}

struct lq_poster {
  struct lq_state *st;
  int id;
};

static void *lq_post_thread(void *arg)
{
  struct lq_poster *p = arg;
  for (int i = 0; i < LQ_POSTS; i++) {
    struct lq_item *it = xmalloc(sizeof(*it));
    *it = (struct lq_item){p->st, p->id, i};
    loopq_post(p->st->q, lq_run, it);
  }
  return NULL;
}

static int lq_last;

static void lq_mark(void *arg)
{
  lq_last = (int)(intptr_t)arg;
}

START_TEST(test_loopq)
{
  static struct lq_state st;
  memset(&st, 0, sizeof(st));
  uv_loop_init(&st.loop);
  st.q = loopq_create(&st.loop);
  pthread_t t[LQ_THREADS];
  struct lq_poster p[LQ_THREADS];
  for (int i = 0; i < LQ_THREADS; i++) {
    p[i] = (struct lq_poster){&st, i};
    pthread_create(&t[i], NULL, lq_post_thread, &p[i]);
  }
  uv_run(&st.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < LQ_THREADS; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(st.total, LQ_THREADS * LQ_POSTS);
  ck_assert_int_eq(st.bad, 0);
  /* Destroy runs what is still queued. */
  loopq_post(st.q, lq_mark, (void *)1);
  loopq_post(st.q, lq_mark, (void *)2);
  loopq_destroy(st.q);
  ck_assert_int_eq(lq_last, 2);
  uv_run(&st.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&st.loop), 0);
}
END_TEST

/* ---- listening addresses, TLS ---- */

/* A server refuses a request longer than its max_message (from the length prefix), keeps serving,
 * and counts requests its table's required fields refuse. */
START_TEST(test_request_limits)
{
  log_init("test_rpc", LOG_ERROR + 1);
  const rpc_method_t rows[] = {
      {.service = KV_SVC, .method = "InternalKVPut", .handler = noop_handler, .required = "key"}};
  rpc_server_opts_t so = {.max_message = 64 << 10};
  rpc_server_t *s = rpc_server_create(rows, ARRAY_LEN(rows), &so);
  ck_assert_ptr_nonnull(s);
  int port = rpc_server_listen(s, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){0});
  rpc_channel_t *ch = rpc_channel_get(c, target);
  static uint8_t big[100 << 10];
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.key = pb_bytes("k", 1);
  put.value = pb_bytes(big, sizeof(big));
  ProtobufCMessage *resp = NULL;
  int rc = rpc_call_sync(ch, KV_SVC, "InternalKVPut", &put.base, 5000, &resp, NULL);
  ck_assert_msg(rc != 0, "a 100 KiB request passed a 64 KiB limit");
  put.value = pb_bytes(big, 1000);
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVPut", &put.base, 5000, &resp, NULL), 0);
  pb_free(resp);
  put.key = pb_bytes(NULL, 0);
  char *detail = NULL;
  ck_assert_int_eq(rpc_call_sync(ch, KV_SVC, "InternalKVPut", &put.base, 5000, &resp, &detail), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(detail, "InternalKVPut: key is required");
  free(detail);
  ck_assert_uint_eq(rpc_server_invalid_requests(s), 1);
  rpc_client_destroy(c);
  rpc_server_destroy(s);
}
END_TEST

START_TEST(test_wildcard_refused)
{
  log_init("test_rpc", LOG_ERROR + 1);
  const rpc_method_t rows[] = {KV_ROW("InternalKVGet")};
  static const char *wild[] = {"0.0.0.0:0", "[::]:0", ":0", "*:0", "0:0", "[0:0:0:0:0:0:0:0]:0"};
  for (size_t i = 0; i < ARRAY_LEN(wild); i++) {
    rpc_server_t *s = rpc_server_create(rows, ARRAY_LEN(rows), NULL);
    ck_assert_msg(rpc_server_listen(s, wild[i]) == RAYC_EINVALID_ARGUMENT, "listened on %s", wild[i]);
    rpc_server_destroy(s);
  }
  rpc_server_t *s = rpc_server_create(rows, ARRAY_LEN(rows), NULL);
  ck_assert_int_gt(rpc_server_listen(s, "127.0.0.1:0"), 0);
  rpc_server_destroy(s);
}
END_TEST

START_TEST(test_listen_range)
{
  log_init("test_rpc", LOG_ERROR + 1);
  const rpc_method_t rows[] = {KV_ROW("InternalKVGet")};
  /* Find three consecutive free ports. */
  int base = 0;
  for (int tries = 0; tries < 50 && !base; tries++) {
    int cand = 20000 + (int)((unsigned)now_us() % 30000), ok = 1;
    for (int i = 0; i < 3 && ok; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = {
          .sin_family = AF_INET, .sin_port = htons((uint16_t)(cand + i)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
      close(fd);
    }
    base = ok ? cand : 0;
  }
  ck_assert_int_gt(base, 0);
  rpc_server_t *s[4];
  int seen = 0;
  for (int i = 0; i < 3; i++) {
    s[i] = rpc_server_create(rows, ARRAY_LEN(rows), NULL);
    int port = rpc_server_listen_range(s[i], "127.0.0.1", base, base + 2);
    ck_assert_msg(port >= base && port <= base + 2, "port %d outside %d..%d", port, base, base + 2);
    ck_assert_int_eq(seen & (1 << (port - base)), 0);
    seen |= 1 << (port - base);
  }
  s[3] = rpc_server_create(rows, ARRAY_LEN(rows), NULL);
  ck_assert_int_eq(rpc_server_listen_range(s[3], "127.0.0.1", base, base + 2), RAYC_EUNAVAILABLE);
  ck_assert_int_eq(rpc_server_listen_range(s[3], "127.0.0.1", base + 2, base), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(rpc_server_listen_range(s[3], "0.0.0.0", 0, 0), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_gt(rpc_server_listen_range(s[3], "127.0.0.1", 0, 0), 0); /* ephemeral */
  for (int i = 0; i < 4; i++)
    rpc_server_destroy(s[i]);
}
END_TEST

static char tls_dir[64];

/* Makes a CA with a node certificate for 127.0.0.1 in tls_dir/a, and another CA's in tls_dir/b,
 * with deploy/make-test-ca.sh (found from $RAYC_BUILD or this binary: build/<flavor>/tests/). */
static void tls_make_certs(void)
{
  char self[PATH_MAX], script[PATH_MAX + 64];
  const char *b = getenv("RAYC_BUILD");
  if (b && *b) {
    snprintf(self, sizeof(self), "%s/tests", b);
  } else {
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
  }
  snprintf(script, sizeof(script), "%s/../../../deploy/make-test-ca.sh", self);
  snprintf(tls_dir, sizeof(tls_dir), "/tmp/rayc-test-tls-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tls_dir));
  char *cmd = xasprintf("%s %s/a >/dev/null && %s %s/b >/dev/null", script, tls_dir, script, tls_dir);
  ck_assert_msg(system(cmd) == 0, "%s failed (is openssl installed?)", cmd);
  free(cmd);
}

static rpc_tls_t tls_files(const char *ca_name, char paths[3][128])
{
  snprintf(paths[0], 128, "%s/%s/node.pem", tls_dir, ca_name);
  snprintf(paths[1], 128, "%s/%s/node.key", tls_dir, ca_name);
  snprintf(paths[2], 128, "%s/%s/ca.pem", tls_dir, ca_name);
  return (rpc_tls_t){paths[0], paths[1], paths[2]};
}

/* kv_get through a new client with opts; returns its status. */
static int tls_try(const char *target, const rpc_client_opts_t *opts)
{
  rpc_client_t *c = rpc_client_create(opts);
  ck_assert_ptr_nonnull(c);
  char *val = NULL;
  int rc = kv_get(rpc_channel_get(c, target), "", "tls", 5000, &val, NULL);
  if (rc == 0)
    ck_assert_str_eq(val, "tls");
  free(val);
  rpc_client_destroy(c);
  return rc;
}

START_TEST(test_tls)
{
  tls_make_certs(); /* before gRPC starts: fork+exec only */
  log_init("test_rpc", LOG_ERROR + 1);
  char pa[3][128], pb[3][128];
  rpc_tls_t a = tls_files("a", pa), other = tls_files("b", pb);
  rpc_server_opts_t so = {.token = TOKEN, .tls = &a};
  rpc_server_t *s = rpc_server_create(inproc_methods, ARRAY_LEN(inproc_methods), &so);
  ck_assert_ptr_nonnull(s);
  int port = rpc_server_listen(s, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  ck_assert_int_eq(tls_try(target, &(rpc_client_opts_t){.token = TOKEN, .tls = &a}), 0);
  /* TLS does not replace the token. */
  ck_assert_int_eq(tls_try(target, &(rpc_client_opts_t){.tls = &a}), RAYC_EUNAUTHENTICATED);
  /* Plaintext, or a certificate another CA signed: no connection. */
  ck_assert_int_eq(tls_try(target, &(rpc_client_opts_t){.token = TOKEN}), RAYC_EUNAVAILABLE);
  ck_assert_int_eq(tls_try(target, &(rpc_client_opts_t){.token = TOKEN, .tls = &other}), RAYC_EUNAVAILABLE);
  /* A TLS client to a plaintext server fails too. */
  int plain_port;
  rpc_server_t *plain = inproc_server("127.0.0.1:0", &plain_port);
  snprintf(target, sizeof(target), "127.0.0.1:%d", plain_port);
  ck_assert_int_eq(tls_try(target, &(rpc_client_opts_t){.token = TOKEN, .tls = &a}), RAYC_EUNAVAILABLE);
  rpc_server_destroy(plain);
  rpc_server_destroy(s);
  /* Incomplete or unreadable settings are refused when the server or client is made. */
  rpc_tls_t half = {a.cert_file, NULL, NULL}, missing = {a.cert_file, a.key_file, "/nonexistent/ca.pem"};
  rpc_tls_t swapped = {a.key_file, a.cert_file, a.ca_file};
  ck_assert_ptr_null(rpc_server_create(inproc_methods, ARRAY_LEN(inproc_methods), &(rpc_server_opts_t){.tls = &half}));
  ck_assert_ptr_null(rpc_client_create(&(rpc_client_opts_t){.tls = &missing}));
  ck_assert_ptr_null(
      rpc_server_create(inproc_methods, ARRAY_LEN(inproc_methods), &(rpc_server_opts_t){.tls = &swapped}));
  ck_assert_int_eq(rpc_tls_enabled(&(rpc_tls_t){NULL, "", NULL}), 0);
  char *cmd = xasprintf("rm -rf %s", tls_dir);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
}
END_TEST

static Suite *rpc_suite(void)
{
  Suite *s = suite_create("rpc");
  TCase *kv = tcase_create("helper");
  tcase_add_checked_fixture(kv, kv_setup, kv_teardown);
  tcase_set_timeout(kv, 60);
  tcase_add_test(kv, test_sync_10k);
  tcase_add_test(kv, test_async_10k);
  tcase_add_test(kv, test_async_loop);
  tcase_add_test(kv, test_error_reply);
  tcase_add_test(kv, test_deadline);
  tcase_add_test(kv, test_channel_forget);
  tcase_add_test(kv, test_auth);
  tcase_add_test(kv, test_malformed);
  suite_add_tcase(s, kv);
  TCase *local = tcase_create("local");
  tcase_set_timeout(local, 60);
  tcase_add_test(local, test_unreachable);
  tcase_add_test(local, test_methods_check);
  tcase_add_test(local, test_create_rejects_bad_rows);
  tcase_add_test(local, test_inproc_noloop);
  tcase_add_test(local, test_unix_socket);
  tcase_add_test(local, test_reply_then_destroy);
  tcase_add_test(local, test_loop_server_destroyed_in_handler);
  tcase_add_test(local, test_port_in_use);
  tcase_add_test(local, test_loopq);
  tcase_add_test(local, test_wildcard_refused);
  tcase_add_test(local, test_request_limits);
  tcase_add_test(local, test_listen_range);
  tcase_add_test(local, test_tls);
  suite_add_tcase(s, local);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(rpc_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
