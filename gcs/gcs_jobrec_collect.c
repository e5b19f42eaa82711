/*
 * Gathering what a finished job used on every node, for its governance record (gcs_jobrec.h).
 *
 * When a submitted job ends, its record waits JOBREC_SETTLE_MS (the raylets hear on the JOB channel
 * that its drivers finished, sample their workers and end them), then the GCS asks every ALIVE
 * node's raylet (NodeManagerService.GetJobUsage: CPU-seconds, peak RSS, workers, listening
 * endpoints and live processes of the job's workers) and store (ObjectManagerService.GetJobObjects:
 * objects created, pulled from other nodes, spilled, and left) about the job's driver JobIDs. When
 * every answer is in (or failed: each call has a deadline) the record is appended. The calls run on
 * the GCS loop; collections are driven by the GCS cron and survive nothing: a GCS that restarts
 * starts them again for ended jobs that have no record yet.
 */
#include "gcs/gcs_jobrec.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_jobsub.h"
#include "gcs/gcs_server.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum { JOBREC_SETTLE_MS = 2000, JOBREC_CALL_MS = 5000 };

typedef struct jobrec_collect {
  struct jobrec_collect *next;
  gcs_jobsubs_t *t;
  char *sid;
  Rayc__JobSubmission *job; /* owned copy as it ended: the record survives a delete meanwhile */
  int64_t due_ms;           /* monotonic: when to ask the nodes */
  int launched, pending;
  json_t *nodes; /* one object per asked node, filled by the answers */
} jobrec_collect_t;

typedef struct jobrec_call {
  jobrec_collect_t *c;
  size_t node; /* index into c->nodes */
  int store;   /* 0: the raylet's answer, 1: the store's */
} jobrec_call_t;

void gcs_jobrec_collect_start(gcs_jobsubs_t *t, const Rayc__JobSubmission *j, int64_t delay_ms)
{
  for (jobrec_collect_t *c = t->collects; c; c = c->next)
    if (strcmp(c->sid, j->submission_id) == 0)
      return;
  jobrec_collect_t *c = xcalloc(1, sizeof(*c));
  c->t = t;
  c->sid = xstrdup(j->submission_id);
  c->job = (Rayc__JobSubmission *)gcs_pb_dup(&j->base);
  c->due_ms = now_ms() + (delay_ms >= 0 ? delay_ms : JOBREC_SETTLE_MS);
  c->next = t->collects;
  t->collects = c;
}

static void collect_free(jobrec_collect_t *c)
{
  json_decref(c->nodes);
  pb_free(c->job);
  free(c->sid);
  free(c);
}

/* Appends the record once every answer is in, and forgets the collection. */
static void collect_maybe_done(jobrec_collect_t *c)
{
  if (c->pending > 0)
    return;
  gcs_jobsubs_t *t = c->t;
  for (jobrec_collect_t **pp = &t->collects; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  if (!t->stopping)
    gcs_jobrecs_append(t->recs, t->s, c->job, c->nodes);
  collect_free(c);
}

static json_t *collect_strings(char **v, size_t n)
{
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

static void collect_usage(json_t *node, const Rayc__GetJobUsageReply *r)
{
  double cpu = 0;
  uint64_t rss = 0, workers = 0;
  json_t *live = json_array(), *eps = json_array();
  for (size_t i = 0; i < r->n_jobs; i++) {
    const Rayc__JobUsage *u = r->jobs[i];
    cpu += u->cpu_seconds;
    rss = u->peak_rss_bytes > rss ? u->peak_rss_bytes : rss;
    workers += u->workers;
    for (size_t k = 0; k < u->n_live_pids; k++)
      json_array_append_new(live, json_integer(u->live_pids[k]));
    json_array_extend(eps, collect_strings(u->endpoints, u->n_endpoints));
  }
  json_object_set_new(node, "cpu_seconds", json_real(cpu));
  json_object_set_new(node, "peak_rss_bytes", json_integer((json_int_t)rss));
  json_object_set_new(node, "workers", json_integer((json_int_t)workers));
  json_object_set_new(node, "processes_left", live);
  json_object_set_new(node, "endpoints", eps);
}

static void collect_objects(json_t *node, const Rayc__GetJobObjectsReply *r)
{
  uint64_t v[10] = {0};
  for (size_t i = 0; i < r->n_jobs; i++) {
    const Rayc__JobObjects *o = r->jobs[i];
    uint64_t add[10] = {o->created_objects, o->created_bytes, o->pulled_objects, o->pulled_bytes, o->spilled_objects,
                        o->spilled_bytes,   o->objects_left,  o->bytes_left,     o->spilled_left, o->cached_left};
    for (int k = 0; k < 10; k++)
      v[k] += add[k];
  }
  static const char *names[10] = {"objects_created", "bytes_created",     "objects_pulled", "bytes_pulled",
                                  "objects_spilled", "bytes_spilled",     "objects_left",   "bytes_left",
                                  "spilled_left",    "cached_copies_left"};
  for (int k = 0; k < 10; k++)
    json_object_set_new(node, names[k], json_integer((json_int_t)v[k]));
}

static void collect_on_reply(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  jobrec_call_t *call = arg;
  jobrec_collect_t *c = call->c;
  json_t *node = json_array_get(c->nodes, call->node);
  if (status != 0) {
    char *why = xasprintf("%s: %s", call->store ? "store" : "raylet",
                          detail && *detail ? detail : rayc_strerror(status));
    json_object_set_new(node, call->store ? "store_error" : "raylet_error", json_string(why));
    free(why);
  } else if (call->store) {
    collect_objects(node, (const Rayc__GetJobObjectsReply *)resp);
  } else {
    collect_usage(node, (const Rayc__GetJobUsageReply *)resp);
  }
  pb_free(resp);
  free(call);
  c->pending--;
  collect_maybe_done(c);
}

/* Starts one call to ip:port; counts it pending. */
static void collect_call(jobrec_collect_t *c, size_t node, int store, const char *ip, int port,
                         const ProtobufCMessage *req)
{
  char *addr = xasprintf("%s%s%s:%d", strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "", port);
  jobrec_call_t *call = xcalloc(1, sizeof(*call));
  call->c = c;
  call->node = node;
  call->store = store;
  c->pending++;
  int rc = rpc_call(rpc_channel_get(c->t->client, addr),
                    store ? &rayc__object_manager_service__descriptor : &rayc__node_manager_service__descriptor,
                    store ? "GetJobObjects" : "GetJobUsage", req, JOBREC_CALL_MS, collect_on_reply, call);
  if (rc != 0) {
    c->pending--;
    free(call);
  }
  free(addr);
}

/* Asks every alive node about the job's driver JobIDs. */
static void collect_launch(jobrec_collect_t *c)
{
  gcs_jobsubs_t *t = c->t;
  gcs_server_t *s = t->s;
  Rayc__JobSubmission *j = c->job;
  c->launched = 1;
  c->nodes = json_array();
  c->pending = 1; /* held while the calls start, so an early failure cannot finish c */
  Rayc__GetJobUsageRequest ureq = RAYC__GET_JOB_USAGE_REQUEST__INIT;
  Rayc__GetJobObjectsRequest oreq = RAYC__GET_JOB_OBJECTS_REQUEST__INIT;
  if (j) {
    ureq.job_ids = oreq.job_ids = j->driver_job_ids;
    ureq.n_job_ids = oreq.n_job_ids = j->n_driver_job_ids;
  }
  for (size_t i = 0; j && j->n_driver_job_ids && t->client && i < s->nodes.n; i++) {
    const gcs_node_t *n = s->nodes.v[i];
    if (n->state != GCS_NODE_ALIVE)
      continue;
    char id[2 * ID_NODE_SIZE + 1];
    json_array_append_new(c->nodes, json_pack("{s:s, s:s, s:b}", "node_id", id_hex(n->id.b, ID_NODE_SIZE, id), "ip",
                                              n->info->ip, "is_head", n->info->is_head));
    size_t k = json_array_size(c->nodes) - 1;
    collect_call(c, k, 0, n->info->ip, n->info->raylet_port, &ureq.base);
    if (n->info->object_manager_port > 0)
      collect_call(c, k, 1, n->info->ip, n->info->object_manager_port, &oreq.base);
  }
  c->pending--;
  collect_maybe_done(c);
}

void gcs_jobrec_collect_cron(gcs_jobsubs_t *t, int64_t now)
{
  jobrec_collect_t *due = NULL;
  for (jobrec_collect_t *c = t->collects; c && !due; c = c->next)
    if (!c->launched && now >= c->due_ms)
      due = c;
  if (due)
    collect_launch(due); /* one per tick: launching may finish (and free) it */
}

void gcs_jobrec_collect_release(gcs_jobsubs_t *t)
{
  while (t->collects) {
    jobrec_collect_t *c = t->collects;
    t->collects = c->next;
    collect_free(c);
  }
}
