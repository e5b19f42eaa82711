/*
 * The gRPC layer's server half over gRPC's C core (see rpc.h for the contract; rpc_client.c is
 * the client half, rpc_common.c what both share; rpc_server_setup.c creates the gRPC server and
 * listens, rpc_server_int.h holds the records both files use).
 *
 *
 * Security. srv_authenticate() checks the cluster token once per call, before the request is
 * unpacked, for table methods and unknown paths alike (an unauthenticated peer cannot even learn
 * which methods exist); rpc_token_equal() takes the same time wherever the tokens differ. TLS
 * credentials are made once per server or client by rpc_tls.c; listening on a wildcard address is
 * refused.
 *
 * Threads. Each server owns one completion queue (CQ) and one thread that polls it. Two kinds of
 * table rows. A hot row (the default) is registered with gRPC (grpc_server_register_method, payload
 * read by gRPC), so its call arrives with the request message already in hand: the CQ thread checks
 * the token, unpacks the message and hands the call to its handler, through a loopq onto the
 * daemon's loop (without waking it when the row's `lazy` test passes: the daemon's timer runs
 * rpc_server_flush), or directly when the server has no loop. A cold row (RPC_COLD) is not registered:
 * gRPC keeps 2 slots per registered method in every connection, which a server of many idle peers
 * pays per peer. Its calls arrive through the unregistered requests with only their path; the CQ
 * thread finds the row by path (srv_find_row), checks the token, reads the message with one more
 * batch (READING) and goes on exactly as for a hot row. A path no row has gets UNIMPLEMENTED
 * (UNAUTHENTICATED without the token). Replies are started by whoever holds the call (usually the
 * loop thread); the send batch completes on the CQ thread, which recycles the call record.
 *
 * Server call states (rpc_call_t.state, atomic):
 *
 *   PENDING --(request done)--> QUEUED (loop) --(dispatch)--> PROCESSING --(rpc_reply*)--> SENDING
 *      |  \                        no loop: straight to PROCESSING                            |
 *      |   +--(cold row)--> READING --(message read)--> as a hot row's request done            |
 *      +--(unknown path, bad token, malformed)--> SENDING           (send batch done) --------+--> recycled
 *   QUEUED or PROCESSING --(rpc_server_destroy)--> ORPHANED --(rpc_reply* or dispatch)--> freed
 *
 * Only the CQ thread moves calls out of PENDING and recycles them, so the server's call lists need
 * no lock. rpc_reply() (any thread) and the destroy sweep (CQ thread) race for a PROCESSING call
 * with one compare-and-swap: the reply sends, or the sweep orphans the call (its gRPC call is
 * released at once, so server shutdown never waits for a handler). An orphan keeps its request
 * message alive until the handler's late reply, which frees everything and sends nothing. Calls
 * queued to the loop but not yet dispatched are orphaned the same way and freed by the dispatch
 * that loopq_destroy() runs.
 *
 * Shutdown is counted, not assumed: the server and its CQ are destroyed only when gRPC's shutdown
 * tag has arrived and every call the server armed has come back (s->live == 0), so no batch can be
 * started on a queue that is shutting down. Everything done to the grpc_server after shutdown
 * (cancel, destroy) happens on the CQ thread.
 */

#include "common/rpc.h"
#include "common/rpc_int.h"
#include "common/rpc_server_int.h"
#include "common/rpc_valid.h"
#include "common/rpc_tls.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/loopq.h"
#include "common/rpc_metrics.h"
#include "common/status.h"
#include "common/util.h"

/* ---- server ---- */

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
  char why[256];
  if (rpc_valid_paths(md->input, m->required, why, sizeof(why)) != 0) {
    log_error("rpc: method table row %zu (%s): %s", i, m->method, why);
    return RAYC_EINVALID_ARGUMENT;
  }
  struct rpc_row *row = &s->rows[i];
  row->m = m;
  row->md = md;
  row->path = xasprintf("/%s/%s", m->service->name, md->name);
  rpc_metrics_row(row->path + 1, &row->m_seconds, &row->m_failed);
  for (size_t j = 0; j < i; j++) {
    if (strcmp(s->rows[j].path, row->path) == 0) {
      log_error("rpc: method table row %zu: %s is listed twice", i, row->path);
      return RAYC_EALREADY_EXISTS;
    }
  }
  return 0;
}

static int srv_resolve(rpc_server_t *s, const rpc_method_t *methods, size_t n)
{
  s->rows = xcalloc(n ? n : 1, sizeof(*s->rows));
  for (size_t i = 0; i < n; i++) {
    s->nrows = i + 1;
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

/* Asks gRPC for the next call of row (NULL: of any unregistered path), in a recycled record. */
static void srv_arm(rpc_server_t *s, const struct rpc_row *row)
{
  rpc_call_t *call = s->free;
  if (call)
    s->free = call->free_next;
  else
    call = srv_call_new(s);
  atomic_store(&call->state, RPC_CALL_PENDING);
  call->row = row;
  s->live++;
  grpc_call_error e;
  if (row)
    e = grpc_server_request_registered_call(s->server, row->handle, &call->call, &call->deadline, &call->md,
                                            &call->recv, s->cq, s->cq, call);
  else
    e = grpc_server_request_call(s->server, &call->call, &call->details, &call->md, s->cq, s->cq, call);
  if (e != GRPC_CALL_OK) {
    log_error("rpc: cannot accept calls: %s", grpc_call_error_to_string(e));
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
  if (call->row && call->t0_us)
    rpc_metrics_done(call->row->m_seconds, call->row->m_failed, call->t0_us, code != GRPC_STATUS_OK);
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

/* CQ thread: logs a rejected call, at most RPC_WARN_PER_SEC lines a second so that a peer cannot
 * flood the log; the number left out is logged with the next warning. */
static void srv_warn(rpc_server_t *s, rpc_call_t *call, const char *why)
{
  int64_t sec = now_ms() / 1000;
  if (sec != s->warn_sec) {
    if (s->warn_dropped)
      log_warn("rpc: %lu more rejected calls were not logged", s->warn_dropped);
    s->warn_sec = sec;
    s->warn_n = 0;
    s->warn_dropped = 0;
  }
  if (s->warn_n++ >= RPC_WARN_PER_SEC) {
    s->warn_dropped++;
    return;
  }
  if (call->row) {
    log_warn("rpc: rejected %s from %s: %s", call->row->path, rpc_call_peer(call), why);
    return;
  }
  grpc_slice path = call->details.method; /* a path no table has: as the peer sent it, cut short */
  size_t n = GRPC_SLICE_LENGTH(path);
  log_warn("rpc: rejected %.*s from %s: %s", (int)(n > 200 ? 200 : n), (const char *)GRPC_SLICE_START_PTR(path),
           rpc_call_peer(call), why);
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

/* CQ thread: 1 when the call may go on; 0 when it lacked the token and was answered
 * UNAUTHENTICATED (counted and logged with the peer's address). Checked once here for every
 * method of every table, and for paths no table has, so an unauthenticated peer learns nothing. */
static int srv_authenticate(rpc_server_t *s, rpc_call_t *call)
{
  if (!s->token_len || (call->row && (call->row->m->flags & RPC_NO_AUTH)) || srv_token_ok(s, &call->md))
    return 1;
  atomic_fetch_add(&s->auth_failures, 1);
  rpc_metrics_unauthenticated();
  srv_warn(s, call, "missing or wrong cluster token");
  srv_fail(call, (grpc_status_code)status_to_grpc(RAYC_EUNAUTHENTICATED), "missing or wrong cluster token");
  return 0;
}

/* CQ thread: 1 when the decoded request passes the generic rules, the row's required fields and
 * its check; else answers INVALID_ARGUMENT "<Method>: <why>" (counted, logged rate-limited). */
static int srv_validate(rpc_server_t *s, rpc_call_t *call)
{
  const rpc_method_t *m = call->row->m;
  char why[300], text[400];
  int rc = rpc_valid_check(call->req, m->required, why, sizeof(why));
  if (rc == 0 && m->check)
    rc = m->check(call->req, why, sizeof(why));
  if (rc == 0)
    return 1;
  atomic_fetch_add(&s->invalid, 1);
  snprintf(text, sizeof(text), "%s: %s", m->method, why);
  srv_warn(s, call, text);
  srv_fail(call, (grpc_status_code)status_to_grpc(rc), text);
  return 0;
}

/* CQ thread: unpacks and checks the request of an authenticated call, then hands it over. */
static void srv_decode(rpc_server_t *s, rpc_call_t *call)
{
  const struct rpc_row *row = call->row;
  int got = call->recv != NULL; /* none: the client went away (cancelled) before sending it */
  call->req = rpc_unpack(call->recv, row->md->input);
  if (call->recv)
    grpc_byte_buffer_destroy(call->recv);
  call->recv = NULL;
  if (!call->req) {
    if (got)
      srv_warn(s, call, "malformed request");
    else
      log_debug("rpc: %s from %s ended before its request arrived", row->path, rpc_call_peer(call));
    atomic_fetch_add(&s->invalid, 1);
    srv_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "malformed request");
    return;
  }
  if (!srv_validate(s, call))
    return;
  if (s->q) {
    atomic_store(&call->state, RPC_CALL_QUEUED);
    if (row->m->lazy && row->m->lazy(call->req))
      loopq_post_lazy(s->q, srv_dispatch, call);
    else
      loopq_post(s->q, srv_dispatch, call);
  } else {
    atomic_store(&call->state, RPC_CALL_PROCESSING);
    void (*on_call)(void *) = __atomic_load_n(&s->on_call, __ATOMIC_ACQUIRE);
    if (on_call)
      on_call(s->ctx);
    row->m->handler(s->ctx, call, call->req);
  }
}

/* CQ thread: the row of an unregistered call's path (a cold row; a hot one too, should gRPC hand
 * one over unregistered), or NULL. A linear scan: the tables have a few dozen rows. */
static const struct rpc_row *srv_find_row(const rpc_server_t *s, grpc_slice path)
{
  for (size_t i = 0; i < s->nrows; i++)
    if (grpc_slice_str_cmp(path, s->rows[i].path) == 0)
      return &s->rows[i];
  return NULL;
}

/* CQ thread: asks gRPC for a cold call's message; its completion goes on in srv_decode. */
static void srv_read(rpc_call_t *call)
{
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &call->recv;
  atomic_store(&call->state, RPC_CALL_READING);
  grpc_call_error e = grpc_call_start_batch(call->call, &op, 1, call, NULL);
  if (e != GRPC_CALL_OK) {
    log_error("rpc: cannot read the request of %s: %s", call->row->path, grpc_call_error_to_string(e));
    srv_fail(call, GRPC_STATUS_INTERNAL, "cannot read the request");
  }
}

/* CQ thread: an unregistered call: a cold row's (authenticated, then read) or an unknown path's. */
static void srv_on_unregistered(rpc_server_t *s, rpc_call_t *call)
{
  call->row = srv_find_row(s, call->details.method);
  call->t0_us = now_us();
  if (!srv_authenticate(s, call))
    return;
  if (call->row) {
    srv_read(call);
    return;
  }
  grpc_slice path = call->details.method;
  log_debug("rpc: unknown method %.*s from %s", (int)GRPC_SLICE_LENGTH(path), (const char *)GRPC_SLICE_START_PTR(path),
            rpc_call_peer(call));
  srv_fail(call, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
}

/* CQ thread: a new call arrived (ok) or the server is shutting down (!ok). */
static void srv_on_request(rpc_server_t *s, rpc_call_t *call, int ok)
{
  if (!ok || atomic_load(&s->closing)) {
    srv_recycle(s, call); /* dropping a call cancels it */
    return;
  }
  srv_arm(s, call->row); /* keep the same number outstanding */
  if (!call->row) {
    srv_on_unregistered(s, call);
    return;
  }
  call->t0_us = now_us();
  if (srv_authenticate(s, call))
    srv_decode(s, call);
}

/* CQ thread: a cold call's message was read (ok; without a message the client ended the call,
 * which srv_decode answers as for a hot row), or the server is closing. */
static void srv_on_read(rpc_server_t *s, rpc_call_t *call)
{
  if (atomic_load(&s->closing)) {
    srv_recycle(s, call);
    return;
  }
  srv_decode(s, call);
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

/* 1 while a call's final batch (a reply already handed to gRPC) has not come back. */
static int srv_any_sending(const rpc_server_t *s)
{
  for (const rpc_call_t *call = s->all.next; call != &s->all; call = call->next)
    if (atomic_load(&call->state) == RPC_CALL_SENDING)
      return 1;
  return 0;
}

/* CQ thread, once closing: orphan held calls, let replies already sent go out, cancel what is left,
 * then tear down when everything has come back. Cancelling every call at once would also cancel
 * a reply whose batch gRPC has not yet written (a worker that answers its last call and exits at
 * once lost that answer: test_rpc test_reply_then_destroy); a client that does not read its reply
 * holds the close up for at most RPC_CLOSE_SEND_GRACE_MS. */
static void srv_closing_step(rpc_server_t *s)
{
  if (!s->swept) {
    srv_sweep(s);
    s->swept = 1;
    s->close_t0_ms = now_ms();
  }
  if (!s->cancelled && (!srv_any_sending(s) || now_ms() - s->close_t0_ms >= RPC_CLOSE_SEND_GRACE_MS)) {
    /* Here, not in rpc_server_destroy(): only this thread may destroy the server object. */
    grpc_server_cancel_all_calls(s->server);
    s->cancelled = 1;
  }
  /* The wake-up must have come back too: its batch may not start on a queue already shut down. */
  if (s->shutdown_done && s->live == 0 && s->woken && !s->cq_shut) {
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
  if (ev->tag == &s->wake_tag) {
    s->woken = 1; /* the caller of srv_main() looks at closing next */
    return;
  }
  rpc_call_t *call = ev->tag;
  int st = atomic_load(&call->state);
  if (st == RPC_CALL_PENDING)
    srv_on_request(s, call, ev->success);
  else if (st == RPC_CALL_READING)
    srv_on_read(s, call);
  else if (st == RPC_CALL_SENDING)
    srv_recycle(s, call);
  else
    log_error("rpc: completion for a call in state %d", st);
}

/* The server thread; also run inline by destroy for a server that never started. It blocks on the
 * CQ with no deadline, so an idle server never wakes: rpc_server_destroy() sets closing and then
 * completes the wake-up call on the CQ (srv_wake), so the thread sees closing at least once after
 * it was set, whatever order gRPC's own shutdown events came in. */
static void *srv_main(void *arg)
{
  rpc_server_t *s = arg;
  for (;;) {
    /* Closing with replies still going out: look again soon, for the grace period's end. */
    gpr_timespec until = s->swept && !s->cancelled ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                                  gpr_time_from_millis(20, GPR_TIMESPAN))
                                                   : gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_event ev = grpc_completion_queue_next(s->cq, until, NULL);
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
  free(s->token);
  if (s->wake_call)
    grpc_call_unref(s->wake_call);
  if (s->wake_ch)
    grpc_channel_destroy(s->wake_ch);
  grpc_metadata_array_destroy(&s->wake_md);
  grpc_slice_unref(s->wake_text);
  if (s->creds)
    grpc_server_credentials_release(s->creds);
  if (s->cq)
    grpc_completion_queue_destroy(s->cq);
  if (s->listen_cq) { /* nothing was ever queued on it: shut down, it is drained at once */
    grpc_completion_queue_shutdown(s->listen_cq);
    while (grpc_completion_queue_next(s->listen_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
      ;
    grpc_completion_queue_destroy(s->listen_cq);
  }
  if (s->grpc)
    grpc_shutdown();
  free(s);
}

rpc_server_t *rpc_server_create(const rpc_method_t *methods, size_t n, const rpc_server_opts_t *opts)
{
  rpc_server_t *s = xcalloc(1, sizeof(*s));
  s->all.next = s->all.prev = &s->all;
  grpc_metadata_array_init(&s->wake_md);
  s->wake_text = grpc_empty_slice();
  if (srv_resolve(s, methods, n) < 0) {
    srv_free(s);
    return NULL;
  }
  if (opts && opts->token && *opts->token) {
    s->token = xstrdup(opts->token);
    s->token_len = strlen(s->token);
  }
  s->ctx = opts ? opts->ctx : NULL;
  rpc_srv_create_grpc(s, opts);
  if (opts && rpc_tls_enabled(opts->tls) && !(s->creds = rpc_tls_server_creds(opts->tls))) {
    rpc_server_destroy(s);
    return NULL;
  }
  if (opts && opts->loop && !(s->q = loopq_create(opts->loop))) {
    log_error("rpc: cannot attach the server to its loop");
    rpc_server_destroy(s);
    return NULL;
  }
  return s;
}

int rpc_server_start(rpc_server_t *s)
{
  if (s->started)
    return RAYC_EINVALID_ARGUMENT;
  grpc_server_start(s->server);
  for (size_t i = 0; i < s->nrows; i++)
    for (int k = 0; s->rows[i].handle && k < RPC_ROW_SLOTS; k++)
      srv_arm(s, &s->rows[i]);
  for (size_t k = 0; k < s->unregistered_slots; k++)
    srv_arm(s, NULL);
  if (pthread_create(&s->thread, NULL, srv_main, s) != 0) {
    log_error("rpc: cannot start the server thread");
    return RAYC_EINTERNAL; /* rpc_server_destroy() drains the armed calls inline */
  }
  pthread_setname_np(s->thread, "rpc-server");
  s->started = 1;
  return 0;
}

/* Completes one event on the server's CQ from any thread: a call on a lame channel (one that
 * fails every call at once, without I/O) whose failure is delivered to the CQ with wake_tag. */
static void srv_wake(rpc_server_t *s)
{
  s->wake_ch = grpc_lame_client_channel_create("rayc-wake", GRPC_STATUS_CANCELLED, "rpc server closing");
  s->wake_call = grpc_channel_create_call(s->wake_ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                          grpc_slice_from_static_string("/rayc.Wake/Wake"), NULL,
                                          gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  op.data.recv_status_on_client.trailing_metadata = &s->wake_md;
  op.data.recv_status_on_client.status = &s->wake_status;
  op.data.recv_status_on_client.status_details = &s->wake_text;
  grpc_call_error e = grpc_call_start_batch(s->wake_call, &op, 1, &s->wake_tag, NULL);
  if (e != GRPC_CALL_OK) {
    log_error("rpc: cannot wake the server thread: %s", grpc_call_error_to_string(e));
    abort(); /* the join below would hang forever */
  }
}

void rpc_server_destroy(rpc_server_t *s)
{
  if (!s)
    return;
  if (s->started && pthread_equal(pthread_self(), s->thread)) {
    log_error("rpc: rpc_server_destroy() called from a handler on the server's own thread");
    abort(); /* joining ourselves would hang forever */
  }
  if (s->server) {
    /* Shutdown first: the server thread cancels calls as soon as it sees closing. */
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    atomic_store(&s->closing, 1);
    srv_wake(s);
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

void rpc_server_flush(rpc_server_t *s)
{
  if (s)
    loopq_flush(s->q);
}

int64_t rpc_call_arrival_ms(const rpc_call_t *call)
{
  return call->t0_us / 1000;
}

void rpc_server_on_call(rpc_server_t *s, void (*fn)(void *ctx))
{
  __atomic_store_n(&s->on_call, fn, __ATOMIC_RELEASE);
}

unsigned long rpc_server_auth_failures(const rpc_server_t *s)
{
  return atomic_load(&((rpc_server_t *)s)->auth_failures);
}

unsigned long rpc_server_invalid_requests(const rpc_server_t *s)
{
  return atomic_load(&((rpc_server_t *)s)->invalid);
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
