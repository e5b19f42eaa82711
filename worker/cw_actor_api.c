/*
 * The actor calls of the public API that talk to the GCS synchronously: creating an actor,
 * finding one by name, killing one, asking for its state. (Calls to actors are in
 * cw_actor_submit.c, hosting them in cw_actor.c.)
 */
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ACTOR_GCS_TIMEOUT_MS = 10000, ACTOR_ARG_GET_TIMEOUT_MS = 60000 };

void rayc_actor_opts_init(rayc_actor_opts *o)
{
  memset(o, 0, sizeof(*o));
  o->max_concurrency = 1;
  o->bundle_index = -1;
}

char *rayc_actor_hex(const rayc_actor *a, char *out)
{
  return id_hex(a->id, RAYC_ACTOR_ID_SIZE, out);
}

static int actor_gcs_call(cw_t *cw, const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
  rpc_channel_t *ch = cw_actors_gcs(cw);
  if (!ch)
    return RAYC_ENOT_CONNECTED;
  char *detail = NULL;
  int rc = cw_gcs_call_on(cw, ch, &rayc__actor_info_gcs_service__descriptor, method, req, ACTOR_GCS_TIMEOUT_MS, resp,
                          &detail);
  if (rc != 0)
    cw_set_error(rc, "%s: %s", method, detail ? detail : rayc_strerror(rc));
  free(detail);
  return rc;
}

/* ---- creation ---- */

static int opts_check(const rayc_actor_opts *o)
{
  if (o->num_cpus < 0 || o->num_gpus < 0 || o->memory < 0 || o->max_restarts < -1 || o->max_task_retries < -1 ||
      o->max_concurrency < 0 || (o->num_resources && !o->resources) || (o->placement_group && o->bundle_index < -1))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "actor options: resources must not be negative, max_restarts and "
                                                "max_task_retries must be -1 or more, max_concurrency 0 or more");
  for (size_t i = 0; i < o->num_resources; i++)
    if (!o->resources[i].name || !*o->resources[i].name || o->resources[i].amount < 0)
      return cw_set_error(RAYC_EINVALID_ARGUMENT, "actor options: custom resource %zu needs a name and an amount >= 0",
                          i);
  return 0;
}

/* The actor's resource demand (names new); in a placement group, its bundle's names (Ray's), plus
 * a marker so that an actor asking for nothing still lands where the bundle is. */
static Rayc__ResourceEntry **opts_resources(const rayc_actor_opts *o, size_t *n)
{
  Rayc__ResourceEntry **v = xcalloc(4 + o->num_resources, sizeof(*v));
  const char *names[] = {"CPU", "GPU", "memory"};
  double amounts[] = {o->num_cpus, o->num_gpus, o->memory};
  int idx = o->bundle_index < 0 ? -1 : o->bundle_index;
  *n = 0;
  for (size_t i = 0; i < 4 + o->num_resources; i++) {
    const char *name = i < 3 ? names[i] : i < 3 + o->num_resources ? o->resources[i - 3].name : "bundle";
    double amount = i < 3                      ? amounts[i]
                    : i < 3 + o->num_resources ? o->resources[i - 3].amount
                    : o->placement_group       ? 0.001
                                               : 0;
    if (amount <= 0)
      continue;
    Rayc__ResourceEntry *e = xmalloc(sizeof(*e));
    rayc__resource_entry__init(e);
    char group[CW_RES_NAME_MAX];
    if (o->placement_group)
      cw_pg_res_name(o->placement_group->id, idx, name, group);
    e->name = xstrdup(o->placement_group ? group : name);
    e->amount = amount;
    v[(*n)++] = e;
  }
  return v;
}

/* The constructor's arguments travel inline in the creation task, which the GCS keeps to run it
 * again on restarts: references are resolved to their values here. */
static int ctor_args(const rayc_arg *args, size_t nargs, Rayc__TaskArg *storage, Rayc__TaskArg **ptrs, rayc_buf *held)
{
  for (size_t i = 0; i < nargs; i++) {
    rayc__task_arg__init(&storage[i]);
    ptrs[i] = &storage[i];
    storage[i].kind_case = RAYC__TASK_ARG__KIND_VALUE;
    if (args[i].nrefs)
      return cw_set_error(RAYC_EINVALID_ARGUMENT,
                          "constructor argument %zu carries refs: the GCS keeps constructor "
                          "arguments, so they cannot hold refs (pass them to a method)",
                          i);
    if (!args[i].ref) {
      storage[i].value = pb_bytes(args[i].data, args[i].len);
      continue;
    }
    int rc = rayc_get(args[i].ref, 1, ACTOR_ARG_GET_TIMEOUT_MS, &held[i]);
    if (rc != 0)
      return cw_set_error(rc, "constructor argument %zu: %s", i, rayc_last_error());
    if (held[i].nrefs)
      return cw_set_error(RAYC_EINVALID_ARGUMENT,
                          "constructor argument %zu is an object that contains refs: the GCS "
                          "keeps constructor arguments, so they cannot hold refs (pass them to a method)",
                          i);
    storage[i].value = pb_bytes(held[i].data, held[i].len);
  }
  return 0;
}

static void fill_spec(cw_t *cw, Rayc__TaskSpec *spec, const char *cls, const rayc_actor_opts *o,
                      const uint8_t *actor_id, id_task_t *tid)
{
  *tid = id_task_random(cw->job);
  spec->task_id = pb_bytes(tid->b, ID_TASK_SIZE);
  spec->job_id = pb_bytes(cw->job.b, ID_JOB_SIZE);
  spec->type = RAYC__TASK_TYPE__ACTOR_CREATION_TASK;
  spec->function_name = (char *)cls;
  spec->name = (char *)cls;
  spec->num_returns = 1;
  spec->actor_id = pb_bytes(actor_id, ID_ACTOR_SIZE);
  spec->max_concurrency = o->max_concurrency > 0 ? o->max_concurrency : 1;
  spec->language = o->language;
  spec->share_worker = o->share_worker != 0;
}

static int register_actor(cw_t *cw, Rayc__RegisterActorRequest *req, rayc_actor *out, uint64_t *version)
{
  ProtobufCMessage *resp = NULL;
  int rc = actor_gcs_call(cw, "RegisterActor", &req->base, &resp);
  Rayc__RegisterActorReply *rep = (Rayc__RegisterActorReply *)resp;
  if (rc == 0 && rep->actor_id.len != ID_ACTOR_SIZE)
    rc = cw_set_error(RAYC_EPROTOCOL, "RegisterActor: the GCS answered without an actor id");
  if (rc == 0) {
    memcpy(out->id, rep->actor_id.data, ID_ACTOR_SIZE);
    *version = rep->version;
  }
  pb_free(resp);
  return rc;
}

int rayc_actor_create(const char *cls, const rayc_arg *args, size_t nargs, const rayc_actor_opts *opts, rayc_actor *out)
{
  cw_t *cw = cw_api();
  rayc_actor_opts defaults;
  rayc_actor_opts_init(&defaults);
  const rayc_actor_opts *o = opts ? opts : &defaults;
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!cls || !*cls || !out || (nargs && !args))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_actor_create: cls, out and args must not be NULL");
  int rc = opts_check(o);
  if (rc != 0)
    return rc;
  Rayc__RegisterActorRequest req = RAYC__REGISTER_ACTOR_REQUEST__INIT;
  Rayc__TaskSpec spec = RAYC__TASK_SPEC__INIT;
  Rayc__Address owner = RAYC__ADDRESS__INIT;
  size_t n = nargs ? nargs : 1;
  Rayc__TaskArg *storage = xcalloc(n, sizeof(*storage)), **ptrs = xcalloc(n, sizeof(*ptrs));
  rayc_buf *held = xcalloc(n, sizeof(*held));
  uint8_t actor_id[ID_ACTOR_SIZE];
  id_random(actor_id, 12);
  memcpy(actor_id + 12, cw->job.b, ID_JOB_SIZE);
  id_task_t tid;
  uint64_t version = 0;
  fill_spec(cw, &spec, cls, o, actor_id, &tid);
  spec.resources = opts_resources(o, &spec.n_resources);
  rc = ctor_args(args, nargs, storage, ptrs, held);
  if (rc == 0)
    rc = o->detached ? (cw_fill_address(cw, &owner), 0) : cw_actor_owner_address(cw, &owner);
  if (rc == 0) {
    spec.args = ptrs;
    spec.n_args = nargs;
    spec.caller = &owner;
    req.creation_spec = &spec;
    req.name = (char *)(o->name ? o->name : "");
    req.ray_namespace = (char *)(o->ns && *o->ns ? o->ns : "default");
    req.detached = o->detached;
    req.max_restarts = o->max_restarts;
    req.max_task_retries = o->max_task_retries;
    req.get_if_exists = o->get_if_exists;
    req.owner = &owner;
    req.code_path = cw->code_path ? cw->code_path : (char *)"";
    rc = register_actor(cw, &req, out, &version);
  }
  if (rc == 0)
    cw_actors_watch(cw, out->id, version);
  rayc_buf_release(held, nargs);
  for (size_t i = 0; i < spec.n_resources; i++) {
    free(spec.resources[i]->name);
    free(spec.resources[i]);
  }
  free(spec.resources);
  free(held);
  free(ptrs);
  free(storage);
  return rc;
}

/* ---- by name, kill, state ---- */

int rayc_get_actor(const char *name, const char *ns, rayc_actor *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!name || !*name || !out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_get_actor: name and out must not be NULL");
  Rayc__GetNamedActorRequest req = RAYC__GET_NAMED_ACTOR_REQUEST__INIT;
  req.name = (char *)name;
  req.ray_namespace = (char *)(ns && *ns ? ns : "default");
  ProtobufCMessage *resp = NULL;
  int rc = actor_gcs_call(cw, "GetNamedActor", &req.base, &resp);
  Rayc__GetNamedActorReply *rep = (Rayc__GetNamedActorReply *)resp;
  if (rc == 0 && (!rep->actor || rep->actor->actor_id.len != ID_ACTOR_SIZE))
    rc = cw_set_error(RAYC_EPROTOCOL, "GetNamedActor: the GCS answered without an actor");
  if (rc == 0)
    memcpy(out->id, rep->actor->actor_id.data, ID_ACTOR_SIZE);
  else if (rc == RAYC_ENOT_FOUND)
    cw_set_error(rc, "no live actor is named '%s' in namespace '%s'", name, req.ray_namespace);
  pb_free(resp);
  return rc;
}

int rayc_actor_kill(const rayc_actor *a, int no_restart)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!a)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_actor_kill: a must not be NULL");
  Rayc__KillActorRequest req = RAYC__KILL_ACTOR_REQUEST__INIT;
  uint8_t request_id[16]; /* a retry across a GCS restart is the same kill, done once */
  id_random(request_id, sizeof(request_id));
  req.actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  req.no_restart = no_restart;
  req.request_id = pb_bytes(request_id, sizeof(request_id));
  ProtobufCMessage *resp = NULL;
  int rc = actor_gcs_call(cw, "KillActor", &req.base, &resp);
  pb_free(resp);
  if (rc == 0)
    cw_actors_killed(cw, a->id);
  return rc;
}

int rayc_actor_get_state(const rayc_actor *a, rayc_actor_state *state, int *num_restarts)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!a || !state)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_actor_get_state: a and state must not be NULL");
  Rayc__GetActorInfoRequest req = RAYC__GET_ACTOR_INFO_REQUEST__INIT;
  req.actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  ProtobufCMessage *resp = NULL;
  int rc = actor_gcs_call(cw, "GetActorInfo", &req.base, &resp);
  Rayc__GetActorInfoReply *rep = (Rayc__GetActorInfoReply *)resp;
  if (rc == 0 && !rep->actor)
    rc = cw_set_error(RAYC_EPROTOCOL, "GetActorInfo: the GCS answered without an actor");
  if (rc == 0) {
    *state = (rayc_actor_state)rep->actor->state;
    if (num_restarts)
      *num_restarts = rep->actor->num_restarts;
    cw_set_error(0, "%s", rep->actor->state == RAYC__ACTOR_STATE__ACTOR_DEAD ? rep->actor->death_message : "");
  }
  pb_free(resp);
  return rc;
}
