/*
 * rayc-store's server lifecycle: the region, the object logic, the I/O threads, the listening
 * socket and the object manager; the connection callbacks from common/local.h; the hooks the
 * object logic calls; the reply helpers; and the one periodic timer (STYLE.md rule 16), which
 * unpins idle served objects, retries failed restores, and lets the spiller look again after a
 * failed spill.
 *
 * Untrusted input: a frame that does not unpack as a LocalMessage closes its connection (nothing
 * in it can be trusted, not even the seq to answer); anything that unpacks gets a reply, an error
 * one when it is wrong (store_handlers.c). Either way only that client is affected.
 */
#include "object-store/store_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

void store_reply(local_conn_t *c, uint64_t seq, Rayc__LocalMessage *m, int pass_fd)
{
  Rayc__LocalStatus st = RAYC__LOCAL_STATUS__INIT;
  m->seq = seq;
  m->status = &st;
  /* A failed send means the connection is closing: its on_close cleans up. */
  (void)local_conn_send_msg(c, &m->base, pass_fd);
  m->status = NULL;
}

void store_reply_error(local_conn_t *c, uint64_t seq, int code, const char *msg)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  Rayc__LocalStatus st = RAYC__LOCAL_STATUS__INIT;
  st.code = code;
  st.message = (char *)(uintptr_t)(msg ? msg : rayc_strerror(code));
  m.seq = seq;
  m.status = &st;
  (void)local_conn_send_msg(c, &m.base, -1);
}

void store_reply_ok(local_conn_t *c, uint64_t seq)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_OK;
  m.ok = 1;
  store_reply(c, seq, &m, -1);
}

int store_fail(store_server_t *s, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof(s->err), fmt, ap);
  va_end(ap);
  return code;
}

void store_kick(store_server_t *s)
{
  if (s->shut_down)
    return;
  store_core_take_freed(&s->core);
  store_room_retry(s);
  store_spill_maybe(s);
}

uint64_t store_internal_client(store_server_t *s)
{
  return STORE_CLIENT_INTERNAL | ++s->next_client;
}

/* ---- subscriptions ---- */

void store_subscribe(store_server_t *s, local_conn_t *c)
{
  store_conn_t *sc = local_conn_data(c);
  if (sc->subscribed)
    return;
  sc->subscribed = 1;
  sc->sub_prev = NULL;
  sc->sub_next = s->subs;
  if (s->subs)
    s->subs->sub_prev = sc;
  s->subs = sc;
}

static void store_unsubscribe(store_server_t *s, store_conn_t *sc)
{
  if (!sc->subscribed)
    return;
  if (sc->sub_prev)
    sc->sub_prev->sub_next = sc->sub_next;
  else
    s->subs = sc->sub_next;
  if (sc->sub_next)
    sc->sub_next->sub_prev = sc->sub_prev;
  sc->subscribed = 0;
}

void store_notify_sealed(store_server_t *s, const store_obj_t *o)
{
  if (!s->subs)
    return;
  Rayc__StoreObjectSealed n = RAYC__STORE_OBJECT_SEALED__INIT;
  n.object_id = pb_bytes(o->id, ID_OBJECT_SIZE);
  n.data_size = o->data_size;
  n.metadata_size = o->metadata_size;
  n.owner = pb_bytes(o->owner, o->owner_len);
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_OBJECT_SEALED;
  m.store_object_sealed = &n;
  for (store_conn_t *sc = s->subs; sc; sc = sc->sub_next)
    store_reply(sc->conn, 0, &m, -1);
}

/* ---- hooks of the object logic ---- */

static void store_on_sealed(void *ctx, const store_obj_t *o)
{
  store_server_t *s = ctx;
  if (s->shut_down)
    return;
  store_gets_on_object(s, o->id);
  if (!o->secondary)
    store_jobs_count(s, o->id, STORE_JOBS_CREATED, o->data_size + o->metadata_size);
  store_pull_on_sealed(s, o);
  store_notify_sealed(s, o);
}

static void store_on_restored(void *ctx, const store_obj_t *o)
{
  store_server_t *s = ctx;
  if (s->shut_down)
    return;
  store_gets_on_object(s, o->id);
  store_om_on_restored(s, o);
}

/* ---- connections ---- */

static void store_on_connect(void *ctx, local_conn_t *c)
{
  (void)ctx;
  store_conn_t *sc = xcalloc(1, sizeof(*sc));
  sc->conn = c;
  local_conn_set_data(c, sc);
  log_debug("client %" PRIu64 " (pid %d) connected", local_conn_id(c), (int)local_conn_pid(c));
}

static void store_on_frame(void *ctx, local_conn_t *c, const uint8_t *payload, size_t len)
{
  store_server_t *s = ctx;
  Rayc__LocalMessage *m = rayc__local_message__unpack(NULL, len, payload);
  if (!m) {
    log_warn("client %" PRIu64 " (pid %d) sent a frame of %zu bytes that is not a LocalMessage; closing it",
             local_conn_id(c), (int)local_conn_pid(c), len);
    local_conn_close(c);
    return;
  }
  store_dispatch(s, c, m);
  pb_free(m);
  store_cron_busy(s);
  /* Freed memory, or a released reference that made an object droppable or spillable, may let
   * the requests waiting for room proceed. */
  if (store_core_take_freed(&s->core) || s->rooms_head)
    store_kick(s);
}

static void store_on_close(void *ctx, local_conn_t *c)
{
  store_server_t *s = ctx;
  store_conn_t *sc = local_conn_data(c);
  uint64_t before = store_core_used(&s->core);
  store_wait_drop(s, c);
  store_pull_drop_conn(s, c);
  store_core_drop_client(&s->core, local_conn_id(c));
  store_unsubscribe(s, sc);
  free(sc);
  local_conn_set_data(c, NULL);
  log_debug("client %" PRIu64 " (pid %d) disconnected; %" PRIu64 " bytes freed", local_conn_id(c),
            (int)local_conn_pid(c), before - store_core_used(&s->core));
  store_kick(s); /* freed memory, or a parked create that left the queue, may let others proceed */
}

/* The socket's directory, made 0700 when missing. */
static int store_make_parent_dir(const char *path)
{
  char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  int rc = 0;
  if (slash && slash != dir) {
    *slash = '\0';
    rc = mkdir_p(dir, 0700);
  }
  free(dir);
  return rc;
}

static int store_listen(store_server_t *s, const char *socket_path, const local_limits_t *limits)
{
  static const local_server_cbs_t cbs = {
      .on_connect = store_on_connect,
      .on_frame = store_on_frame,
      .on_close = store_on_close,
  };
  int rc = store_make_parent_dir(socket_path);
  if (rc < 0) {
    log_error("cannot create the directory of %s: %s", socket_path, strerror(-rc));
    return rc;
  }
  s->listener = local_server_create(s->loop, socket_path, &cbs, s, &rc);
  if (s->listener)
    local_server_set_limits(s->listener, limits);
  return s->listener ? 0 : rc;
}

/* 1 when nothing the cron drives is under way: no pins, pulls, parked gets, creates or restores,
 * no spill in flight or backing off, and no local frame for a second. The cron then ticks once a
 * second (metrics, stalled connections) instead of ten times: an idle node's store sleeps. */
static int store_idle(const store_server_t *s)
{
  uint64_t now = uv_now(s->loop);
  return !s->pins.count && !s->pulls.count && !s->gets_head && !s->rooms_head && !s->restores.count &&
         !s->restore_retry && !s->chunk_waits && !s->spill_inflight && now_ms() >= s->spill_backoff_until &&
         now - s->last_frame_ms >= STORE_IDLE_CRON_MS;
}

static void store_on_cron(uv_timer_t *t);

static void store_cron_pace(store_server_t *s, uint64_t want)
{
  if (uv_timer_get_repeat(&s->cron) != want)
    uv_timer_start(&s->cron, store_on_cron, want, want);
}

void store_cron_busy(store_server_t *s)
{
  s->last_frame_ms = uv_now(s->loop);
  if (!s->shut_down)
    store_cron_pace(s, STORE_CRON_MS);
}

static void store_on_cron(uv_timer_t *t)
{
  store_server_t *s = t->data;
  if (s->shut_down)
    return;
  store_cron_pace(s, store_idle(s) ? STORE_IDLE_CRON_MS : STORE_CRON_MS);
  store_om_cron(s);
  store_pull_cron(s);
  store_metrics_cron(s);
  local_server_cron(s->listener);
  if (s->restore_retry) {
    s->restore_retry = 0;
    store_gets_retry_restores(s);
  }
  store_kick(s);
}

/* Spill settings: the directory (made 0700), and how many bytes one fused file should hold: a
 * sixteenth of the store, between 1 MiB and 128 MiB. */
static int store_spill_setup(store_server_t *s, const store_server_opts_t *o)
{
  s->spill_dir = xstrdup(o->spill_dir);
  uint32_t nonce;
  id_random(&nonce, sizeof(nonce)); /* a reused pid never meets its predecessor's files */
  s->spill_prefix = xasprintf("store-%d-%08x-", (int)getpid(), nonce);
  s->spill_threshold = o->spill_threshold > 0 && o->spill_threshold <= 1 ? o->spill_threshold : 0.8;
  uint64_t target = o->capacity / 16;
  s->spill_file_target = target < (1u << 20) ? (1u << 20) : target > (128u << 20) ? (128u << 20) : target;
  int rc = mkdir_p(s->spill_dir, 0700);
  if (rc < 0)
    log_error("cannot create the spill directory %s: %s", s->spill_dir, strerror(-rc));
  else
    store_spill_remove_stale(s);
  return rc;
}

/* Everything but the sockets: region, object logic, I/O threads, maps, the timer. */
static int store_setup(store_server_t *s, const store_server_opts_t *o)
{
  hmap_init(&s->get_index);
  hmap_init(&s->restores);
  hmap_init(&s->pins);
  hmap_init(&s->pulls);
  int rc = store_region_init(&s->region, o->capacity);
  if (rc < 0) {
    log_error("cannot create a shared-memory region of %" PRIu64 " bytes: %s", o->capacity, strerror(-rc));
    return rc;
  }
  store_core_init(&s->core, o->capacity, store_on_sealed, s);
  s->core.on_restored = store_on_restored;
  s->core.on_file_unused = store_spill_file_unused;
  s->token = o->token && o->token[0] ? xstrdup(o->token) : NULL;
  s->io = store_io_create(s->loop, o->io_threads);
  uv_timer_init(s->loop, &s->cron);
  s->cron.data = s;
  uv_timer_start(&s->cron, store_on_cron, STORE_CRON_MS, STORE_CRON_MS);
  return store_spill_setup(s, o);
}

int store_server_create(uv_loop_t *loop, const store_server_opts_t *opts, store_server_t **out)
{
  store_server_t *s = xcalloc(1, sizeof(*s));
  s->loop = loop;
  int rc = store_setup(s, opts);
  if (rc == 0)
    rc = store_listen(s, opts->socket_path, &opts->limits);
  if (rc == 0 && opts->node_ip)
    rc = store_om_start(s, opts->node_ip, opts->om_port, &(rpc_tls_t){opts->tls_cert, opts->tls_key, opts->tls_ca});
  if (rc < 0) {
    store_server_destroy(s);
    return rc;
  }
  log_info("listening on %s; capacity %" PRIu64 " bytes; spilling to %s past %.0f%% (files of %" PRIu64
           " bytes); object manager on %s:%d",
           opts->socket_path, store_core_capacity(&s->core), s->spill_dir, s->spill_threshold * 100,
           s->spill_file_target, opts->node_ip ? opts->node_ip : "(none)", s->om_port);
  *out = s;
  return 0;
}

int store_server_om_port(const store_server_t *s)
{
  return s->om_port;
}

void store_server_shutdown(store_server_t *s)
{
  if (!s || s->shut_down)
    return;
  log_info("shutting down: %" PRIu64 " objects, %" PRIu64 " bytes in use, %" PRIu64 " spilled",
           store_core_num_objects(&s->core), store_core_used(&s->core), s->core.st.num_on_disk);
  s->shut_down = 1;
  store_om_stop(s);
  store_pull_shutdown(s);
  store_wait_drop(s, NULL);
  local_server_destroy(s->listener); /* on_close runs now for every client */
  s->listener = NULL;
  store_io_destroy(s->io); /* finishes the I/O in flight; its results apply to the object table */
  s->io = NULL;
  if (s->region.base)
    uv_close((uv_handle_t *)&s->cron, NULL);
  if (s->spill_dir)
    store_spill_remove_all(s);
}

void store_server_destroy(store_server_t *s)
{
  if (!s)
    return;
  store_server_shutdown(s);
  store_wait_drop(s, NULL);
  if (s->core.alloc)
    store_core_release(&s->core);
  store_region_release(&s->region);
  hmap_release(&s->get_index);
  hmap_release(&s->restores);
  hmap_release(&s->pins);
  hmap_release(&s->pulls);
  store_jobs_release(s);
  free(s->spill_dir);
  free(s->spill_prefix);
  free(s->token);
  free(s);
}
