/*
 * The state API's client side: see client/cli/cli_state.h. Rows are the GCS's replies turned
 * into JSON by their descriptors (common/pb_json.c), with enum prefixes dropped ("ALIVE", not
 * "NODE_ALIVE") and a few derived fields.
 */
#include "client/cli/cli_state.h"

#include "common/ids.h"
#include "common/pb.h"
#include "common/pb_json.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_actor.pb-c.h"
#include "proto/gcs_task.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *const state_kinds[] = {"nodes",          "jobs",    "actors", "tasks", "workers", "placement-groups",
                                   "cluster-events", "objects", NULL};

typedef struct state_kind {
  const char *kind, *id_key;
  const char *const *columns;
} state_kind_t;

static const char *const cols_nodes[] = {"node_id", "ip", "is_head", "state", "death_reason", "hostname", NULL};
static const char *const cols_jobs[] = {"job_id", "status", "driver_pid", "entrypoint", "end_reason", NULL};
static const char *const cols_actors[] = {"actor_id",     "class_name",    "name", "state",
                                          "num_restarts", "death_message", NULL};
static const char *const cols_tasks[] = {"task_id", "attempt",     "name",  "state", "type",
                                         "node_id", "duration_ms", "error", NULL};
static const char *const cols_workers[] = {"worker_id", "node_id", "ip", "pid", "is_alive", "exit_type", NULL};
static const char *const cols_pgs[] = {"placement_group_id", "name", "strategy", "state", "state_detail", NULL};
static const char *const cols_events[] = {"time", "severity", "kind", "message", NULL};
static const char *const cols_objects[] = {"object_id", "object_size", "reference_type", "ip",
                                           "owner_ip",  "owner_port",  "local_refs",     NULL};

static const state_kind_t kinds[] = {
    {"nodes", "node_id", cols_nodes},
    {"jobs", "job_id", cols_jobs},
    {"actors", "actor_id", cols_actors},
    {"tasks", "task_id", cols_tasks},
    {"workers", "worker_id", cols_workers},
    {"placement-groups", "placement_group_id", cols_pgs},
    {"cluster-events", "event_id", cols_events},
    {"objects", "object_id", cols_objects},
};

static const state_kind_t *state_kind(const char *kind)
{
  for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
    if (strcmp(kinds[i].kind, kind) == 0)
      return &kinds[i];
  return NULL;
}

int state_kind_valid(const char *kind)
{
  return state_kind(kind) != NULL;
}

const char *state_id_key(const char *kind)
{
  const state_kind_t *k = state_kind(kind);
  return k ? k->id_key : "id";
}

const char *const *state_columns(const char *kind)
{
  const state_kind_t *k = state_kind(kind);
  return k ? k->columns : cols_events;
}

/* Drops prefix from the string field key of row ("NODE_ALIVE" -> "ALIVE"). */
static void state_strip(json_t *row, const char *key, const char *prefix)
{
  const char *v = json_string_value(json_object_get(row, key));
  size_t n = strlen(prefix);
  if (v && strncmp(v, prefix, n) == 0)
    json_object_set_new(row, key, json_string(v + n));
}

/* Calls svc.method; 0 with *resp, or a code with *err. */
static int state_call(const state_src_t *s, const ProtobufCServiceDescriptor *svc, const char *method,
                      const ProtobufCMessage *req, ProtobufCMessage **resp, char **err)
{
  char *detail = NULL;
  int rc = rpc_call_sync(s->gcs, svc, method, req, s->timeout_ms, resp, &detail);
  if (rc != 0) {
    *err = xasprintf("%s failed: %s", method, detail && *detail ? detail : rayc_strerror(rc));
    free(detail);
  }
  return rc;
}

/* Every message of a repeated field as rows. */
static json_t *state_rows(ProtobufCMessage **v, size_t n)
{
  json_t *rows = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(rows, pb_json_from_message(v[i]));
  return rows;
}

static void state_fix_nodes(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    state_strip(r, "state", "NODE_");
    if (json_is_true(json_object_get(r, "draining")))
      json_object_set_new(r, "state", json_string("ALIVE (draining)"));
  }
}

static void state_fix_jobs(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    json_object_set_new(r, "status", json_string(json_is_true(json_object_get(r, "is_dead")) ? "FINISHED" : "RUNNING"));
  }
}

/* Copies the node_id, ip and port of the Address at key into the row itself. */
static void state_flatten_address(json_t *r, const char *key)
{
  json_t *a = json_object_get(r, key);
  if (!json_is_object(a))
    return;
  json_object_set(r, "node_id", json_object_get(a, "node_id"));
  json_object_set(r, "ip", json_object_get(a, "ip"));
  json_object_set(r, "port", json_object_get(a, "port"));
}

static void state_fix_actors(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    state_strip(r, "state", "ACTOR_");
    state_strip(r, "death_cause", "ACTOR_");
    state_flatten_address(r, "address");
  }
}

static void state_fix_tasks(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    json_int_t start = json_integer_value(json_object_get(r, "start_us"));
    json_int_t end = json_integer_value(json_object_get(r, "end_us"));
    json_int_t created = json_integer_value(json_object_get(r, "pending_us"));
    json_object_set_new(r, "creation_time_ms", created ? json_integer(created / 1000) : json_null());
    json_object_set_new(r, "start_time_ms", start ? json_integer(start / 1000) : json_null());
    json_object_set_new(r, "end_time_ms", end ? json_integer(end / 1000) : json_null());
    json_object_set_new(r, "duration_ms",
                        start && end >= start ? json_real((double)(end - start) / 1000.0) : json_null());
  }
}

static void state_fix_workers(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    state_flatten_address(r, "address");
    state_strip(r, "exit_type", "WORKER_EXIT_");
  }
}

static void state_fix_events(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    state_strip(r, "severity", "EVENT_");
    time_t t = (time_t)(json_integer_value(json_object_get(r, "time_ms")) / 1000);
    char buf[32];
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(r, "time", json_string(buf));
  }
}

static void state_fix_pgs(json_t *rows)
{
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
  {
    state_strip(r, "state", "PG_");
    state_strip(r, "strategy", "PG_");
  }
}

#define STATE_CALL(svc, method, Req, INIT) \
  Req req = INIT;                          \
  rc = state_call(s, &rayc__##svc##__descriptor, method, &req.base, &resp, err)

static int state_fetch_gcs(const state_src_t *s, const char *kind, json_t **rows, char **err)
{
  ProtobufCMessage *resp = NULL;
  int rc = RAYC_EINVALID_ARGUMENT;
  if (strcmp(kind, "nodes") == 0) {
    STATE_CALL(node_info_gcs_service, "GetAllNodeInfo", Rayc__GetAllNodeInfoRequest,
               RAYC__GET_ALL_NODE_INFO_REQUEST__INIT);
    if (rc == 0)
      *rows = state_rows((ProtobufCMessage **)((Rayc__GetAllNodeInfoReply *)resp)->nodes,
                         ((Rayc__GetAllNodeInfoReply *)resp)->n_nodes);
  } else if (strcmp(kind, "jobs") == 0) {
    STATE_CALL(job_info_gcs_service, "GetAllJobInfo", Rayc__GetAllJobInfoRequest, RAYC__GET_ALL_JOB_INFO_REQUEST__INIT);
    if (rc == 0)
      *rows = state_rows((ProtobufCMessage **)((Rayc__GetAllJobInfoReply *)resp)->jobs,
                         ((Rayc__GetAllJobInfoReply *)resp)->n_jobs);
  } else if (strcmp(kind, "actors") == 0) {
    STATE_CALL(actor_info_gcs_service, "ListActors", Rayc__ListActorsRequest, RAYC__LIST_ACTORS_REQUEST__INIT);
    if (rc == 0)
      *rows = state_rows((ProtobufCMessage **)((Rayc__ListActorsReply *)resp)->actors,
                         ((Rayc__ListActorsReply *)resp)->n_actors);
  } else if (strcmp(kind, "workers") == 0) {
    STATE_CALL(worker_info_gcs_service, "GetAllWorkerInfo", Rayc__GetAllWorkerInfoRequest,
               RAYC__GET_ALL_WORKER_INFO_REQUEST__INIT);
    if (rc == 0)
      *rows = state_rows((ProtobufCMessage **)((Rayc__GetAllWorkerInfoReply *)resp)->workers,
                         ((Rayc__GetAllWorkerInfoReply *)resp)->n_workers);
  } else if (strcmp(kind, "placement-groups") == 0) {
    STATE_CALL(placement_group_info_gcs_service, "GetAllPlacementGroup", Rayc__GetAllPlacementGroupRequest,
               RAYC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT);
    if (rc == 0)
      *rows = state_rows((ProtobufCMessage **)((Rayc__GetAllPlacementGroupReply *)resp)->placement_groups,
                         ((Rayc__GetAllPlacementGroupReply *)resp)->n_placement_groups);
  } else if (strcmp(kind, "cluster-events") == 0) {
    STATE_CALL(event_gcs_service, "GetClusterEvents", Rayc__GetClusterEventsRequest,
               RAYC__GET_CLUSTER_EVENTS_REQUEST__INIT);
    if (rc == 0)
      *rows = state_rows((ProtobufCMessage **)((Rayc__GetClusterEventsReply *)resp)->events,
                         ((Rayc__GetClusterEventsReply *)resp)->n_events);
  } else {
    *err = xasprintf("'%s' cannot be listed", kind);
  }
  pb_free(resp);
  return rc;
}

static int state_fetch_tasks(const state_src_t *s, const char *job_hex, json_t **rows, char **err)
{
  Rayc__GetTaskEventsRequest req = RAYC__GET_TASK_EVENTS_REQUEST__INIT;
  uint8_t job[ID_JOB_SIZE];
  if (job_hex && *job_hex) {
    if (id_from_hex(job_hex, job, ID_JOB_SIZE) != 0) {
      *err = xasprintf("'%s' is not a job id (%d hex digits)", job_hex, 2 * ID_JOB_SIZE);
      return RAYC_EINVALID_ARGUMENT;
    }
    req.job_id = pb_bytes(job, ID_JOB_SIZE);
  }
  ProtobufCMessage *resp = NULL;
  int rc = state_call(s, &rayc__task_info_gcs_service__descriptor, "GetTaskEvents", &req.base, &resp, err);
  if (rc == 0) {
    Rayc__GetTaskEventsReply *r = (Rayc__GetTaskEventsReply *)resp;
    *rows = state_rows((ProtobufCMessage **)r->tasks, r->n_tasks);
  }
  pb_free(resp);
  return rc;
}

int state_fetch(const state_src_t *s, const char *kind, const char *job_hex, json_t **rows, char **err)
{
  *rows = NULL;
  int rc = strcmp(kind, "tasks") == 0     ? state_fetch_tasks(s, job_hex, rows, err)
           : strcmp(kind, "objects") == 0 ? state_fetch_objects(s, rows, err)
                                          : state_fetch_gcs(s, kind, rows, err);
  if (rc != 0)
    return rc;
  if (strcmp(kind, "nodes") == 0)
    state_fix_nodes(*rows);
  else if (strcmp(kind, "jobs") == 0)
    state_fix_jobs(*rows);
  else if (strcmp(kind, "actors") == 0)
    state_fix_actors(*rows);
  else if (strcmp(kind, "tasks") == 0)
    state_fix_tasks(*rows);
  else if (strcmp(kind, "workers") == 0)
    state_fix_workers(*rows);
  else if (strcmp(kind, "cluster-events") == 0)
    state_fix_events(*rows);
  else if (strcmp(kind, "placement-groups") == 0)
    state_fix_pgs(*rows);
  return 0;
}

/* ---- working on rows ---- */

const char *state_text(json_t *row, const char *key, char *buf, size_t len)
{
  json_t *v = json_object_get(row, key);
  if (json_is_string(v))
    snprintf(buf, len, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, len, "%.3f", json_real_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
  else if (!v || json_is_null(v))
    snprintf(buf, len, "%s", "");
  else {
    char *d = json_dumps(v, JSON_COMPACT);
    snprintf(buf, len, "%s", d ? d : "");
    free(d);
  }
  return buf;
}

int state_filter(json_t *rows, const char *filter)
{
  const char *eq = strchr(filter, '=');
  if (!eq || eq == filter)
    return RAYC_EINVALID_ARGUMENT;
  int neg = eq[-1] == '!';
  size_t klen = (size_t)(eq - filter) - (size_t)neg;
  char *key = strndup(filter, klen), buf[1024];
  const char *want = eq + 1;
  for (size_t i = json_array_size(rows); i-- > 0;) {
    int match = strcasecmp(state_text(json_array_get(rows, i), key, buf, sizeof(buf)), want) == 0;
    if (match == neg)
      json_array_remove(rows, i);
  }
  free(key);
  return 0;
}

void state_limit(json_t *rows, int limit)
{
  while (limit > 0 && json_array_size(rows) > (size_t)limit)
    json_array_remove(rows, json_array_size(rows) - 1);
}

json_t *state_find(json_t *rows, const char *kind, const char *id)
{
  const char *key = state_id_key(kind);
  json_t *found = NULL, *r;
  size_t i, n = 0, idlen = strlen(id);
  char buf[256];
  json_array_foreach(rows, i, r)
  {
    const char *v = state_text(r, key, buf, sizeof(buf));
    if (strcmp(v, id) == 0)
      return r;
    if (idlen && strncmp(v, id, idlen) == 0) {
      found = r;
      n++;
    }
  }
  return n == 1 ? found : NULL;
}

json_t *state_summary(const char *kind, json_t *rows)
{
  int objects = strcmp(kind, "objects") == 0;
  const char *group = strcmp(kind, "actors") == 0 ? "class_name" : objects ? "ip" : "name";
  const char *state = objects ? "reference_type" : "state";
  json_t *sum = json_object(), *r;
  size_t i;
  char g[256], st[64];
  json_array_foreach(rows, i, r)
  {
    state_text(r, group, g, sizeof(g));
    state_text(r, state, st, sizeof(st));
    json_t *e = json_object_get(sum, g);
    if (!e) {
      e = json_object();
      json_object_set_new(sum, g, e);
    }
    json_object_set_new(e, st, json_integer(json_integer_value(json_object_get(e, st)) + 1));
    if (objects) /* and their bytes */
      json_object_set_new(e, "bytes",
                          json_integer(json_integer_value(json_object_get(e, "bytes")) +
                                       json_integer_value(json_object_get(r, "object_size"))));
  }
  json_t *out = json_object();
  json_object_set_new(out, "summary", sum);
  json_object_set_new(out, "total", json_integer((json_int_t)json_array_size(rows)));
  return out;
}

/* The trace process of a task: its node (ids shortened), named once by a metadata event. */
static json_int_t state_trace_pid(json_t *meta, json_t *events, const char *node)
{
  json_t *pid = json_object_get(meta, node);
  if (pid)
    return json_integer_value(pid);
  json_int_t n = (json_int_t)json_object_size(meta) + 1;
  json_object_set_new(meta, node, json_integer(n));
  char name[64];
  snprintf(name, sizeof(name), "node %.8s", *node ? node : "unknown");
  json_array_append_new(events, json_pack("{s:s, s:s, s:I, s:I, s:{s:s}}", "name", "process_name", "ph", "M", "pid", n,
                                          "tid", (json_int_t)0, "args", "name", name));
  return n;
}

json_t *state_timeline(json_t *tasks)
{
  json_t *events = json_array(), *meta = json_object(), *r;
  size_t i;
  char node[64], name[256], id[64], st[32];
  json_array_foreach(tasks, i, r)
  {
    json_int_t start = json_integer_value(json_object_get(r, "start_us"));
    json_int_t end = json_integer_value(json_object_get(r, "end_us"));
    if (!start || end < start)
      continue; /* never ran, or still running */
    json_int_t pid = state_trace_pid(meta, events, state_text(r, "node_id", node, sizeof(node)));
    json_array_append_new(
        events,
        json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:{s:s, s:I, s:s, s:s}}", "name",
            state_text(r, "name", name, sizeof(name)), "cat", "task", "ph", "X", "ts", start, "dur", end - start, "pid",
            pid, "tid", json_integer_value(json_object_get(r, "worker_pid")), "args", "task_id",
            state_text(r, "task_id", id, sizeof(id)), "attempt", json_integer_value(json_object_get(r, "attempt")),
            "state", state_text(r, "state", st, sizeof(st)), "job_id",
            json_string_value(json_object_get(r, "job_id")) ? json_string_value(json_object_get(r, "job_id")) : ""));
  }
  json_decref(meta);
  return json_pack("{s:o, s:s}", "traceEvents", events, "displayTimeUnit", "ms");
}

static void state_target(json_t *groups, const char *daemon, const char *ip, json_int_t port, const char *node)
{
  if (port <= 0)
    return;
  int v6 = strchr(ip, ':') != NULL;
  char target[128];
  snprintf(target, sizeof(target), "%s%s%s:%lld", v6 ? "[" : "", ip, v6 ? "]" : "", (long long)port);
  json_array_append_new(
      groups, json_pack("{s:[s], s:{s:s, s:s}}", "targets", target, "labels", "daemon", daemon, "node_id", node));
}

int state_metrics_targets(const state_src_t *s, const char *gcs_host, json_t **out, char **err)
{
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  int rc = state_call(s, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &resp, err);
  if (rc != 0)
    return rc;
  const Rayc__GetAllNodeInfoReply *r = (const Rayc__GetAllNodeInfoReply *)resp;
  json_t *groups = json_array();
  state_target(groups, "gcs", gcs_host, r->gcs_metrics_port, "");
  for (size_t i = 0; i < r->n_nodes; i++) {
    const Rayc__NodeInfo *n = r->nodes[i];
    char id[2 * ID_NODE_SIZE + 1] = "";
    if (n->state != RAYC__NODE_STATE__NODE_ALIVE)
      continue;
    if (n->node_id.len == ID_NODE_SIZE)
      id_hex(n->node_id.data, ID_NODE_SIZE, id);
    state_target(groups, "raylet", n->ip, n->metrics_export_port, id);
    state_target(groups, "store", n->ip, n->store_metrics_port, id);
  }
  pb_free(resp);
  *out = groups;
  return 0;
}
