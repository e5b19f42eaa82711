/*
 * The language-binding interface (rayc_lang.h): the executor a worker of another language
 * installs, the running task's ids, and the GCS KV for bindings (a Python driver exports its
 * pickled functions there once per job; workers read and cache them).
 *
 * The executor is process-wide, like the C function registry: it is installed before
 * rayc_worker_main() creates the core worker, and read by the executing threads (cw_proc.lang_mu).
 */
#include "worker/cw.h"
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "rayc_lang.h"

#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LANG_KV_TIMEOUT_MS = 10000 };

void rayc_executor_set(const rayc_executor *ex)
{
  pthread_mutex_lock(&cw_proc.lang_mu);
  cw_proc.lang_exec_set = ex != NULL;
  cw_proc.lang_exec = ex ? *ex : (rayc_executor){0};
  pthread_mutex_unlock(&cw_proc.lang_mu);
}

int cw_lang_executor(rayc_executor *out)
{
  pthread_mutex_lock(&cw_proc.lang_mu);
  int set = cw_proc.lang_exec_set;
  if (set)
    *out = cw_proc.lang_exec;
  pthread_mutex_unlock(&cw_proc.lang_mu);
  return set;
}

int rayc_context_ids(char *task_hex, char *job_hex, char *worker_hex)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  pthread_mutex_lock(&cw->mu);
  if (task_hex)
    id_hex(cw->current_task.b, ID_TASK_SIZE, task_hex);
  if (job_hex)
    id_hex(cw->job.b, ID_JOB_SIZE, job_hex);
  if (worker_hex)
    id_hex(cw->worker_id.b, ID_WORKER_SIZE, worker_hex);
  pthread_mutex_unlock(&cw->mu);
  return 0;
}

/* A call to the GCS, from a driver or a worker (which reaches it through the raylet's view). */
static int lang_gcs_call(cw_t *cw, const ProtobufCServiceDescriptor *svc, const char *method,
                         const ProtobufCMessage *req, ProtobufCMessage **resp, char **detail)
{
  rpc_channel_t *ch = cw_actors_gcs(cw);
  if (!ch)
    return RAYC_ENOT_CONNECTED;
  return cw_gcs_call_on(cw, ch, svc, method, req, LANG_KV_TIMEOUT_MS, resp, detail);
}

static cw_t *lang_require(const char *ns, const void *key)
{
  if (!ns || !key)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "the namespace and key are required"), NULL;
  return cw_api();
}

int rayc_kv_put(const char *ns, const void *key, size_t klen, const void *value, size_t vlen, int overwrite, int *added)
{
  cw_t *cw = lang_require(ns, key);
  if (!cw)
    return ns && key ? RAYC_ENOT_CONNECTED : RAYC_EINVALID_ARGUMENT;
  Rayc__KVPutRequest req = RAYC__KVPUT_REQUEST__INIT;
  req.ns = (char *)ns;
  req.key = pb_bytes(key, klen);
  req.value = pb_bytes(value, vlen);
  req.overwrite = overwrite != 0;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = lang_gcs_call(cw, &rayc__internal_kvgcs_service__descriptor, "InternalKVPut", &req.base, &resp, &detail);
  if (rc == 0 && added)
    *added = ((Rayc__KVPutReply *)resp)->added;
  if (rc != 0)
    cw_set_error(rc, "the GCS did not store the key: %s", detail ? detail : rayc_strerror(rc));
  free(detail);
  pb_free(resp);
  return rc;
}

int rayc_kv_get(const char *ns, const void *key, size_t klen, void **value, size_t *vlen)
{
  cw_t *cw = lang_require(ns, key);
  if (!cw)
    return ns && key ? RAYC_ENOT_CONNECTED : RAYC_EINVALID_ARGUMENT;
  if (!value || !vlen)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "value and vlen are required");
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)ns;
  req.key = pb_bytes(key, klen);
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = lang_gcs_call(cw, &rayc__internal_kvgcs_service__descriptor, "InternalKVGet", &req.base, &resp, &detail);
  Rayc__KVGetReply *rep = (Rayc__KVGetReply *)resp;
  if (rc != 0) {
    cw_set_error(rc, "the GCS did not answer: %s", detail ? detail : rayc_strerror(rc));
  } else if (!rep->found) {
    rc = cw_set_error(RAYC_ENOT_FOUND, "no key of %zu bytes in namespace %s", klen, ns);
  } else {
    *value = xmalloc(rep->value.len ? rep->value.len : 1);
    memcpy(*value, rep->value.data, rep->value.len);
    *vlen = rep->value.len;
  }
  free(detail);
  pb_free(resp);
  return rc;
}

/* ---- the cluster's nodes ---- */

static void lang_res_copy(Rayc__ResourceEntry *const *in, size_t n, rayc_resource **out, size_t *nout)
{
  *out = xcalloc(n ? n : 1, sizeof(**out));
  *nout = n;
  for (size_t i = 0; i < n; i++) {
    (*out)[i].name = xstrdup(in[i]->name ? in[i]->name : "");
    (*out)[i].amount = in[i]->amount;
  }
}

static void lang_node_fill(const Rayc__NodeInfo *in, rayc_node_info *o)
{
  if (in->node_id.len == ID_NODE_SIZE)
    id_hex(in->node_id.data, ID_NODE_SIZE, o->node_id);
  snprintf(o->ip, sizeof(o->ip), "%s", in->ip ? in->ip : "");
  snprintf(o->hostname, sizeof(o->hostname), "%s", in->hostname ? in->hostname : "");
  snprintf(o->session_dir, sizeof(o->session_dir), "%s", in->session_dir ? in->session_dir : "");
  o->alive = in->state == RAYC__NODE_STATE__NODE_ALIVE;
  o->is_head = in->is_head;
  lang_res_copy(in->resources_total, in->n_resources_total, &o->total, &o->ntotal);
  lang_res_copy(in->resources_available, in->n_resources_available, &o->available, &o->navailable);
}

int rayc_nodes(rayc_node_info **out, size_t *n)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!out || !n)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "out and n are required");
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = lang_gcs_call(cw, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &resp, &detail);
  if (rc != 0) {
    cw_set_error(rc, "the GCS did not list the nodes: %s", detail ? detail : rayc_strerror(rc));
  } else {
    Rayc__GetAllNodeInfoReply *rep = (Rayc__GetAllNodeInfoReply *)resp;
    *out = xcalloc(rep->n_nodes ? rep->n_nodes : 1, sizeof(**out));
    *n = rep->n_nodes;
    for (size_t i = 0; i < rep->n_nodes; i++)
      lang_node_fill(rep->nodes[i], &(*out)[i]);
  }
  free(detail);
  pb_free(resp);
  return rc;
}

void rayc_nodes_free(rayc_node_info *nodes, size_t n)
{
  for (size_t i = 0; nodes && i < n; i++) {
    for (size_t k = 0; k < nodes[i].ntotal; k++)
      free((char *)nodes[i].total[k].name);
    for (size_t k = 0; k < nodes[i].navailable; k++)
      free((char *)nodes[i].available[k].name);
    free(nodes[i].total);
    free(nodes[i].available);
  }
  free(nodes);
}
