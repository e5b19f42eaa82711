/*
 * The lease client helper (see lease_client.h): one place that knows the shape of a
 * RequestWorkerLease request and what each kind of reply means.
 */
#include "common/lease_client.h"

#include "common/pb.h"
#include "common/status.h"

#include <stdio.h>
#include <string.h>

void lease_request_init(Rayc__RequestWorkerLeaseRequest *req, const lease_params_t *p, uint8_t lease_id[LEASE_ID_SIZE])
{
  rayc__request_worker_lease_request__init(req);
  id_random(lease_id, LEASE_ID_SIZE);
  req->job_id = pb_bytes(p->job.b, ID_JOB_SIZE);
  req->resources = p->resources;
  req->n_resources = p->n_resources;
  req->code_path = (char *)(p->code_path ? p->code_path : "");
  req->lease_id = pb_bytes(lease_id, LEASE_ID_SIZE);
  req->owner_worker_id = pb_bytes(p->owner.b, ID_WORKER_SIZE);
  req->language = p->language;
  req->spilled = p->spilled;
}

size_t lease_res_entries(const res_set_t *res, Rayc__ResourceEntry *ents, Rayc__ResourceEntry **ptrs)
{
  for (uint32_t i = 0; i < res->n; i++) {
    rayc__resource_entry__init(&ents[i]);
    ents[i].name = (char *)res_name(res->id[i]);
    ents[i].amount = res->amt[i];
    ptrs[i] = &ents[i];
  }
  return res->n;
}

/* Copies an address that names a reachable endpoint (ip and port) into out; 0 or -1. */
static int lease_address(const Rayc__Address *a, lease_reply_t *out)
{
  if (!a || !a->ip || !*a->ip || a->port <= 0 || a->port > 65535 || strlen(a->ip) >= sizeof(out->ip))
    return -1;
  snprintf(out->ip, sizeof(out->ip), "%s", a->ip);
  out->port = a->port;
  int v6 = strchr(a->ip, ':') != NULL;
  snprintf(out->target, sizeof(out->target), "%s%s%s:%d", v6 ? "[" : "", a->ip, v6 ? "]" : "", a->port);
  out->has_node = a->node_id.len == ID_NODE_SIZE;
  if (out->has_node)
    memcpy(out->node.b, a->node_id.data, ID_NODE_SIZE);
  return 0;
}

static enum lease_outcome lease_error_outcome(int status)
{
  switch (status) {
    case RAYC_EINFEASIBLE:
      return LEASE_INFEASIBLE;
    case RAYC_EUNAVAILABLE:
      return LEASE_UNAVAILABLE;
    case RAYC_ECANCELLED:
      return LEASE_CANCELLED;
    default:
      return LEASE_FAILED;
  }
}

static enum lease_outcome lease_answered(const Rayc__RequestWorkerLeaseReply *rep, lease_reply_t *out)
{
  if (rep->rejected) {
    out->reason = rep->reject_reason && *rep->reject_reason ? rep->reject_reason : "the raylet rejected the request";
    return LEASE_REJECTED;
  }
  if (rep->retry_at_raylet)
    return lease_address(rep->retry_at_raylet, out) == 0 ? LEASE_SPILLBACK : LEASE_FAILED;
  const Rayc__Address *w = rep->worker;
  if (!w || w->worker_id.len != ID_WORKER_SIZE || rep->lease_id.len != LEASE_ID_SIZE || lease_address(w, out) != 0)
    return LEASE_FAILED;
  memcpy(out->worker.b, w->worker_id.data, ID_WORKER_SIZE);
  memcpy(out->lease_id, rep->lease_id.data, LEASE_ID_SIZE);
  out->gpu_ids = rep->gpu_ids;
  out->n_gpu_ids = rep->n_gpu_ids;
  return LEASE_GRANTED;
}

enum lease_outcome lease_reply_classify(int status, const char *detail, const Rayc__RequestWorkerLeaseReply *rep,
                                        lease_reply_t *out)
{
  memset(out, 0, sizeof(*out));
  out->status = status;
  out->reason = detail && *detail ? detail : status ? rayc_strerror(status) : "";
  if (status != 0)
    out->outcome = lease_error_outcome(status);
  else if (!rep)
    out->outcome = LEASE_FAILED;
  else
    out->outcome = lease_answered(rep, out);
  if (out->outcome == LEASE_FAILED && status == 0 && !(rep && rep->rejected)) {
    out->reason = "the raylet's reply grants no usable worker and names no other raylet";
    out->status = RAYC_EPROTOCOL;
  }
  return out->outcome;
}

const char *lease_outcome_name(enum lease_outcome o)
{
  static const char *const names[] = {"granted",     "spillback", "rejected", "infeasible",
                                      "unavailable", "cancelled", "failed"};
  return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}
