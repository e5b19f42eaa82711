/*
 * rayc-store's server lifecycle: the region, the object logic and the listening socket, the
 * connection callbacks from common/local.h, and the reply helpers.
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

/* After a request or a disconnect: freed memory, or a parked create that left the head of the
 * queue, may let the parked creates proceed. */
static void store_after_event(store_server_t *s, int queue_changed)
{
  if ((store_core_take_freed(&s->core) || queue_changed) && !s->shut_down)
    store_wait_retry_creates(s);
}

static void store_on_connect(void *ctx, local_conn_t *c)
{
  (void)ctx;
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
  store_after_event(s, 0);
}

static void store_on_close(void *ctx, local_conn_t *c)
{
  store_server_t *s = ctx;
  uint64_t before = store_core_used(&s->core);
  store_wait_drop(s, c);
  store_core_drop_client(&s->core, local_conn_id(c));
  log_debug("client %" PRIu64 " (pid %d) disconnected; %" PRIu64 " bytes freed", local_conn_id(c),
            (int)local_conn_pid(c), before - store_core_used(&s->core));
  store_after_event(s, 1);
}

/* The socket's directory, made 0700 when missing. */
static int store_make_socket_dir(const char *path)
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

static int store_listen(store_server_t *s, const char *socket_path)
{
  static const local_server_cbs_t cbs = {
    .on_connect = store_on_connect,
    .on_frame = store_on_frame,
    .on_close = store_on_close,
  };
  int rc = store_make_socket_dir(socket_path);
  if (rc < 0) {
    log_error("cannot create the directory of %s: %s", socket_path, strerror(-rc));
    return rc;
  }
  s->listener = local_server_create(s->loop, socket_path, &cbs, s, &rc);
  return s->listener ? 0 : rc;
}

int store_server_create(uv_loop_t *loop, const char *socket_path, uint64_t capacity, store_server_t **out)
{
  store_server_t *s = xcalloc(1, sizeof(*s));
  s->loop = loop;
  int rc = store_region_init(&s->region, capacity);
  if (rc < 0) {
    log_error("cannot create a shared-memory region of %" PRIu64 " bytes: %s", capacity, strerror(-rc));
    free(s);
    return rc;
  }
  store_core_init(&s->core, capacity, store_wait_on_sealed, s);
  rc = store_listen(s, socket_path);
  if (rc < 0) {
    s->shut_down = 1;
    store_server_destroy(s);
    return rc;
  }
  log_info("listening on %s; capacity %" PRIu64 " bytes", socket_path, store_core_capacity(&s->core));
  *out = s;
  return 0;
}

void store_server_shutdown(store_server_t *s)
{
  if (!s || s->shut_down)
    return;
  s->shut_down = 1;
  log_info("shutting down: %" PRIu64 " objects, %" PRIu64 " bytes in use", store_core_num_objects(&s->core),
           store_core_used(&s->core));
  store_wait_drop(s, NULL);
  local_server_destroy(s->listener); /* on_close runs now for every client */
}

void store_server_destroy(store_server_t *s)
{
  if (!s)
    return;
  store_server_shutdown(s);
  store_wait_drop(s, NULL);
  store_core_release(&s->core);
  store_region_release(&s->region);
  free(s);
}
