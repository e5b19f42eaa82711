/*
 * The gRPC layer over gRPC's C core (see rpc.h for the contract).
 *
 * Threads. Each server and each client owns one completion queue (CQ) and one thread that polls
 * it. A server's thread accepts calls, checks the token, receives and unpacks requests, and hands
 * each call to its handler: through a loopq onto the daemon's loop, or directly when the server has
 * no loop. Replies are started by whoever holds the call (usually the loop thread); the send batch
 * completes on the CQ thread, which frees the call. A client's thread completes async calls and
 * runs their callbacks, directly or through a loopq. Sync calls pluck their own completion queue
 * on the calling thread, so they need no other thread and work from a loop thread too.
 *
 * Server call states (rpc_call_t.state, atomic):
 *
 *   PENDING ---(request_call done)---> RECEIVING ---(message unpacked)---> QUEUED (loop) ---> PROCESSING
 *      |  unknown method, bad token        |  malformed                          |  no loop: PROCESSING
 *      +-------------> SENDING <-----------+---------------------- rpc_reply() --+
 *   SENDING ---(send batch done)---> recycled (FINISHED)
 *   QUEUED or PROCESSING ---(rpc_server_destroy)---> ORPHANED ---(rpc_reply / dispatch)---> freed
 *
 * Only the CQ thread moves calls out of PENDING and RECEIVING and recycles them, so the server's
 * call lists need no lock. rpc_reply() (any thread) and the destroy sweep (CQ thread) race for a
 * PROCESSING call with one compare-and-swap: the reply sends, or the sweep orphans the call (its
 * gRPC call is released at once, so server shutdown never waits for a handler). An orphan keeps
 * its request message alive until the handler's late reply, which frees everything and sends
 * nothing. Calls queued to the loop but not yet dispatched are orphaned the same way and freed by
 * the dispatch that loopq_destroy() runs.
 *
 * Shutdown is counted, not assumed: the server and its CQ are destroyed only when gRPC's shutdown
 * tag has arrived and every call the server armed has come back (s->live == 0), so no batch can be
 * started on a queue that is shutting down.
 */
#include "common/rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/loopq.h"
#include "common/status.h"
#include "common/util.h"

#define RPC_SERVER_SLOTS 128  /* request_call kept outstanding, so pipelined calls never queue */
#define RPC_POLL_MS 250       /* CQ poll period of the server thread while it waits to exit */
#define RPC_CCALL_FREE_MAX 1024 /* recycled client call records kept per client */
#define RPC_AUTH_KEY "authorization"

/* ---- shared helpers ---- */

/* Fills args (room for 6) with the settings every channel and server uses; returns the count. */
static size_t rpc_args_fill(grpc_arg *a, int server)
{
  size_t n = 0;
  memset(a, 0, 6 * sizeof(*a));
#define RPC_ARG_INT(k, v) (a[n].type = GRPC_ARG_INTEGER, a[n].key = (char *)(k), a[n++].value.integer = (v))
  /* Objects travel in 5 MiB chunks: lift the 4 MiB default limits. */
  RPC_ARG_INT(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
  RPC_ARG_INT(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
  if (server) {
    /* gRPC binds with SO_REUSEPORT by default: a second daemon on a taken port must fail. */
    RPC_ARG_INT(GRPC_ARG_ALLOW_REUSEPORT, 0);
  } else {
    /* Never route cluster traffic through a proxy named in the environment. */
    RPC_ARG_INT(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    /* A restarted daemon (GCS failover) must be found again in seconds, not minutes. */
    RPC_ARG_INT(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    RPC_ARG_INT(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  }
#undef RPC_ARG_INT
  return n;
}

static gpr_timespec rpc_deadline(int timeout_ms)
{
  if (timeout_ms <= 0)
    return gpr_inf_future(GPR_CLOCK_REALTIME);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* Returns a new byte buffer holding m packed (NULL: an empty message, every field default). */
static grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m)
{
  size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
  grpc_slice sl = grpc_slice_malloc(n);
  if (n)
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(sl));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  return bb;
}

/* Returns the message unpacked from bb, or NULL when bb is NULL or not a valid d. */
static ProtobufCMessage *rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d)
{
  if (!bb)
    return NULL;
  /* Small messages arrive as one slice: unpack in place instead of copying it out. */
  if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
      bb->data.raw.slice_buffer.count == 1) {
    grpc_slice sl = bb->data.raw.slice_buffer.slices[0];
    return protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
  }
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  return m;
}

static uint32_t rpc_hash(const uint8_t *p, size_t n)
{
  uint32_t h = 2166136261u; /* FNV-1a */
  while (n--) {
    h ^= *p++;
    h *= 16777619u;
  }
  return h;
}

/* Compares a received token with ours in time that does not depend on where they differ. */
static int rpc_token_equal(const uint8_t *got, size_t got_len, const char *want, size_t want_len)
{
  unsigned char diff = got_len != want_len;
  for (size_t i = 0; i < want_len; i++)
    diff |= (unsigned char)((i < got_len ? got[i] : 0) ^ (unsigned char)want[i]);
  return diff == 0;
}

/* ---- server ---- */

enum rpc_call_state {
  RPC_CALL_PENDING,    /* request_call outstanding */
  RPC_CALL_RECEIVING,  /* RECV_MESSAGE outstanding */
  RPC_CALL_QUEUED,     /* posted to the loop, handler not yet run */
  RPC_CALL_PROCESSING, /* the handler owns it */
  RPC_CALL_SENDING,    /* the final batch is outstanding */
  RPC_CALL_ORPHANED,   /* its server is gone; the late reply (or dispatch) frees it */
};

struct rpc_row { /* a table row resolved against its service descriptor */
  const rpc_method_t *m;
  const ProtobufCMethodDescriptor *md;
  char *path; /* "/rayc.NodeInfoGcsService/RegisterNode" */
  size_t len;
};

struct rpc_call {
  _Atomic int state;
  rpc_server_t *s; /* NULL once orphaned */
  const struct rpc_row *row;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
  grpc_byte_buffer *recv, *send;
  grpc_slice status_text; /* kept until the final batch completes */
  int cancelled;
  ProtobufCMessage *req;
  pthread_mutex_t peer_mu; /* peer is cached lazily, possibly while destroy orphans the call */
  char *peer;
  struct rpc_call *prev, *next; /* s->all: every call record the server owns */
  struct rpc_call *free_next;
};

struct rpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  pthread_t thread;
  int started, grpc;
  loopq_t *q;
  void *ctx;
  char *token;
  size_t token_len;
  struct rpc_row *rows;
  size_t nrows;
  int *index; /* open addressing: path hash -> row, -1 empty */
  size_t index_mask;
  _Atomic int closing;
  atomic_ulong auth_failures;
  /* CQ thread only (and the creating thread before start / after join). */
  struct rpc_call all;
  struct rpc_call *free;
  size_t live; /* calls armed and not yet recycled or orphaned */
  int swept, shutdown_done, cq_shut;
  int shutdown_tag; /* its address is the shutdown tag */
};

static const struct rpc_row *srv_lookup(const rpc_server_t *s, const uint8_t *p, size_t len)
{
  for (size_t i = rpc_hash(p, len) & s->index_mask;; i = (i + 1) & s->index_mask) {
    int r = s->index[i];
    if (r < 0)
      return NULL;
    if (s->rows[r].len == len && memcmp(s->rows[r].path, p, len) == 0)
      return &s->rows[r];
  }
}

/* Resolves row i of the table; 0 or a negative RAYC_E* code (logged). */
static int srv_resolve_row(rpc_server_t *s, const rpc_method_t *m, size_t i)
{
  if (!m->service || !m->method || !m->handler) {
    log_error("rpc: method table row %zu lacks a service, method name or handler", i);
    return RAYC_EINVALID_ARGUMENT;
  }
  const ProtobufCMethodDescriptor *md = protobuf_c_service_descriptor_get_method_by_name(m->service, m->method);
  if (!md) {
    log_error("rpc: method table row %zu: %s has no method %s", i, m->service->name, m->method);
    return RAYC_EINVALID_ARGUMENT;
  }
  struct rpc_row *row = &s->rows[i];
  row->m = m;
  row->md = md;
  row->path = xasprintf("/%s/%s", m->service->name, md->name);
  row->len = strlen(row->path);
  if (srv_lookup(s, (const uint8_t *)row->path, row->len)) {
    log_error("rpc: method table row %zu: %s is listed twice", i, row->path);
    return RAYC_EALREADY_EXISTS;
  }
  size_t h = rpc_hash((const uint8_t *)row->path, row->len) & s->index_mask;
  while (s->index[h] >= 0)
    h = (h + 1) & s->index_mask;
  s->index[h] = (int)i;
  return 0;
}

static int srv_resolve(rpc_server_t *s, const rpc_method_t *methods, size_t n)
{
  size_t cap = 8;
  while (cap < 2 * n)
    cap *= 2;
  s->index = xmalloc(cap * sizeof(*s->index));
  memset(s->index, 0xff, cap * sizeof(*s->index));
  s->index_mask = cap - 1;
  s->rows = xcalloc(n, sizeof(*s->rows));
  s->nrows = n;
  for (size_t i = 0; i < n; i++) {
    int err = srv_resolve_row(s, &methods[i], i);
    if (err)
      return err;
  }
  return 0;
}

static rpc_call_t *srv_call_new(rpc_server_t *s)
{
  rpc_call_t *call = xcalloc(1, sizeof(*call));
  grpc_call_details_init(&call->details);
  grpc_metadata_array_init(&call->md);
  call->status_text = grpc_empty_slice();
  pthread_mutex_init(&call->peer_mu, NULL);
  call->s = s;
  call->next = s->all.next;
  call->prev = &s->all;
  s->all.next->prev = call;
  s->all.next = call;
  return call;
}

/* Releases what the call holds from gRPC; keeps the request message and the peer text. */
static void srv_call_drop_grpc(rpc_call_t *call)
{
  if (call->call)
    grpc_call_unref(call->call);
  call->call = NULL;
  grpc_call_details_destroy(&call->details);
  grpc_call_details_init(&call->details);
  grpc_metadata_array_destroy(&call->md);
  grpc_metadata_array_init(&call->md);
  if (call->recv)
    grpc_byte_buffer_destroy(call->recv);
  if (call->send)
    grpc_byte_buffer_destroy(call->send);
  call->recv = call->send = NULL;
  grpc_slice_unref(call->status_text);
  call->status_text = grpc_empty_slice();
  call->cancelled = 0;
}

static void srv_call_clear(rpc_call_t *call)
{
  srv_call_drop_grpc(call);
  if (call->req)
    protobuf_c_message_free_unpacked(call->req, NULL);
  call->req = NULL;
  free(call->peer);
  call->peer = NULL;
  call->row = NULL;
}

/* Frees a call that is no longer on any server list (orphans, and records at server teardown). */
static void srv_call_free(rpc_call_t *call)
{
  srv_call_clear(call);
  pthread_mutex_destroy(&call->peer_mu);
  free(call);
}

/* CQ thread: the call is finished; keep its record for the next request. */
static void srv_recycle(rpc_server_t *s, rpc_call_t *call)
{
  srv_call_clear(call);
  call->free_next = s->free;
  s->free = call;
  s->live--;
}

/* Asks gRPC for the next incoming call, into a recycled record when there is one. */
static void srv_arm(rpc_server_t *s)
{
  rpc_call_t *call = s->free;
  if (call)
    s->free = call->free_next;
  else
    call = srv_call_new(s);
  atomic_store(&call->state, RPC_CALL_PENDING);
  s->live++;
  grpc_call_error e = grpc_server_request_call(s->server, &call->call, &call->details, &call->md, s->cq, s->cq, call);
  if (e != GRPC_CALL_OK) {
    log_error("rpc: request_call failed: %s", grpc_call_error_to_string(e));
    call->free_next = s->free;
    s->free = call;
    s->live--;
  }
}

/* Starts the final batch of a call in state SENDING (any thread). text may be NULL. */
static void srv_send(rpc_call_t *call, grpc_status_code code, const char *text)
{
  grpc_op ops[4];
  size_t n = 0;
  memset(ops, 0, sizeof(ops));
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (call->send) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = call->send;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  if (text) {
    call->status_text = grpc_slice_from_copied_string(text);
    ops[n].data.send_status_from_server.status_details = &call->status_text;
  }
  n++;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &call->cancelled;
  grpc_call_error e = grpc_call_start_batch(call->call, ops, n, call, NULL);
  if (e != GRPC_CALL_OK) {
    /* Nothing will complete: an empty batch brings the call back to the CQ thread for cleanup. */
    log_error("rpc: cannot send the reply: %s", grpc_call_error_to_string(e));
    grpc_call_start_batch(call->call, NULL, 0, call, NULL);
  }
}

/* CQ thread: ends a call the handler never sees. */
static void srv_fail(rpc_call_t *call, grpc_status_code code, const char *text)
{
  atomic_store(&call->state, RPC_CALL_SENDING);
  srv_send(call, code, text);
}

static int srv_token_ok(const rpc_server_t *s, const grpc_metadata_array *md)
{
  for (size_t i = 0; i < md->count; i++) {
    if (grpc_slice_str_cmp(md->metadata[i].key, RPC_AUTH_KEY) == 0) {
      grpc_slice v = md->metadata[i].value;
      return rpc_token_equal(GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v), s->token, s->token_len);
    }
  }
  return 0;
}

/* CQ thread: a new call arrived (ok) or the server is shutting down (!ok). */
static void srv_on_request(rpc_server_t *s, rpc_call_t *call, int ok)
{
  if (!ok) {
    srv_recycle(s, call);
    return;
  }
  if (!atomic_load(&s->closing))
    srv_arm(s); /* keep RPC_SERVER_SLOTS outstanding */
  grpc_slice path = call->details.method;
  call->row = srv_lookup(s, GRPC_SLICE_START_PTR(path), GRPC_SLICE_LENGTH(path));
  if (!call->row) {
    log_debug("rpc: unknown method %.*s from %s", (int)GRPC_SLICE_LENGTH(path), GRPC_SLICE_START_PTR(path),
              rpc_call_peer(call));
    srv_fail(call, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
    return;
  }
  /* Checked before the message is read: an unauthenticated peer costs us no decoding. */
  if (s->token_len && !(call->row->m->flags & RPC_NO_AUTH) && !srv_token_ok(s, &call->md)) {
    atomic_fetch_add(&s->auth_failures, 1);
    log_warn("rpc: rejected %s from %s: missing or wrong cluster token", call->row->path, rpc_call_peer(call));
    srv_fail(call, (grpc_status_code)status_to_grpc(RAYC_EUNAUTHENTICATED), "missing or wrong cluster token");
    return;
  }
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &call->recv;
  atomic_store(&call->state, RPC_CALL_RECEIVING);
  if (grpc_call_start_batch(call->call, &op, 1, call, NULL) != GRPC_CALL_OK)
    srv_recycle(s, call);
}

static void srv_dispatch(void *arg)
{
  rpc_call_t *call = arg;
  int st = RPC_CALL_QUEUED;
  if (!atomic_compare_exchange_strong(&call->state, &st, RPC_CALL_PROCESSING)) {
    srv_call_free(call); /* orphaned by rpc_server_destroy() before its handler ran */
    return;
  }
  call->row->m->handler(call->s->ctx, call, call->req);
}

/* CQ thread: the request message arrived (or the call died). */
static void srv_on_message(rpc_server_t *s, rpc_call_t *call, int ok)
{
  if (!ok || atomic_load(&s->closing)) {
    srv_recycle(s, call); /* dropping the call cancels it */
    return;
  }
  if (!call->recv) {
    srv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "missing request message");
    return;
  }
  call->req = rpc_unpack(call->recv, call->row->md->input);
  grpc_byte_buffer_destroy(call->recv);
  call->recv = NULL;
  if (!call->req) {
    log_warn("rpc: malformed %s request from %s", call->row->path, rpc_call_peer(call));
    srv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    return;
  }
  if (s->q) {
    atomic_store(&call->state, RPC_CALL_QUEUED);
    loopq_post(s->q, srv_dispatch, call);
  } else {
    atomic_store(&call->state, RPC_CALL_PROCESSING);
    call->row->m->handler(s->ctx, call, call->req);
  }
}

/* CQ thread, closing: detach a call its handler (or the loop queue) still holds. */
static void srv_orphan(rpc_server_t *s, rpc_call_t *call)
{
  pthread_mutex_lock(&call->peer_mu);
  if (!call->peer && call->call) {
    char *p = grpc_call_get_peer(call->call);
    call->peer = xstrdup(p);
    gpr_free(p);
  }
  srv_call_drop_grpc(call); /* unref cancels the call: the client sees CANCELLED */
  pthread_mutex_unlock(&call->peer_mu);
  call->prev->next = call->next;
  call->next->prev = call->prev;
  call->prev = call->next = NULL;
  call->s = NULL;
  s->live--;
}

static void srv_sweep(rpc_server_t *s)
{
  size_t n = 0;
  for (rpc_call_t *call = s->all.next, *next; call != &s->all; call = next) {
    next = call->next;
    int st = atomic_load(&call->state);
    if ((st == RPC_CALL_QUEUED || st == RPC_CALL_PROCESSING) &&
        atomic_compare_exchange_strong(&call->state, &st, RPC_CALL_ORPHANED)) {
      srv_orphan(s, call);
      n++;
    }
  }
  if (n)
    log_info("rpc: server closing with %zu calls unanswered; their clients see CANCELLED", n);
}

/* CQ thread, once closing: orphan held calls, then tear down when everything has come back. */
static void srv_closing_step(rpc_server_t *s)
{
  if (!s->swept) {
    /* Here, not in rpc_server_destroy(): only this thread may destroy the server object. */
    grpc_server_cancel_all_calls(s->server);
    srv_sweep(s);
    s->swept = 1;
  }
  if (s->shutdown_done && s->live == 0 && !s->cq_shut) {
    grpc_server_destroy(s->server);
    s->server = NULL;
    grpc_completion_queue_shutdown(s->cq);
    s->cq_shut = 1;
  }
}

static void srv_event(rpc_server_t *s, const grpc_event *ev)
{
  if (ev->tag == &s->shutdown_tag) {
    s->shutdown_done = 1;
    return;
  }
  rpc_call_t *call = ev->tag;
  int st = atomic_load(&call->state);
  switch (st) {
  case RPC_CALL_PENDING:
    srv_on_request(s, call, ev->success);
    break;
  case RPC_CALL_RECEIVING:
    srv_on_message(s, call, ev->success);
    break;
  case RPC_CALL_SENDING:
    srv_recycle(s, call);
    break;
  default:
    log_error("rpc: completion for a call in state %d", st);
  }
}

/* The server thread; also run inline by destroy for a server that never started. */
static void *srv_main(void *arg)
{
  rpc_server_t *s = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, rpc_deadline(RPC_POLL_MS), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_OP_COMPLETE)
      srv_event(s, &ev);
    if (atomic_load_explicit(&s->closing, memory_order_relaxed))
      srv_closing_step(s);
  }
  return NULL;
}

/* Frees the server record and every call record it still owns. */
static void srv_free(rpc_server_t *s)
{
  while (s->all.next != &s->all) {
    rpc_call_t *call = s->all.next;
    s->all.next = call->next;
    srv_call_free(call);
  }
  for (size_t i = 0; i < s->nrows; i++)
    free(s->rows[i].path);
  free(s->rows);
  free(s->index);
  free(s->token);
  if (s->cq)
    grpc_completion_queue_destroy(s->cq);
  if (s->grpc)
    grpc_shutdown();
  free(s);
}

rpc_server_t *rpc_server_create(const rpc_method_t *methods, size_t n, const rpc_server_opts_t *opts)
{
  rpc_server_t *s = xcalloc(1, sizeof(*s));
  s->all.next = s->all.prev = &s->all;
  if (srv_resolve(s, methods, n) < 0) {
    srv_free(s);
    return NULL;
  }
  if (opts && opts->token && *opts->token) {
    s->token = xstrdup(opts->token);
    s->token_len = strlen(s->token);
  }
  s->ctx = opts ? opts->ctx : NULL;
  grpc_init();
  s->grpc = 1;
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_arg a[6];
  grpc_channel_args args = {rpc_args_fill(a, 1), a};
  s->server = grpc_server_create(&args, NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  if (opts && opts->loop && !(s->q = loopq_create(opts->loop))) {
    log_error("rpc: cannot attach the server to its loop");
    rpc_server_destroy(s);
    return NULL;
  }
  return s;
}

int rpc_server_listen(rpc_server_t *s, const char *addr)
{
  if (s->started)
    return RAYC_EINVALID_ARGUMENT;
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, addr, creds);
  grpc_server_credentials_release(creds);
  if (port <= 0) {
    log_error("rpc: cannot listen on %s (address in use or invalid)", addr);
    return RAYC_EIO;
  }
  return strncmp(addr, "unix", 4) == 0 ? 0 : port;
}

int rpc_server_start(rpc_server_t *s)
{
  if (s->started)
    return RAYC_EINVALID_ARGUMENT;
  grpc_server_start(s->server);
  for (int i = 0; i < RPC_SERVER_SLOTS; i++)
    srv_arm(s);
  if (pthread_create(&s->thread, NULL, srv_main, s) != 0) {
    log_error("rpc: cannot start the server thread");
    return RAYC_EINTERNAL; /* rpc_server_destroy() drains the armed calls inline */
  }
  pthread_setname_np(s->thread, "rpc-server");
  s->started = 1;
  return 0;
}

void rpc_server_destroy(rpc_server_t *s)
{
  if (!s)
    return;
  if (s->server) {
    /* Shutdown first: the server thread cancels calls as soon as it sees closing. */
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    atomic_store(&s->closing, 1);
    if (s->started)
      pthread_join(s->thread, NULL);
    else
      srv_main(s);
  }
  loopq_destroy(s->q); /* queued dispatches find their calls orphaned and free them */
  srv_free(s);
}

/* A reply to a call that is not PROCESSING: free an orphan, report anything else. */
static void srv_reply_late(rpc_call_t *call, int st)
{
  if (st == RPC_CALL_ORPHANED)
    srv_call_free(call);
  else
    log_error("rpc: reply to a call in state %d (replied twice?)", st);
}

void rpc_reply(rpc_call_t *call, const ProtobufCMessage *resp)
{
  int st = RPC_CALL_PROCESSING;
  if (!atomic_compare_exchange_strong(&call->state, &st, RPC_CALL_SENDING)) {
    srv_reply_late(call, st);
    return;
  }
  call->send = rpc_pack(resp);
  srv_send(call, GRPC_STATUS_OK, NULL);
}

void rpc_reply_error(rpc_call_t *call, int err, const char *fmt, ...)
{
  int st = RPC_CALL_PROCESSING;
  if (!atomic_compare_exchange_strong(&call->state, &st, RPC_CALL_SENDING)) {
    srv_reply_late(call, st);
    return;
  }
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  if (err >= 0) { /* an error reply must not read as success */
    log_error("rpc: %s replied with error code %d; sending INTERNAL", call->row->path, err);
    err = RAYC_EINTERNAL;
  }
  srv_send(call, (grpc_status_code)status_to_grpc(err), text);
}

const char *rpc_call_peer(const rpc_call_t *ccall)
{
  rpc_call_t *call = (rpc_call_t *)ccall; /* the peer text is cached on first use */
  pthread_mutex_lock(&call->peer_mu);
  if (!call->peer && call->call) {
    char *p = grpc_call_get_peer(call->call);
    call->peer = xstrdup(p);
    gpr_free(p);
  }
  pthread_mutex_unlock(&call->peer_mu);
  return call->peer ? call->peer : "unknown peer";
}

unsigned long rpc_server_auth_failures(const rpc_server_t *s)
{
  return atomic_load(&((rpc_server_t *)s)->auth_failures);
}

int rpc_methods_check(const rpc_method_t *methods, size_t n, const ProtobufCServiceDescriptor *svc)
{
  int bad = 0;
  for (unsigned i = 0; i < svc->n_methods; i++) {
    int count = 0;
    for (size_t j = 0; j < n; j++)
      if (methods[j].service == svc && methods[j].method && strcmp(methods[j].method, svc->methods[i].name) == 0)
        count++;
    if (count != 1) {
      log_warn("rpc: method table lists %s.%s %d times", svc->name, svc->methods[i].name, count);
      bad++;
    }
  }
  for (size_t j = 0; j < n; j++) {
    if (methods[j].service == svc &&
        (!methods[j].method || !protobuf_c_service_descriptor_get_method_by_name(svc, methods[j].method))) {
      log_warn("rpc: method table row %zu names no method of %s", j, svc->name);
      bad++;
    }
  }
  return bad;
}

/* ---- client ---- */

/* What one client batch fills in (the 6 ops of a unary call). */
struct rpc_cop {
  grpc_byte_buffer *send, *recv;
  grpc_metadata_array init_md, trail_md;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
};

/* An async call: tracked from start until its completion reaches the client thread. */
struct rpc_ccall {
  grpc_call *call;
  const ProtobufCMessageDescriptor *out;
  rpc_done_fn done;
  void *arg;
  rpc_client_t *c;
  struct rpc_cop op;
  int status;
  char *detail;
  ProtobufCMessage *resp;
  struct rpc_ccall *prev, *next; /* c->inflight, c->closed, or c->free */
};

struct rpc_mh { /* a method registered on a channel */
  const ProtobufCMethodDescriptor *md;
  void *handle;
  char *path; /* must outlive the channel (grpc_channel_register_call) */
};

struct rpc_channel {
  rpc_channel_t *next;
  rpc_client_t *c;
  grpc_channel *ch;
  char *target;
  struct rpc_mh *mh; /* c->mu */
  size_t nmh, capmh;
};

struct rpc_pluck { /* an idle completion queue for sync calls */
  grpc_completion_queue *cq;
  struct rpc_pluck *next;
};

struct rpc_client {
  grpc_completion_queue *cq;
  pthread_t thread;
  loopq_t *q;
  char *token;
  grpc_metadata auth;
  pthread_mutex_t mu; /* channels, method handles, in-flight list, free lists */
  rpc_channel_t *channels;
  struct rpc_ccall inflight; /* sentinel */
  struct rpc_ccall *free;
  size_t nfree;
  struct rpc_pluck *plucks;
  _Atomic int closing;
  struct rpc_ccall *closed, *closed_tail; /* completed during destroy, delivered by destroy */
};

static void cli_cop_init(struct rpc_cop *op)
{
  memset(op, 0, sizeof(*op));
  grpc_metadata_array_init(&op->init_md);
  grpc_metadata_array_init(&op->trail_md);
  op->details = grpc_empty_slice();
}

static void cli_cop_release(struct rpc_cop *op)
{
  if (op->send)
    grpc_byte_buffer_destroy(op->send);
  if (op->recv)
    grpc_byte_buffer_destroy(op->recv);
  op->send = op->recv = NULL;
  grpc_metadata_array_destroy(&op->init_md);
  grpc_metadata_array_destroy(&op->trail_md);
  grpc_slice_unref(op->details);
  op->details = grpc_empty_slice();
  gpr_free((void *)op->error_string);
  op->error_string = NULL;
}

/* Returns the status of a finished batch; *resp and *detail are new. Releases op. */
static int cli_result(struct rpc_cop *op, int ok, const ProtobufCMessageDescriptor *out, ProtobufCMessage **resp,
                      char **detail)
{
  int err = 0;
  if (!ok) {
    err = RAYC_EINTERNAL;
    *detail = xstrdup("the call's batch failed");
  } else if (op->status == GRPC_STATUS_OK) {
    *resp = rpc_unpack(op->recv, out);
    if (!*resp) {
      err = RAYC_EPROTOCOL;
      *detail = xasprintf("malformed %s reply", out->name);
    }
  } else {
    err = status_from_grpc((int)op->status);
    size_t n = GRPC_SLICE_LENGTH(op->details);
    if (n)
      *detail = xasprintf("%.*s", (int)n, (const char *)GRPC_SLICE_START_PTR(op->details));
    else
      *detail = xstrdup(op->error_string ? op->error_string : rayc_strerror(err));
  }
  cli_cop_release(op);
  return err;
}

/* Finds or registers method md on ch; c->mu held. */
static void *cli_handle_locked(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc,
                               const ProtobufCMethodDescriptor *md)
{
  for (size_t i = 0; i < ch->nmh; i++)
    if (ch->mh[i].md == md)
      return ch->mh[i].handle;
  if (ch->nmh == ch->capmh) {
    ch->capmh = ch->capmh ? 2 * ch->capmh : 8;
    ch->mh = xrealloc(ch->mh, ch->capmh * sizeof(*ch->mh));
  }
  struct rpc_mh *h = &ch->mh[ch->nmh++];
  h->md = md;
  h->path = xasprintf("/%s/%s", svc->name, md->name);
  h->handle = grpc_channel_register_call(ch->ch, h->path, NULL, NULL);
  return h->handle;
}

/* Creates the gRPC call for svc.method on cq and packs req into op; 0 or a RAYC_E* code with *why. */
static int cli_begin(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
                     const ProtobufCMessage *req, int timeout_ms, grpc_completion_queue *cq, grpc_call **call,
                     const ProtobufCMessageDescriptor **out, struct rpc_cop *op, char **why)
{
  const ProtobufCMethodDescriptor *md = svc && method ? protobuf_c_service_descriptor_get_method_by_name(svc, method) : NULL;
  if (!md) {
    *why = xasprintf("%s has no method %s", svc ? svc->name : "(no service)", method ? method : "(none)");
    return RAYC_EINVALID_ARGUMENT;
  }
  if (req && req->descriptor != md->input) {
    *why = xasprintf("%s/%s takes a %s, not a %s", svc->name, md->name, md->input->name, req->descriptor->name);
    return RAYC_EINVALID_ARGUMENT;
  }
  rpc_client_t *c = ch->c;
  pthread_mutex_lock(&c->mu);
  void *handle = cli_handle_locked(ch, svc, md);
  pthread_mutex_unlock(&c->mu);
  *call = grpc_channel_create_registered_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, handle,
                                              rpc_deadline(timeout_ms), NULL);
  *out = md->output;
  cli_cop_init(op);
  op->send = rpc_pack(req);
  return 0;
}

static grpc_call_error cli_start(rpc_client_t *c, grpc_call *call, struct rpc_cop *op, void *tag)
{
  grpc_op ops[6];
  grpc_metadata auth = c->auth; /* gRPC may write into a grpc_metadata: one copy per call */
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->token ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = c->token ? &auth : NULL;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = op->send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &op->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &op->recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &op->trail_md;
  ops[5].data.recv_status_on_client.status = &op->status;
  ops[5].data.recv_status_on_client.status_details = &op->details;
  ops[5].data.recv_status_on_client.error_string = &op->error_string;
  return grpc_call_start_batch(call, ops, 6, tag, NULL);
}

static void cli_ccall_put(rpc_client_t *c, struct rpc_ccall *cc)
{
  pthread_mutex_lock(&c->mu);
  if (c->nfree < RPC_CCALL_FREE_MAX) {
    cc->next = c->free;
    c->free = cc;
    c->nfree++;
    cc = NULL;
  }
  pthread_mutex_unlock(&c->mu);
  free(cc);
}

/* Runs the callback of a finished async call (client thread, loop thread, or destroy). */
static void cli_deliver(void *arg)
{
  struct rpc_ccall *cc = arg;
  rpc_client_t *c = cc->c;
  cc->done(cc->arg, cc->status, cc->detail ? cc->detail : "", cc->resp);
  free(cc->detail);
  cc->detail = NULL;
  cc->resp = NULL;
  cli_ccall_put(c, cc);
}

/* Client thread: an async call finished. */
static void cli_complete(rpc_client_t *c, struct rpc_ccall *cc, int ok)
{
  pthread_mutex_lock(&c->mu); /* unlink before unref: destroy cancels what is linked */
  cc->prev->next = cc->next;
  cc->next->prev = cc->prev;
  pthread_mutex_unlock(&c->mu);
  grpc_call_unref(cc->call);
  cc->call = NULL;
  cc->status = cli_result(&cc->op, ok, cc->out, &cc->resp, &cc->detail);
  if (atomic_load(&c->closing)) {
    cc->next = NULL; /* destroy delivers these after joining this thread */
    if (c->closed_tail)
      c->closed_tail->next = cc;
    else
      c->closed = cc;
    c->closed_tail = cc;
  } else if (c->q) {
    loopq_post(c->q, cli_deliver, cc);
  } else {
    cli_deliver(cc);
  }
}

static void *cli_main(void *arg)
{
  rpc_client_t *c = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_OP_COMPLETE)
      cli_complete(c, ev.tag, ev.success);
  }
  return NULL;
}

rpc_client_t *rpc_client_create(const rpc_client_opts_t *opts)
{
  rpc_client_t *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  c->inflight.next = c->inflight.prev = &c->inflight;
  if (opts && opts->token && *opts->token) {
    c->token = xstrdup(opts->token);
    c->auth.key = grpc_slice_from_static_string(RPC_AUTH_KEY);
    c->auth.value = grpc_slice_from_static_buffer(c->token, strlen(c->token));
  }
  if (opts && opts->loop && !(c->q = loopq_create(opts->loop))) {
    log_error("rpc: cannot attach the client to its loop");
    goto fail;
  }
  grpc_init();
  c->cq = grpc_completion_queue_create_for_next(NULL);
  if (pthread_create(&c->thread, NULL, cli_main, c) != 0) {
    log_error("rpc: cannot start the client thread");
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_destroy(c->cq);
    grpc_shutdown();
    goto fail;
  }
  pthread_setname_np(c->thread, "rpc-client");
  return c;
fail:
  loopq_destroy(c->q);
  free(c->token);
  pthread_mutex_destroy(&c->mu);
  free(c);
  return NULL;
}

/* Cancels every tracked call; the client thread completes them with CANCELLED. */
static void cli_cancel_all(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  atomic_store(&c->closing, 1);
  for (struct rpc_ccall *cc = c->inflight.next; cc != &c->inflight; cc = cc->next)
    grpc_call_cancel_with_status(cc->call, GRPC_STATUS_CANCELLED, "rpc client destroyed", NULL);
  pthread_mutex_unlock(&c->mu);
}

static void cli_free_resources(rpc_client_t *c)
{
  for (rpc_channel_t *ch = c->channels, *next; ch; ch = next) {
    next = ch->next;
    grpc_channel_destroy(ch->ch);
    for (size_t i = 0; i < ch->nmh; i++)
      free(ch->mh[i].path);
    free(ch->mh);
    free(ch->target);
    free(ch);
  }
  for (struct rpc_pluck *p = c->plucks, *next; p; p = next) {
    next = p->next;
    grpc_completion_queue_shutdown(p->cq);
    grpc_completion_queue_destroy(p->cq);
    free(p);
  }
  for (struct rpc_ccall *cc = c->free, *next; cc; cc = next) {
    next = cc->next;
    free(cc);
  }
}

void rpc_client_destroy(rpc_client_t *c)
{
  if (!c)
    return;
  cli_cancel_all(c);
  grpc_completion_queue_shutdown(c->cq); /* pending completions still arrive before SHUTDOWN */
  pthread_join(c->thread, NULL);
  loopq_destroy(c->q); /* callbacks posted before destroy began, in order */
  while (c->closed) {
    struct rpc_ccall *cc = c->closed;
    c->closed = cc->next;
    cli_deliver(cc);
  }
  cli_free_resources(c);
  grpc_completion_queue_destroy(c->cq);
  grpc_shutdown();
  free(c->token);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

rpc_channel_t *rpc_channel_get(rpc_client_t *c, const char *target)
{
  pthread_mutex_lock(&c->mu);
  rpc_channel_t *ch = c->channels;
  while (ch && strcmp(ch->target, target) != 0)
    ch = ch->next;
  if (!ch) {
    ch = xcalloc(1, sizeof(*ch));
    ch->c = c;
    ch->target = xstrdup(target);
    grpc_arg a[6];
    grpc_channel_args args = {rpc_args_fill(a, 0), a};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    ch->ch = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
    ch->next = c->channels;
    c->channels = ch;
  }
  pthread_mutex_unlock(&c->mu);
  return ch;
}

int rpc_call(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
             const ProtobufCMessage *req, int timeout_ms, rpc_done_fn done, void *arg)
{
  rpc_client_t *c = ch->c;
  grpc_call *call;
  const ProtobufCMessageDescriptor *out;
  struct rpc_cop op;
  char *why = NULL;
  int err = cli_begin(ch, svc, method, req, timeout_ms, c->cq, &call, &out, &op, &why);
  if (err) {
    log_error("rpc: %s", why);
    free(why);
    return err;
  }
  pthread_mutex_lock(&c->mu);
  struct rpc_ccall *cc = c->free;
  if (cc) {
    c->free = cc->next;
    c->nfree--;
  } else {
    cc = xmalloc(sizeof(*cc));
  }
  if (atomic_load(&c->closing)) {
    pthread_mutex_unlock(&c->mu);
    grpc_call_unref(call);
    cli_cop_release(&op);
    free(cc);
    return RAYC_ECANCELLED;
  }
  *cc = (struct rpc_ccall){.call = call, .out = out, .done = done, .arg = arg, .c = c, .op = op};
  cc->next = c->inflight.next;
  cc->prev = &c->inflight;
  c->inflight.next->prev = cc;
  c->inflight.next = cc;
  pthread_mutex_unlock(&c->mu);
  grpc_call_error e = cli_start(c, call, &cc->op, cc);
  if (e != GRPC_CALL_OK) {
    /* Never started, so never completes: complete it here with the error instead. */
    log_error("rpc: cannot start %s call: %s", method, grpc_call_error_to_string(e));
    grpc_call_cancel(call, NULL);
    cli_complete(c, cc, 0);
  }
  return 0;
}

static struct rpc_pluck *cli_pluck_get(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  struct rpc_pluck *p = c->plucks;
  if (p)
    c->plucks = p->next;
  pthread_mutex_unlock(&c->mu);
  if (!p) {
    p = xmalloc(sizeof(*p));
    p->cq = grpc_completion_queue_create_for_pluck(NULL);
  }
  return p;
}

static void cli_pluck_put(rpc_client_t *c, struct rpc_pluck *p)
{
  pthread_mutex_lock(&c->mu);
  p->next = c->plucks;
  c->plucks = p;
  pthread_mutex_unlock(&c->mu);
}

int rpc_call_sync(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
                  const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  rpc_client_t *c = ch->c;
  grpc_call *call = NULL;
  const ProtobufCMessageDescriptor *out;
  struct rpc_cop op;
  char *why = NULL;
  *resp = NULL;
  /* A queue per concurrent caller (pooled): pluck wakes only this thread, with no hand-off. */
  struct rpc_pluck *p = cli_pluck_get(c);
  int err = cli_begin(ch, svc, method, req, timeout_ms, p->cq, &call, &out, &op, &why);
  if (err)
    goto out;
  if (cli_start(c, call, &op, &op) != GRPC_CALL_OK) {
    cli_cop_release(&op);
    err = RAYC_EINTERNAL;
    why = xstrdup("cannot start the call");
    goto out;
  }
  grpc_event ev = grpc_completion_queue_pluck(p->cq, &op, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  err = cli_result(&op, ev.type == GRPC_OP_COMPLETE && ev.success, out, resp, &why);
out:
  if (call)
    grpc_call_unref(call);
  cli_pluck_put(c, p);
  if (detail)
    *detail = why;
  else
    free(why);
  return err;
}
