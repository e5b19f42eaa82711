/*
 * The gRPC layer's client half over gRPC's C core (see rpc.h for the contract; rpc_server.c is
 * the server half, rpc_common.c what both share).
 *
 * A client owns one CQ and, from its first async call on, one thread that completes async calls
 * and runs their callbacks, directly or through a loopq. Sync calls pluck a completion queue of
 * their own (pooled per client) on the calling thread: no hand-off, usable from a loop thread, and
 * a client used only for sync calls has no thread at all (a second poller would steal the socket's
 * wake-ups and add a thread hop to every sync call; measured ~20 us).
 *
 * Polling only while busy (rpc_client_opts_t.poll_when_busy, a worker's client): under gRPC's
 * epoll1 engine every thread waiting in cq_next takes turns as the process's one poller, whatever
 * queue it waits on. A worker's server thread polls for its calls; once the worker has made one
 * async call (its task events report, once a second), an idle client thread waiting in cq_next
 * took the poller role too and read most incoming PushTasks itself, then woke the server thread
 * to handle them: a third wake-up per batch (docs/PERFORMANCE.md, "1:n actor calls"). So such a
 * client thread waits on idle_cv while no async call is in flight, and clt_track wakes it for the
 * first one.
 */

#include "common/rpc.h"
#include "common/rpc_client_int.h"
#include "common/rpc_int.h"
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

#define RPC_CCALL_FREE_MAX  1024 /* recycled client call records kept per client */
#define RPC_HELPER_BUSY     16   /* async calls in flight from which rpc_client_poll's helper polls too */
#define RPC_HELPER_SLICE_MS 20   /* ... and how often it looks whether they still are */
#define RPC_LEND_IDLE_US    1000 /* a lent queue its borrower let go this long goes back to the client thread */

/* ---- client ---- */

static void clt_cop_init(struct rpc_cop *op)
{
  memset(op, 0, sizeof(*op));
  grpc_metadata_array_init(&op->init_md);
  grpc_metadata_array_init(&op->trail_md);
  op->details = grpc_empty_slice();
}

static void clt_cop_release(struct rpc_cop *op)
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
static int clt_result(struct rpc_cop *op, int ok, const ProtobufCMessageDescriptor *out, ProtobufCMessage **resp,
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
  clt_cop_release(op);
  return err;
}

/* Finds or registers method md on ch; c->mu held. */
static void *clt_handle_locked(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc,
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
static int clt_begin(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
                     const ProtobufCMessage *req, int timeout_ms, grpc_completion_queue *cq, grpc_call **call,
                     const ProtobufCMessageDescriptor **out, struct rpc_cop *op, char **why)
{
  const ProtobufCMethodDescriptor *md = NULL;
  if (svc && method)
    md = protobuf_c_service_descriptor_get_method_by_name(svc, method);
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
  void *handle = clt_handle_locked(ch, svc, md);
  pthread_mutex_unlock(&c->mu);
  *call = grpc_channel_create_registered_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, handle,
                                              rpc_deadline(timeout_ms), NULL);
  *out = md->output;
  clt_cop_init(op);
  op->send = rpc_pack(req);
  return 0;
}

static grpc_call_error clt_start(rpc_client_t *c, grpc_call *call, struct rpc_cop *op, void *tag)
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

/* A call on ch finished (c->mu held); returns ch when that was the last hold of a forgotten
 * channel, for the caller to free once it has let go of the lock. */
static rpc_channel_t *clt_channel_done_locked(rpc_channel_t *ch)
{
  if (!ch)
    return NULL;
  ch->ncalls--;
  return rpc_clt_orphan_take_locked(ch);
}

static void clt_ccall_put(rpc_client_t *c, struct rpc_ccall *cc)
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
static void clt_deliver(void *arg)
{
  struct rpc_ccall *cc = arg;
  rpc_done_fn done = cc->done;
  void *done_arg = cc->arg;
  int status = cc->status;
  char *detail = cc->detail;
  ProtobufCMessage *resp = cc->resp;
  /* Recycle first: the callback may destroy the client (from its loop), so touch nothing after. */
  cc->detail = NULL;
  cc->resp = NULL;
  clt_ccall_put(cc->c, cc);
  done(done_arg, status, detail ? detail : "", resp);
  free(detail);
}

/* Client thread: an async call finished. */
static void clt_complete(rpc_client_t *c, struct rpc_ccall *cc, int ok)
{
  pthread_mutex_lock(&c->mu); /* unlink before unref: destroy cancels what is linked */
  cc->prev->next = cc->next;
  cc->next->prev = cc->prev;
  c->ninflight--;
  rpc_channel_t *gone = clt_channel_done_locked(cc->ch);
  cc->ch = NULL;
  pthread_mutex_unlock(&c->mu);
  grpc_call_unref(cc->call);
  cc->call = NULL;
  rpc_clt_channel_free(gone);
  cc->status = clt_result(&cc->op, ok, cc->out, &cc->resp, &cc->detail);
  if (atomic_load(&c->closing)) {
    cc->next = NULL; /* destroy delivers these after joining this thread */
    if (c->closed_tail)
      c->closed_tail->next = cc;
    else
      c->closed = cc;
    c->closed_tail = cc;
  } else if (c->q) {
    loopq_post(c->q, clt_deliver, cc);
  } else {
    clt_deliver(cc);
  }
}

/* Client thread (c->mu held): sleeps while the queue is lent (rpc_client_lend_begin). It takes
 * the queue back once its borrower has let go of it for RPC_LEND_IDLE_US; while lendings come
 * and go (a loop of synchronous calls) it looks every RPC_LEND_IDLE_US, and while one lasts (a
 * long get) it sleeps until the borrower lets go. Closing, it waits for the borrower to leave. */
static void clt_park_locked(rpc_client_t *c)
{
  unsigned long seen = c->lend_seq - 1;
  while (c->lend != LEND_NONE) {
    int closing = atomic_load(&c->closing);
    if (c->lend == LEND_WANTED && !closing) {
      c->lend = LEND_ACTIVE; /* this thread is out of cq_next: the borrower may poll */
      pthread_cond_broadcast(&c->lend_cv);
    }
    int64_t left = c->idle_since_us + RPC_LEND_IDLE_US - now_us();
    if (c->lend != LEND_ACTIVE && (closing || c->lend == LEND_WANTED || left <= 0)) {
      c->lend = LEND_NONE;
      break;
    }
    if (c->lend == LEND_ACTIVE && (seen == c->lend_seq || closing)) {
      c->park_untimed = 1; /* a long lending: rpc_client_lend_end wakes us */
      pthread_cond_wait(&c->lend_cv, &c->mu);
      c->park_untimed = 0;
      continue;
    }
    seen = c->lend_seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (c->lend == LEND_IDLE ? left : RPC_LEND_IDLE_US) * 1000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&c->lend_cv, &c->mu, &ts);
  }
}

/* Client thread of a poll_when_busy client: sleeps while nothing is in flight (see the top). */
static void clt_idle_wait(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  while (c->poll_when_busy && c->ninflight == 0 && !atomic_load(&c->closing) && c->lend == LEND_NONE) {
    c->idle_waiting = 1;
    pthread_cond_wait(&c->idle_cv, &c->mu);
    c->idle_waiting = 0;
  }
  pthread_mutex_unlock(&c->mu);
}

static void *clt_main(void *arg)
{
  rpc_client_t *c = arg;
  for (;;) {
    if (c->poll_when_busy)
      clt_idle_wait(c);
    if (atomic_load_explicit(&c->lend, memory_order_relaxed) != LEND_NONE) { /* never lent: no lock taken */
      pthread_mutex_lock(&c->mu);
      clt_park_locked(c);
      pthread_mutex_unlock(&c->mu);
    }
    grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type == GRPC_OP_COMPLETE && ev.tag != &c->kick_tag)
      clt_complete(c, ev.tag, ev.success);
  }
  return NULL;
}

rpc_client_t *rpc_client_create(const rpc_client_opts_t *opts)
{
  rpc_client_t *c = xcalloc(1, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->helper_cv, NULL);
  pthread_cond_init(&c->lend_cv, NULL);
  pthread_cond_init(&c->idle_cv, NULL);
  c->poll_when_busy = opts ? opts->poll_when_busy : 0;
  c->inflight.next = c->inflight.prev = &c->inflight;
  c->no_bdp = opts ? opts->no_bdp_probe : 0;
  c->idle_close_ms = opts ? opts->idle_close_ms : 0;
  if (opts && opts->token && *opts->token) {
    c->token = xstrdup(opts->token);
    c->auth.key = grpc_slice_from_static_string(RPC_AUTH_KEY);
    c->auth.value = grpc_slice_from_static_buffer(c->token, strlen(c->token));
    if (!grpc_header_nonbin_value_is_legal(c->auth.value)) {
      log_error("rpc: the cluster token has characters not allowed in a header");
      goto fail;
    }
  }
  if (opts && opts->loop && !(c->q = loopq_create(opts->loop))) {
    log_error("rpc: cannot attach the client to its loop");
    goto fail;
  }
  rpc_absl_quiet();
  grpc_init();
  c->tls = opts && rpc_tls_enabled(opts->tls);
  c->creds = c->tls ? rpc_tls_channel_creds(opts->tls) : grpc_insecure_credentials_create();
  if (!c->creds) {
    grpc_shutdown();
    goto fail;
  }
  c->cq = grpc_completion_queue_create_for_next(NULL);
  return c;
fail:
  loopq_destroy(c->q);
  free(c->token);
  pthread_cond_destroy(&c->helper_cv);
  pthread_cond_destroy(&c->lend_cv);
  pthread_cond_destroy(&c->idle_cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
  return NULL;
}

/* Starts the client thread with the first async call (c->mu held). A client used only for sync
 * calls never has one, so no second thread competes with the caller to poll the connection. */
static int clt_thread_locked(rpc_client_t *c)
{
  if (c->thread_started)
    return 0;
  if (pthread_create(&c->thread, NULL, clt_main, c) != 0) {
    log_error("rpc: cannot start the client thread");
    return RAYC_EINTERNAL;
  }
  pthread_setname_np(c->thread, "rpc-client");
  c->thread_started = 1;
  return 0;
}

/* The helper: while RPC_HELPER_BUSY or more async calls are in flight it waits on a queue that
 * never gets an event, which makes it a second poller of gRPC's sockets (reading replies and
 * completing them onto c->cq, whose thread runs the callbacks, in parallel); otherwise it sleeps,
 * so that one thread polls: a lone synchronous call is not handed between two pollers. */
static void *clt_helper_main(void *arg)
{
  rpc_client_t *c = arg;
  pthread_mutex_lock(&c->mu);
  while (!atomic_load(&c->closing)) {
    if (c->ninflight < RPC_HELPER_BUSY) {
      pthread_cond_wait(&c->helper_cv, &c->mu);
      continue;
    }
    pthread_mutex_unlock(&c->mu);
    gpr_timespec slice = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_millis(RPC_HELPER_SLICE_MS, GPR_TIMESPAN));
    (void)grpc_completion_queue_next(c->poll_cq, slice, NULL); /* a timeout: nothing is ever queued there */
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int rpc_client_poll(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  int err = atomic_load(&c->closing) ? RAYC_ECANCELLED : clt_thread_locked(c);
  c->poll_when_busy = 0; /* the process's one poller: it waits in gRPC always */
  pthread_cond_signal(&c->idle_cv);
  if (!err && !c->helper_started) {
    c->poll_cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&c->helper, NULL, clt_helper_main, c) == 0) {
      pthread_setname_np(c->helper, "rpc-client-2");
      c->helper_started = 1;
    } else {
      grpc_completion_queue_destroy(c->poll_cq); /* one poller only: slower when busy, still right */
      c->poll_cq = NULL;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return err;
}

/* ---- Lending: the queue polled by the thread that waits for a reply ---- */

/* c->mu held: makes the call whose empty batches kick the queue, once. */
static void clt_kick_make_locked(rpc_client_t *c)
{
  if (c->kick_call)
    return;
  c->kick_ch = grpc_lame_client_channel_create("rayc-kick", GRPC_STATUS_UNAVAILABLE, "rpc client kick");
  c->kick_call = grpc_channel_create_call(c->kick_ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                          grpc_slice_from_static_string("/rayc.Kick/Kick"), NULL,
                                          gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

/* c->mu held, not closing (the queue is not shut down): whoever waits in cq_next on c->cq returns
 * with kick_tag (an empty batch completes at once, without I/O). */
static void clt_kick_locked(rpc_client_t *c)
{
  grpc_call_error e = grpc_call_start_batch(c->kick_call, NULL, 0, &c->kick_tag, NULL);
  if (e != GRPC_CALL_OK)
    log_error("rpc: cannot kick the client's queue: %s", grpc_call_error_to_string(e));
}

int rpc_client_lend_begin(rpc_client_t *c)
{
  pthread_t self = pthread_self();
  pthread_mutex_lock(&c->mu);
  int ok = c->thread_started && !atomic_load(&c->closing) && !pthread_equal(self, c->thread) &&
           (c->lend == LEND_NONE || c->lend == LEND_IDLE);
  if (ok) {
    clt_kick_make_locked(c);
    c->borrower = self;
    c->lend_seq++;
    if (c->lend == LEND_IDLE) { /* the client thread still sleeps: no hand-off */
      c->lend = LEND_ACTIVE;
    } else {
      c->lend = LEND_WANTED; /* the client thread leaves cq_next, parks and says so */
      clt_kick_locked(c);
      while (c->lend == LEND_WANTED && !atomic_load(&c->closing))
        pthread_cond_wait(&c->lend_cv, &c->mu);
      ok = c->lend == LEND_ACTIVE;
      if (c->lend == LEND_WANTED)
        c->lend = LEND_NONE;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return ok;
}

int rpc_client_lend_poll(rpc_client_t *c, const struct timespec *deadline)
{
  if (atomic_load(&c->closing))
    return RAYC_ECANCELLED;
  if (atomic_exchange(&c->kicked, 0))
    return 0;
  gpr_timespec dl = gpr_inf_future(GPR_CLOCK_REALTIME);
  if (deadline) {
    dl.tv_sec = deadline->tv_sec;
    dl.tv_nsec = (int32_t)deadline->tv_nsec;
  }
  grpc_event ev = grpc_completion_queue_next(c->cq, dl, NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT)
    return RAYC_ETIMEOUT;
  if (ev.type == GRPC_QUEUE_SHUTDOWN)
    return RAYC_ECANCELLED;
  if (ev.tag != &c->kick_tag)
    clt_complete(c, ev.tag, ev.success);
  return 0;
}

void rpc_client_lend_end(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  if (c->lend == LEND_ACTIVE && pthread_equal(c->borrower, pthread_self())) {
    c->lend = LEND_IDLE;
    c->idle_since_us = now_us();
    if (c->park_untimed || atomic_load(&c->closing)) /* else its timer looks soon enough */
      pthread_cond_broadcast(&c->lend_cv);
  }
  atomic_store(&c->kicked, 0);
  pthread_mutex_unlock(&c->mu);
}

void rpc_client_kick(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  int lent = c->lend == LEND_ACTIVE || c->lend == LEND_WANTED;
  if (!lent || !pthread_equal(c->borrower, pthread_self())) {
    atomic_store(&c->kicked, 1);
    if (c->lend == LEND_ACTIVE && !atomic_load(&c->closing))
      clt_kick_locked(c);
  }
  pthread_mutex_unlock(&c->mu);
}

/* Stops and joins the helper (closing is set), then frees its queue. */
static void clt_helper_stop(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  int started = c->helper_started;
  pthread_cond_broadcast(&c->helper_cv);
  pthread_mutex_unlock(&c->mu);
  if (started)
    pthread_join(c->helper, NULL);
  if (c->poll_cq) {
    grpc_completion_queue_shutdown(c->poll_cq);
    while (grpc_completion_queue_next(c->poll_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
      ;
    grpc_completion_queue_destroy(c->poll_cq);
  }
}

/* Cancels every tracked call; the client thread completes them with CANCELLED. */
static void clt_cancel_all(rpc_client_t *c)
{
  pthread_mutex_lock(&c->mu);
  atomic_store(&c->closing, 1);
  for (struct rpc_ccall *cc = c->inflight.next; cc != &c->inflight; cc = cc->next)
    grpc_call_cancel_with_status(cc->call, GRPC_STATUS_CANCELLED, "rpc client destroyed", NULL);
  if (c->lend == LEND_ACTIVE)
    clt_kick_locked(c); /* the borrower returns, sees closing and lets go; the client thread drains */
  pthread_cond_broadcast(&c->lend_cv);
  pthread_cond_signal(&c->idle_cv);
  pthread_mutex_unlock(&c->mu);
}

static void clt_free_resources(rpc_client_t *c)
{
  if (c->kick_call)
    grpc_call_unref(c->kick_call);
  if (c->kick_ch)
    grpc_channel_destroy(c->kick_ch);
  for (int k = 0; k < 2; k++) /* the orphans left are held by refs only: destroy frees them too */
    for (rpc_channel_t *ch = k ? c->orphans : c->channels, *next; ch; ch = next) {
      next = ch->next;
      rpc_clt_channel_free(ch);
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
  if (c->thread_started && pthread_equal(pthread_self(), c->thread)) {
    log_error("rpc: rpc_client_destroy() called from a callback on the client's own thread");
    abort(); /* joining ourselves would hang forever */
  }
  clt_cancel_all(c);
  clt_helper_stop(c);
  grpc_completion_queue_shutdown(c->cq); /* pending completions still arrive before SHUTDOWN */
  if (c->thread_started)
    pthread_join(c->thread, NULL);
  else
    clt_main(c);       /* no async call was ever made: just wait for SHUTDOWN */
  loopq_destroy(c->q); /* callbacks posted before destroy began, in order */
  while (c->closed) {
    struct rpc_ccall *cc = c->closed;
    c->closed = cc->next;
    clt_deliver(cc);
  }
  clt_free_resources(c);
  grpc_completion_queue_destroy(c->cq);
  grpc_channel_credentials_release(c->creds);
  grpc_shutdown();
  free(c->token);
  pthread_cond_destroy(&c->helper_cv);
  pthread_cond_destroy(&c->lend_cv);
  pthread_cond_destroy(&c->idle_cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* Copies init into a call record linked in flight; RAYC_ECANCELLED while the client closes. */
static int clt_track(rpc_client_t *c, const struct rpc_ccall *init, struct rpc_ccall **out)
{
  pthread_mutex_lock(&c->mu);
  int err = atomic_load(&c->closing) ? RAYC_ECANCELLED : clt_thread_locked(c);
  if (!err) {
    struct rpc_ccall *cc = c->free;
    if (cc) {
      c->free = cc->next;
      c->nfree--;
    } else {
      cc = xmalloc(sizeof(*cc));
    }
    *cc = *init;
    cc->ch->ncalls++;
    if (++c->ninflight == RPC_HELPER_BUSY && c->helper_started)
      pthread_cond_signal(&c->helper_cv);
    if (c->idle_waiting)
      pthread_cond_signal(&c->idle_cv);
    cc->next = c->inflight.next;
    cc->prev = &c->inflight;
    c->inflight.next->prev = cc;
    c->inflight.next = cc;
    *out = cc;
  }
  pthread_mutex_unlock(&c->mu);
  return err;
}

int rpc_call(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req,
             int timeout_ms, rpc_done_fn done, void *arg)
{
  rpc_client_t *c = ch->c;
  struct rpc_ccall init = {.done = done, .arg = arg, .c = c, .ch = ch}, *cc;
  char *why = NULL;
  if (atomic_load(&c->closing))
    return RAYC_ECANCELLED;
  int err = clt_begin(ch, svc, method, req, timeout_ms, c->cq, &init.call, &init.out, &init.op, &why);
  if (err) {
    log_error("rpc: %s", why);
    free(why);
    return err;
  }
  err = clt_track(c, &init, &cc);
  if (err) {
    grpc_call_unref(init.call);
    clt_cop_release(&init.op);
    return err;
  }
  grpc_call_error e = clt_start(c, cc->call, &cc->op, cc);
  if (e != GRPC_CALL_OK) {
    /* Never started, so never completes: complete it here with the error instead. */
    log_error("rpc: cannot start %s call: %s", method, grpc_call_error_to_string(e));
    grpc_call_cancel(cc->call, NULL);
    clt_complete(c, cc, 0);
  }
  return 0;
}

static struct rpc_pluck *clt_pluck_get(rpc_client_t *c)
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

static void clt_pluck_put(rpc_client_t *c, struct rpc_pluck *p)
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
  struct rpc_pluck *p = clt_pluck_get(c);
  pthread_mutex_lock(&c->mu);
  ch->ncalls++;
  pthread_mutex_unlock(&c->mu);
  int err = clt_begin(ch, svc, method, req, timeout_ms, p->cq, &call, &out, &op, &why);
  if (err)
    goto out;
  if (clt_start(c, call, &op, &op) != GRPC_CALL_OK) {
    clt_cop_release(&op);
    err = RAYC_EINTERNAL;
    why = xstrdup("cannot start the call");
    goto out;
  }
  grpc_event ev = grpc_completion_queue_pluck(p->cq, &op, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  err = clt_result(&op, ev.type == GRPC_OP_COMPLETE && ev.success, out, resp, &why);
out:
  if (call)
    grpc_call_unref(call);
  pthread_mutex_lock(&c->mu);
  rpc_channel_t *gone = clt_channel_done_locked(ch);
  pthread_mutex_unlock(&c->mu);
  rpc_clt_channel_free(gone);
  clt_pluck_put(c, p);
  if (detail)
    *detail = why;
  else
    free(why);
  return err;
}
