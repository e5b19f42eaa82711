/*
 * The raylet and the GCS: registration at start (retried until the GCS answers or the start-up
 * deadline passes), heartbeats carrying the available resources, re-registration when the GCS
 * no longer knows this node, and unregistration at shutdown.
 */
#include "raylet/raylet.h"

#include "common/daemon.h"
#include "common/log.h"
#include "common/rpc_valid.h"
#include "common/status.h"
#include "common/util.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

enum { GCS_CALL_TIMEOUT_MS = 5000, GCS_START_DEADLINE_MS = 30000 };

/* A heartbeat may go a HB_EARLY_PARTS-th of its period early (20 ms of a second). */
enum { HB_EARLY_PARTS = 50 };

/* Resources the node had run out of and got back go to the GCS within HB_SOON_MS of the last
 * heartbeat (raylet_gcs_report_soon), not a whole period later: a placement group or an actor
 * waiting in the GCS for them is placed at once. At most one heartbeat per HB_SOON_MS. */
enum { HB_SOON_MS = 100 };

void raylet_gcs_report_soon(raylet_t *r)
{
  r->report_soon = 1;
  raylet_cron_busy(r);
}

static void gcs_fill_node(raylet_t *r, Rayc__NodeInfo *n, char *hostname, size_t hlen)
{
  n->node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  n->ip = r->cfg.node_ip;
  n->raylet_port = r->port;
  n->object_manager_port = r->cfg.object_manager_port;
  n->raylet_socket = r->cfg.socket;
  n->store_socket = r->cfg.store_socket;
  n->resources_total = res_to_pb(&r->total, &n->n_resources_total);
  n->resources_available = res_to_pb(&r->available, &n->n_resources_available);
  n->state = RAYC__NODE_STATE__NODE_ALIVE;
  if (gethostname(hostname, hlen) != 0)
    hostname[0] = '\0';
  n->hostname = hostname;
  n->session_dir = r->cfg.session_dir;
  n->is_head = r->cfg.head;
  n->start_time_ms = wall_ms();
  n->metrics_export_port = raylet_metrics_port(r);
  n->store_metrics_port = r->cfg.store_metrics_port;
}

/* Forgets the report the GCS acknowledged: the next heartbeat carries the full report. */
static void gcs_report_forget(raylet_t *r)
{
  free(r->hb_report);
  r->hb_report = NULL;
  r->hb_report_len = 0;
}

static void gcs_register_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  raylet_t *r = arg;
  pb_free(resp);
  if (status != 0) {
    log_warn("registering with the GCS at %s failed: %s (%s)", r->cfg.gcs_address, rayc_strerror(status), detail);
    return; /* the cron retries */
  }
  char id[9];
  log_info("node %s registered with the GCS at %s", id_short(r->node_id.b, ID_NODE_SIZE, id), r->cfg.gcs_address);
  if (!r->registered)
    daemon_notify_ready(r->port, raylet_metrics_port(r), NULL);
  r->registered = 1;
  r->last_heartbeat_ms = 0; /* heartbeat now: its reply brings the cluster view */
  gcs_report_forget(r);     /* and the GCS holds the registered resources only */
}

static void gcs_register(raylet_t *r)
{
  Rayc__RegisterNodeRequest req = RAYC__REGISTER_NODE_REQUEST__INIT;
  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  char hostname[256];
  gcs_fill_node(r, &node, hostname, sizeof(hostname));
  req.node = &node;
  rpc_call(r->gcs, &rayc__node_info_gcs_service__descriptor, "RegisterNode", &req.base, GCS_CALL_TIMEOUT_MS,
           gcs_register_done, r);
  res_pb_free(node.resources_total, node.n_resources_total);
  res_pb_free(node.resources_available, node.n_resources_available);
}

int raylet_gcs_start(raylet_t *r)
{
  /* No BDP pings: each heartbeat reply would otherwise be answered by one, whose ACK wakes the
   * raylet and the GCS once more every second. */
  rpc_client_opts_t opts = {.loop = &r->loop,
                            .token = r->token,
                            .tls = &r->tls,
                            .no_bdp_probe = 1,
                            .idle_close_ms = r->cfg.gcs_idle_close_ms};
  r->client = rpc_client_create(&opts);
  if (!r->client)
    return RAYC_EINTERNAL;
  r->gcs = rpc_channel_get(r->client, r->cfg.gcs_address);
  raylet_hb_udp_start(r);
  gcs_register(r);
  r->last_heartbeat_ms = now_ms();
  return 0;
}

static void gcs_heartbeat_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  raylet_t *r = arg;
  r->hb_in_flight = 0;
  if (status != 0) {
    gcs_report_forget(r);
    log_warn("heartbeat to the GCS failed: %s (%s)", rayc_strerror(status), detail);
  } else {
    raylet_hb_udp_gcs_version(r, ((Rayc__ReportHeartbeatReply *)resp)->udp_version);
    raylet_gcs_heartbeat_apply(r, (Rayc__ReportHeartbeatReply *)resp);
  }
  pb_free(resp);
}

void raylet_gcs_heartbeat_apply(raylet_t *r, const Rayc__ReportHeartbeatReply *rep)
{
  if (rep->report_wanted || rep->unknown_node || rep->node_dead)
    gcs_report_forget(r);
  if (rep->report_wanted)
    r->last_heartbeat_ms = 0; /* at once, in full */
  if (rep->cluster_view)
    raylet_view_apply(r, rep->cluster_view);
  if (!rep->unknown_node && !rep->node_dead)
    raylet_jobs_on_heartbeat(r, rep->pubsub_epoch, rep->job_seq);
  if (rep->node_dead && !r->stopping) {
    /* Cut off long enough to be declared dead (a partition, a long pause, a GCS restart that
     * missed it): its actors were restarted and its tasks retried elsewhere, so none of its
     * workers may run on. The raylet itself stays (its drivers keep their connection; exiting
     * would take a head node's drivers down on a false alarm) and registers again. */
    log_error("the GCS declared this node dead (it missed its health checks): ending every worker and "
              "registering again");
    raylet_pool_kill_all(r, SIGKILL);
    raylet_queue_fail_all(r, RAYC_EUNAVAILABLE, "this node was declared dead; ask again");
    r->registered = 1;
    gcs_register(r);
  } else if (rep->unknown_node && !r->stopping) {
    log_warn("the GCS does not know this node (restarted, or it marked us dead): registering again");
    r->registered = 1;
    gcs_register(r);
  }
}

/* Fills req's report fields; when they are what the GCS acknowledged last, empties them again
 * and marks req `unchanged` instead (an idle node's heartbeat carries no resources). */
static void gcs_fill_report(raylet_t *r, Rayc__ReportHeartbeatRequest *req)
{
  req->resources_available = res_to_pb(&r->available, &req->n_resources_available);
  req->draining = r->draining != 0;
  req->infeasible_demands = raylet_lease_demands(r, &req->n_infeasible_demands);
  /* committed placement-group bundles change the total (and registration may have seen them) */
  req->resources_total = res_to_pb(&r->total, &req->n_resources_total);
  size_t len = protobuf_c_message_get_packed_size(&req->base);
  uint8_t *buf = xmalloc(len ? len : 1);
  protobuf_c_message_pack(&req->base, buf);
  if (r->hb_report && len == r->hb_report_len && memcmp(buf, r->hb_report, len) == 0) {
    free(buf);
    res_pb_free(req->resources_available, req->n_resources_available);
    res_pb_free(req->resources_total, req->n_resources_total);
    raylet_demands_free(req->infeasible_demands, req->n_infeasible_demands);
    req->resources_available = req->resources_total = NULL;
    req->n_resources_available = req->n_resources_total = 0;
    req->infeasible_demands = NULL;
    req->n_infeasible_demands = 0;
    req->draining = 0;
    req->unchanged = 1;
    return;
  }
  free(r->hb_report); /* kept as acknowledged: a failed call or a report_wanted forgets it */
  r->hb_report = buf;
  r->hb_report_len = len;
  req->report_seq = ++r->report_seq; /* after packing: the comparison above ignores it */
}

void raylet_gcs_heartbeat(raylet_t *r)
{
  int64_t now = now_ms();
  if (!r->registered) {
    if (now - r->last_heartbeat_ms >= r->cfg.heartbeat_ms) {
      r->last_heartbeat_ms = now;
      gcs_register(r);
    }
    return;
  }
  /* One heartbeat in flight at a time, so the report the GCS holds is the last one sent. Due a
   * little early (HB_EARLY_PARTS): an idle raylet's cron ticks once a heartbeat period, and a tick
   * that came a millisecond short of it must not put the heartbeat off by a whole period. */
  int64_t period = r->report_soon && HB_SOON_MS < r->cfg.heartbeat_ms ? HB_SOON_MS : r->cfg.heartbeat_ms;
  if (now - r->last_heartbeat_ms < period - period / HB_EARLY_PARTS || r->hb_in_flight)
    return;
  r->last_heartbeat_ms = now;
  r->report_soon = 0;
  Rayc__ReportHeartbeatRequest req = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  gcs_fill_report(r, &req);
  req.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  raylet_view_wanted(r, now, &req.view_epoch, &req.view_version);
  if (req.unchanged && raylet_hb_udp_send(r, now, req.view_epoch, req.view_version))
    return; /* an idle heartbeat went as a datagram (raylet_hb_udp.c): no gRPC call */
  raylet_hb_udp_fill(r, &req);
  if (rpc_call(r->gcs, &rayc__node_info_gcs_service__descriptor, "ReportHeartbeat", &req.base, GCS_CALL_TIMEOUT_MS,
               gcs_heartbeat_done, r) == 0)
    r->hb_in_flight = 1;
  else
    gcs_report_forget(r);
  res_pb_free(req.resources_available, req.n_resources_available);
  res_pb_free(req.resources_total, req.n_resources_total);
  raylet_demands_free(req.infeasible_demands, req.n_infeasible_demands);
}

void raylet_gcs_unregister(raylet_t *r, const char *reason, int drained)
{
  if (!r->gcs || !r->registered)
    return;
  Rayc__UnregisterNodeRequest req = RAYC__UNREGISTER_NODE_REQUEST__INIT;
  req.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  req.reason = (char *)reason;
  req.drained = drained;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(r->gcs, &rayc__node_info_gcs_service__descriptor, "UnregisterNode", &req.base, 2000, &resp,
                         &detail);
  if (rc != 0)
    log_warn("unregistering from the GCS failed: %s (%s)", rayc_strerror(rc), detail ? detail : "");
  free(detail);
  pb_free(resp);
}

static void gcs_mark_job_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_warn("telling the GCS that a job finished failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

void raylet_gcs_mark_job_finished(raylet_t *r, id_job_t job, const char *reason)
{
  if (!r->gcs || r->stopping)
    return;
  Rayc__MarkJobFinishedRequest req = RAYC__MARK_JOB_FINISHED_REQUEST__INIT;
  req.job_id = pb_bytes(job.b, ID_JOB_SIZE);
  req.reason = (char *)reason;
  rpc_call(r->gcs, &rayc__job_info_gcs_service__descriptor, "MarkJobFinished", &req.base, GCS_CALL_TIMEOUT_MS,
           gcs_mark_job_done, r);
}

static void gcs_task_events_sent(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_debug("a worker's task events did not reach the GCS: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

/* Workers' reports wait up to TEV_FLUSH_MS (a worker's own report period) and are sent as one call;
 * waiting frames or events past the other two limits go at once. */
enum { TEV_FLUSH_MS = 1000, TEV_FLUSH_FRAMES = 1024, TEV_FLUSH_EVENTS = 10000, TEV_LAST_WAIT_MS = 1000 };

void raylet_gcs_forward_task_events(raylet_t *r, Rayc__LocalMessage *m)
{
  char why[300];
  /* the GCS checks a request as a whole: one worker's broken report must not cost the others' */
  int valid = rpc_valid_check(&m->task_events->base, NULL, why, sizeof(why)) == 0;
  if (!valid)
    log_warn("a local worker's task events are malformed (%s); dropped", why);
  if (!valid || !r->gcs) {
    pb_free(m);
    return;
  }
  if (r->ntev && r->tev_events + m->task_events->n_events > TEV_FLUSH_EVENTS)
    raylet_gcs_flush_task_events(r, TEV_NOW); /* a batch stays within what one request may carry */
  if (!r->ntev)
    r->tev_since = now_ms();
  r->tev = xrealloc(r->tev, (r->ntev + 1) * sizeof(*r->tev));
  r->tev[r->ntev++] = m;
  r->tev_events += m->task_events->n_events;
  if (r->ntev >= TEV_FLUSH_FRAMES || r->tev_events >= TEV_FLUSH_EVENTS)
    raylet_gcs_flush_task_events(r, TEV_NOW);
}

void raylet_gcs_flush_task_events(raylet_t *r, int when)
{
  if (!r->ntev || (when == TEV_SOON && now_ms() - r->tev_since < TEV_FLUSH_MS))
    return;
  Rayc__TaskEvent **evs = xcalloc(r->tev_events ? r->tev_events : 1, sizeof(*evs));
  Rayc__AddTaskEventDataRequest req = RAYC__ADD_TASK_EVENT_DATA_REQUEST__INIT;
  for (size_t i = 0; i < r->ntev; i++) {
    const Rayc__AddTaskEventDataRequest *t = r->tev[i]->task_events;
    memcpy(evs + req.n_events, t->events, t->n_events * sizeof(*evs));
    req.n_events += t->n_events;
    if (t->dropped > 0) /* a worker's count, summed without overflowing */
      req.dropped = t->dropped > INT64_MAX - req.dropped ? INT64_MAX : req.dropped + t->dropped;
  }
  req.events = evs;
  if (r->gcs && when == TEV_LAST) {
    ProtobufCMessage *resp = NULL;
    char *detail = NULL;
    int rc = rpc_call_sync(r->gcs, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req.base,
                           TEV_LAST_WAIT_MS, &resp, &detail);
    gcs_task_events_sent(NULL, rc, detail ? detail : "", resp);
    free(detail);
  } else if (r->gcs) { /* packed before rpc_call returns: the frames can go */
    rpc_call(r->gcs, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req.base, GCS_CALL_TIMEOUT_MS,
             gcs_task_events_sent, NULL);
  }
  for (size_t i = 0; i < r->ntev; i++)
    pb_free(r->tev[i]);
  free(evs);
  free(r->tev);
  r->tev = NULL;
  r->ntev = r->tev_events = 0;
}
