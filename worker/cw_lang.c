/*
 * The language-binding interface (rayc_lang.h): the executor a worker of another language
 * installs, the running task's ids, and the GCS KV for bindings (a Python driver exports its
 * pickled functions there once per job; workers read and cache them).
 *
 * The executor is process-wide, like the C function registry: it is installed before
 * rayc_worker_main() creates the core worker, and read by the executing threads (lang_mu).
 */
#include "worker/cw.h"

#include "rayc_lang.h"

#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h"

#include <stdlib.h>
#include <string.h>

enum { LANG_KV_TIMEOUT_MS = 10000 };

/* Process-wide (see the header comment): the installed executor, if any. */
static pthread_mutex_t lang_mu = PTHREAD_MUTEX_INITIALIZER;
static rayc_executor lang_exec;
static int lang_exec_set;

void rayc_executor_set(const rayc_executor *ex)
{
  pthread_mutex_lock(&lang_mu);
  lang_exec_set = ex != NULL;
  lang_exec = ex ? *ex : (rayc_executor){0};
  pthread_mutex_unlock(&lang_mu);
}

int cw_lang_executor(rayc_executor *out)
{
  pthread_mutex_lock(&lang_mu);
  int set = lang_exec_set;
  if (set)
    *out = lang_exec;
  pthread_mutex_unlock(&lang_mu);
  return set;
}

int rayc_context_ids(char *task_hex, char *job_hex, char *worker_hex)
{
  cw_t *cw = cw_global;
  if (!cw)
    return cw_set_error(RAYC_ENOT_CONNECTED, "rayc_init() has not been called");
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

static cw_t *lang_require(const char *ns, const void *key)
{
  if (!ns || !key)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "the namespace and key are required"), NULL;
  if (!cw_global)
    cw_set_error(RAYC_ENOT_CONNECTED, "rayc_init() has not been called");
  return cw_global;
}

int rayc_kv_put(const char *ns, const void *key, size_t klen, const void *value, size_t vlen, int overwrite,
                int *added)
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
  int rc = cw_gcs_call(cw, &rayc__internal_kvgcs_service__descriptor, "InternalKVPut", &req.base,
                       LANG_KV_TIMEOUT_MS, &resp, &detail);
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
  int rc = cw_gcs_call(cw, &rayc__internal_kvgcs_service__descriptor, "InternalKVGet", &req.base,
                       LANG_KV_TIMEOUT_MS, &resp, &detail);
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
