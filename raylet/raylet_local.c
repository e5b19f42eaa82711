/* The raylet's Unix socket: workers and drivers of this node register here; a closed connection
 * means the worker or driver is gone. */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"

static void local_on_frame(void *ctx, local_conn_t *c, const uint8_t *payload, size_t len)
{
  raylet_t *r = ctx;
  Rayc__LocalMessage *m = rayc__local_message__unpack(NULL, len, payload);
  if (m && m->body_case == RAYC__LOCAL_MESSAGE__BODY_TASK_BLOCKED) {
    raylet_lease_set_blocked(r, local_conn_data(c), m->task_blocked);
    pb_free(m);
    return;
  }
  if (m && m->body_case == RAYC__LOCAL_MESSAGE__BODY_TASK_EVENTS) { /* the GCS checks each event */
    raylet_gcs_forward_task_events(r, m);
    return;
  }
  if (!m || m->body_case != RAYC__LOCAL_MESSAGE__BODY_REGISTER_WORKER) {
    log_warn("local connection %llu (pid %d) sent a malformed or unexpected frame; closing it",
             (unsigned long long)local_conn_id(c), (int)local_conn_pid(c));
    pb_free(m);
    local_conn_close(c);
    return;
  }
  raylet_pool_on_register(r, c, m->register_worker, m->seq);
  pb_free(m);
}

static void local_on_close(void *ctx, local_conn_t *c)
{
  raylet_pool_on_disconnect(ctx, c);
}

int raylet_local_start(raylet_t *r)
{
  static const local_server_cbs_t cbs = {.on_frame = local_on_frame, .on_close = local_on_close};
  int err = 0;
  r->local = local_server_create(&r->loop, r->cfg.socket, &cbs, r, &err);
  if (!r->local) {
    log_error("cannot listen on %s: %s", r->cfg.socket, rayc_strerror(err));
    return err ? err : RAYC_EIO;
  }
  local_limits_t lim = {.max_conns = (size_t)r->cfg.local_max_conns,
                        .frame_max = (size_t)r->cfg.local_frame_max,
                        .stall_ms = r->cfg.local_stall_ms};
  local_server_set_limits(r->local, &lim);
  return 0;
}
