/* NodeManagerService: the raylet's gRPC handler table. Handlers run on the raylet's loop. */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void h_request_worker_lease(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_lease_request(ctx, call, (const Rayc__RequestWorkerLeaseRequest *)m);
}

static void h_return_worker(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  const Rayc__ReturnWorkerRequest *req = (const Rayc__ReturnWorkerRequest *)m;
  int rc = raylet_lease_return(ctx, req->lease_id.data, req->lease_id.len, req->worker_exiting);
  if (rc != 0) {
    rpc_reply_error(call, rc, "no such lease");
    return;
  }
  Rayc__ReturnWorkerReply rep = RAYC__RETURN_WORKER_REPLY__INIT;
  rpc_reply(call, &rep.base);
}

static Rayc__WorkerStats **stats_workers(raylet_t *r, size_t *n)
{
  size_t count = 0;
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    count++;
  Rayc__WorkerStats **ws = xcalloc(count, sizeof(*ws));
  size_t i = 0;
  for (raylet_worker_t *w = r->workers; w; w = w->next, i++) {
    ws[i] = xmalloc(sizeof(**ws));
    rayc__worker_stats__init(ws[i]);
    ws[i]->worker_id = pb_bytes(w->id.b, ID_WORKER_SIZE);
    ws[i]->pid = w->pid;
    ws[i]->port = w->port;
    ws[i]->leased = w->state == WORKER_LEASED;
    ws[i]->job_id = pb_bytes(w->job.b, ID_JOB_SIZE);
  }
  *n = count;
  return ws;
}

static void h_get_node_stats(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_t *r = ctx;
  (void)m;
  Rayc__GetNodeStatsReply rep = RAYC__GET_NODE_STATS_REPLY__INIT;
  rep.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  rep.resources_total = raylet_res_to_pb(&r->total, &rep.n_resources_total);
  rep.resources_available = raylet_res_to_pb(&r->available, &rep.n_resources_available);
  rep.workers = stats_workers(r, &rep.n_workers);
  for (raylet_lease_t *l = r->leases; l; l = l->next)
    rep.num_leases++;
  rep.draining = r->draining != 0;
  rpc_reply(call, &rep.base);
  raylet_res_pb_free(rep.resources_total, rep.n_resources_total);
  raylet_res_pb_free(rep.resources_available, rep.n_resources_available);
  for (size_t i = 0; i < rep.n_workers; i++)
    free(rep.workers[i]);
  free(rep.workers);
}

static void h_shutdown_raylet(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_t *r = ctx;
  (void)m;
  Rayc__ShutdownRayletReply rep = RAYC__SHUTDOWN_RAYLET_REPLY__INIT;
  rpc_reply(call, &rep.base);
  log_info("shutdown requested over gRPC");
  uv_kill(getpid(), SIGTERM);
  (void)r;
}

static void h_drain_raylet(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_t *r = ctx;
  const Rayc__DrainRayletRequest *req = (const Rayc__DrainRayletRequest *)m;
  if (req->deadline_ms < 0) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "deadline_ms must not be negative");
    return;
  }
  log_info("drain requested over gRPC by %s: %s", rpc_call_peer(call), *req->reason ? req->reason : "(no reason)");
  Rayc__DrainRayletReply rep = RAYC__DRAIN_RAYLET_REPLY__INIT;
  int64_t deadline = raylet_drain_start(r, req->reason, req->deadline_ms);
  rep.accepted = deadline >= 0;
  rep.deadline_ms = deadline >= 0 ? deadline : 0;
  rpc_reply(call, &rep.base);
}

static void h_cancel_worker_lease(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  const Rayc__CancelWorkerLeaseRequest *req = (const Rayc__CancelWorkerLeaseRequest *)m;
  Rayc__CancelWorkerLeaseReply rep = RAYC__CANCEL_WORKER_LEASE_REPLY__INIT;
  rep.found = raylet_lease_cancel(ctx, req->lease_id.data, req->lease_id.len);
  rpc_reply(call, &rep.base);
}

static void h_health_check(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_t *r = ctx;
  (void)m;
  Rayc__HealthCheckReply rep = RAYC__HEALTH_CHECK_REPLY__INIT;
  rep.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  rpc_reply(call, &rep.base);
}

static void h_prepare_bundles(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_bundle_prepare(ctx, call, (const Rayc__PrepareBundleResourcesRequest *)m);
}

static void h_commit_bundles(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_bundle_commit(ctx, call, (const Rayc__CommitBundleResourcesRequest *)m);
}

static void h_cancel_reserve(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_bundle_cancel(ctx, call, (const Rayc__CancelResourceReserveRequest *)m);
}

static void h_get_job_usage(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_usage_on_get(ctx, call, (const Rayc__GetJobUsageRequest *)m);
}

static void h_get_worker_failure_cause(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  raylet_mem_on_failure_cause(ctx, call, (const Rayc__GetWorkerFailureCauseRequest *)m);
}

static const rpc_method_t raylet_methods[] = {
    {.service = &rayc__node_manager_service__descriptor,
     .method = "RequestWorkerLease",
     .handler = h_request_worker_lease,
     .required = "job_id lease_id owner_worker_id"},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "ReturnWorker",
     .handler = h_return_worker,
     .required = "lease_id"},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "GetNodeStats",
     .handler = h_get_node_stats,
     .required = ""},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "ShutdownRaylet",
     .handler = h_shutdown_raylet,
     .required = ""},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "HealthCheck",
     .handler = h_health_check,
     .required = ""},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "DrainRaylet",
     .handler = h_drain_raylet,
     .required = ""},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "CancelWorkerLease",
     .handler = h_cancel_worker_lease,
     .required = "lease_id"},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "PrepareBundleResources",
     .handler = h_prepare_bundles,
     .required = "bundles bundles.placement_group_id bundles.resources"},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "CommitBundleResources",
     .handler = h_commit_bundles,
     .required = "bundles bundles.placement_group_id"},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "CancelResourceReserve",
     .handler = h_cancel_reserve,
     .required = "placement_group_id"},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "GetJobUsage",
     .handler = h_get_job_usage,
     .required = "job_ids"},
    {.service = &rayc__node_manager_service__descriptor, .method = "ListLogs", .handler = raylet_logs_on_list},
    {.service = &rayc__node_manager_service__descriptor, .method = "GetLog", .handler = raylet_logs_on_get},
    {.service = &rayc__node_manager_service__descriptor,
     .method = "GetWorkerFailureCause",
     .handler = h_get_worker_failure_cause,
     .required = "worker_id"},
};

/* SESSION/raylet_address: "IP:PORT" of this raylet's gRPC server, for `rayc stop` (DrainRaylet). */
static void service_write_address(raylet_t *r)
{
  char *path = xasprintf("%s/raylet_address", r->cfg.session_dir);
  char *text = xasprintf("%s:%d\n", r->cfg.node_ip, r->port);
  if (write_file_atomic(path, text, strlen(text)) < 0)
    log_warn("cannot write %s: rayc stop will not be able to drain this node", path);
  free(text);
  free(path);
}

int raylet_service_start(raylet_t *r)
{
  rpc_server_opts_t opts = {.loop = &r->loop, .token = r->token, .ctx = r, .tls = &r->tls};
  r->server = rpc_server_create(raylet_methods, ARRAY_LEN(raylet_methods), &opts);
  if (!r->server)
    return RAYC_EINTERNAL;
  char addr[300];
  snprintf(addr, sizeof(addr), "%s:%d", r->cfg.node_ip, r->cfg.port);
  int port = rpc_server_listen(r->server, addr);
  if (port <= 0) {
    log_error("cannot listen on %s: %s", addr, rayc_strerror(port));
    return port < 0 ? port : RAYC_EIO;
  }
  r->port = port;
  service_write_address(r);
  return rpc_server_start(r->server);
}

const rpc_method_t *raylet_service_methods(size_t *n)
{
  *n = ARRAY_LEN(raylet_methods);
  return raylet_methods;
}
