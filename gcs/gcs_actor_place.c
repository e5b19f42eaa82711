/*
 * Placing actors and watching them (see gcs_actor.h): choosing a node, leasing a worker from its
 * raylet, running the constructor there, holding WaitActorExit on the worker and WaitOwnerExit on
 * the owner, probing a raylet after a loss, and stopping workers. Every callback runs on the GCS
 * loop and checks the actor's generation before acting.
 */
#include "gcs/gcs_actor.h"
#include "gcs/gcs_fit.h"

#include "common/lease_client.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  PLACE_RETRY_MS = 1000,     /* no node fits, or its raylet failed: try again after this */
  PLACE_RETRY_FAST_MS = 100, /* a raylet that failed at once */
  WAIT_EXIT_MS = 60000,      /* WaitActorExit / WaitOwnerExit deadline, then re-poll */
  PROBE_MS = 1500,           /* the raylet probe after a worker loss */
  KILL_MS = 5000,
  OWNER_FAILURES = 3, /* failed owner polls in a row that mean the owner died */
};

/* The context of one asynchronous step of one actor. */
typedef struct step {
  gcs_actors_t *m;
  uint8_t id[ID_ACTOR_SIZE];
  uint32_t gen;
  char target[80];
} step_t;

static step_t *step_new(gcs_actors_t *m, const gcs_actor_t *a, const char *target)
{
  step_t *s = xcalloc(1, sizeof(*s));
  s->m = m;
  memcpy(s->id, a->id, ID_ACTOR_SIZE);
  s->gen = a->gen;
  snprintf(s->target, sizeof(s->target), "%s", target ? target : "");
  return s;
}

/* The actor the step is for, if the step is still current. */
static gcs_actor_t *step_actor(step_t *s)
{
  if (s->m->stopping)
    return NULL;
  gcs_actor_t *a = hmap_get(&s->m->by_id, s->id, ID_ACTOR_SIZE);
  return a && a->gen == s->gen && a->state != RAYC__ACTOR_STATE__ACTOR_DEAD ? a : NULL;
}

static void ignore_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg, (void)status, (void)detail;
  pb_free(resp);
}

static Rayc__TaskSpec *actor_spec(const gcs_actor_t *a)
{
  return a->spec ? rayc__task_spec__unpack(NULL, a->spec_len, a->spec) : NULL;
}

void gcs_actor_retry_later(gcs_actor_t *a, int ms)
{
  a->phase = GCS_ACTOR_IDLE;
  a->retry_wanted = 1;
  a->retry_at_ms = now_ms() + ms;
}

/* ---- choosing a node ---- */

/* 2: fits what the node has free now, 1: fits its total only, 0: cannot run there. */
static int node_score(const gcs_actor_t *a, const gcs_node_t *n, const res_set_t *demand)
{
  if (!gcs_fit_usable(n) || (n->hb && n->hb->draining) ||
      (a->has_avoid && memcmp(a->avoid.b, n->id.b, ID_NODE_SIZE) == 0))
    return 0;
  enum gcs_fit f = gcs_fit_node(n, demand);
  return f == GCS_FIT_NOW ? 2 : f == GCS_FIT_LATER ? 1 : 0;
}

static gcs_node_t *pick_node(gcs_actors_t *m, const gcs_actor_t *a, const Rayc__TaskSpec *spec)
{
  gcs_nodes_t *t = &m->s->nodes;
  const Rayc__Address *owner = spec->caller;
  gcs_node_t *own = owner && owner->node_id.len == ID_NODE_SIZE ? gcs_nodes_find(t, owner->node_id.data, ID_NODE_SIZE)
                                                                : NULL;
  res_set_t demand;
  gcs_fit_demand(&demand, spec->resources, spec->n_resources);
  if (own && node_score(a, own, &demand) == 2)
    return own;
  gcs_node_t *best = NULL;
  int best_score = 0;
  for (size_t k = 0; k < t->n; k++) {
    gcs_node_t *n = t->v[(m->rr + k) % t->n];
    int sc = node_score(a, n, &demand);
    if (sc > best_score) {
      best = n;
      best_score = sc;
    }
  }
  m->rr++;
  return best;
}

/* ---- leasing a worker ---- */

void gcs_actor_give_back(gcs_actors_t *m, const char *raylet, const uint8_t *lease_id, int exiting)
{
  Rayc__ReturnWorkerRequest req = RAYC__RETURN_WORKER_REQUEST__INIT;
  req.lease_id = pb_bytes(lease_id, 16);
  req.worker_exiting = exiting;
  rpc_call(rpc_channel_get(m->client, raylet), &rayc__node_manager_service__descriptor, "ReturnWorker", &req.base,
           KILL_MS, ignore_done, NULL);
}

static void lease_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  step_t *s = arg;
  lease_reply_t lr;
  enum lease_outcome o = lease_reply_classify(status, detail, (Rayc__RequestWorkerLeaseReply *)resp, &lr);
  gcs_actor_t *a = step_actor(s);
  char hex[9];
  if (!a || a->phase != GCS_ACTOR_LEASING) {
    if (o == LEASE_GRANTED && !s->m->stopping) /* abandoned meanwhile: the worker never ran anything */
      gcs_actor_give_back(s->m, s->target, lr.lease_id, 0);
  } else if (o == LEASE_GRANTED) {
    a->worker = lr.worker;
    memcpy(a->lease_id, lr.lease_id, 16);
    snprintf(a->ip, sizeof(a->ip), "%s", lr.ip);
    a->port = lr.port;
    gcs_actor_persist(s->m, a); /* a restarted GCS must know to give this worker back */
    gcs_actor_create_on(s->m, a);
  } else {
    /* The GCS chose the node (spilled = 1), so a spillback is as good as a refusal: place again. */
    log_warn("actor %s: no worker from the raylet at %s: %s (%s); trying again", id_short(a->id, ID_ACTOR_SIZE, hex),
             s->target, lease_outcome_name(o), lr.reason);
    a->has_node = 0;
    gcs_actor_retry_later(a, o == LEASE_UNAVAILABLE ? PLACE_RETRY_FAST_MS : PLACE_RETRY_MS);
  }
  pb_free(resp);
  free(s);
}

static void lease_request(gcs_actors_t *m, gcs_actor_t *a, gcs_node_t *n, const Rayc__TaskSpec *spec)
{
  char target[80];
  snprintf(target, sizeof(target), "%s:%d", n->info->ip, n->info->raylet_port);
  Rayc__RequestWorkerLeaseRequest req;
  uint8_t lease_id[LEASE_ID_SIZE];
  lease_params_t p = {.job = a->job,
                      .owner = m->lease_owner,
                      .resources = spec->resources,
                      .n_resources = spec->n_resources,
                      .code_path = a->code_path,
                      .language = spec->language, /* a Python actor gets a Python worker */
                      .spilled = 1}; /* the GCS chose this node: the raylet queues it there, never spills it back */
  p.job.b[0] |= 0x80;                /* the job's actor workers: not ended with the driver (see gcs_actor.h) */
  lease_request_init(&req, &p, lease_id);
  a->gen++;
  a->phase = GCS_ACTOR_LEASING;
  a->has_node = 1;
  a->node = n->id;
  step_t *s = step_new(m, a, target);
  if (rpc_call(rpc_channel_get(m->client, target), &rayc__node_manager_service__descriptor, "RequestWorkerLease",
               &req.base, -1, lease_done, s) != 0) {
    free(s);
    a->has_node = 0;
    gcs_actor_retry_later(a, PLACE_RETRY_MS);
  }
}

void gcs_actor_schedule(gcs_actors_t *m, gcs_actor_t *a)
{
  char hex[9];
  if (m->stopping || a->state == RAYC__ACTOR_STATE__ACTOR_DEAD)
    return;
  Rayc__TaskSpec *spec = actor_spec(a);
  if (!spec) {
    gcs_actor_set_state(m, a, RAYC__ACTOR_STATE__ACTOR_DEAD, RAYC__ACTOR_DEATH_CAUSE__ACTOR_CREATION_FAILED,
                        "its creation task could not be read back");
    return;
  }
  gcs_actor_host_leave(m, a);
  int had_avoid = a->has_avoid;
  gcs_node_t *n = pick_node(m, a, spec);
  a->no_fit_version = 0;
  if (n) {
    a->warned_no_node = 0;
    if (!gcs_actor_host_place(m, a, n, spec))
      lease_request(m, a, n, spec);
  } else {
    if (!a->warned_no_node)
      log_warn("actor %s (%s): no alive node has the resources it needs; waiting for one",
               id_short(a->id, ID_ACTOR_SIZE, hex), a->class_name);
    a->warned_no_node = 1;
    if (!had_avoid) { /* with a node avoided, the next try (without) may fit in the same view */
      a->no_fit_version = m->s->nodes.view_version;
      a->no_fit_ms = now_ms();
    }
    a->has_avoid = 0; /* a node that died may come back under the same id */
    gcs_actor_retry_later(a, PLACE_RETRY_MS);
  }
  pb_free(spec);
}

/* ---- running the constructor ---- */

/* The channel to an actor's worker: a direct one (rpc_channel_get_direct). The worker is reached
 * at this address for as long as it lives and never after (a restart gets a new worker), and the
 * GCS makes one such channel per created actor, so it skips gRPC's resolver, balancer and
 * subchannel and their channel stacks. exit_done forgets it when the worker is gone. */
static rpc_channel_t *gcs_actor_channel(gcs_actors_t *m, const char *target)
{
  return rpc_channel_get_direct(m->client, target);
}

static void watch_exit(gcs_actors_t *m, gcs_actor_t *a);

void gcs_actor_watch(gcs_actors_t *m, gcs_actor_t *a)
{
  if (!m->stopping && a->state == RAYC__ACTOR_STATE__ACTOR_ALIVE && a->port > 0)
    watch_exit(m, a);
}

/* The constructor failed: the error text it returned, or NULL when it succeeded. */
static const char *ctor_error(const Rayc__PushTaskReply *rep)
{
  for (size_t i = 0; i < rep->n_returns; i++)
    if (rep->returns[i]->error)
      return rep->returns[i]->error->message ? rep->returns[i]->error->message : "unknown error";
  return NULL;
}

static void create_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  step_t *s = arg;
  gcs_actor_t *a = step_actor(s);
  Rayc__PushTaskReply *rep = (Rayc__PushTaskReply *)resp;
  if (!a || a->phase != GCS_ACTOR_CREATING) {
    /* abandoned: the worker it was created on has been stopped already */
  } else if (status == 0 && ctor_error(rep)) {
    char *msg = xasprintf("its constructor failed: %s", ctor_error(rep));
    gcs_actor_stop_worker(s->m, a, "its constructor failed");
    gcs_actor_set_state(s->m, a, RAYC__ACTOR_STATE__ACTOR_DEAD, RAYC__ACTOR_DEATH_CAUSE__ACTOR_CREATION_FAILED, msg);
    free(msg);
  } else if (status == 0) {
    a->phase = GCS_ACTOR_IDLE;
    gcs_actor_set_state(s->m, a, RAYC__ACTOR_STATE__ACTOR_ALIVE, a->cause, NULL);
    watch_exit(s->m, a);
  } else {
    char *msg = xasprintf("its worker at %s died while running the constructor (%s: %s)", s->target,
                          rayc_strerror(status), detail ? detail : "");
    gcs_actor_lost(s->m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_WORKER_DIED, msg);
    free(msg);
  }
  pb_free(resp);
  free(s);
}

void gcs_actor_create_on(gcs_actors_t *m, gcs_actor_t *a)
{
  Rayc__TaskSpec *spec = actor_spec(a);
  char target[80];
  snprintf(target, sizeof(target), "%s:%d", a->ip, a->port);
  if (!spec) {
    gcs_actor_lost(m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_CREATION_FAILED, "its creation task could not be read back");
    return;
  }
  spec->actor_incarnation = a->num_restarts;
  spec->share_worker = a->in_host; /* tells the worker it is a host of several actors */
  Rayc__PushTaskRequest req = RAYC__PUSH_TASK_REQUEST__INIT;
  req.task = spec;
  req.lease_id = pb_bytes(a->lease_id, 16);
  a->gen++;
  a->phase = GCS_ACTOR_CREATING;
  step_t *s = step_new(m, a, target);
  if (rpc_call(gcs_actor_channel(m, target), &rayc__core_worker_service__descriptor, "PushTask", &req.base, -1,
               create_done, s) != 0) {
    free(s);
    gcs_actor_retry_later(a, PLACE_RETRY_MS);
  }
  pb_free(spec);
}

void gcs_actor_return_lease(gcs_actors_t *m, gcs_actor_t *a)
{
  gcs_node_t *n = a->has_node ? gcs_nodes_find(&m->s->nodes, a->node.b, ID_NODE_SIZE) : NULL;
  char target[80], hex[9];
  if (m->stopping || !n || !n->info || n->state != GCS_NODE_ALIVE)
    return;
  snprintf(target, sizeof(target), "%s:%d", n->info->ip, n->info->raylet_port);
  log_info("actor %s: giving back the worker at %s:%d leased before the GCS restarted",
           id_short(a->id, ID_ACTOR_SIZE, hex), a->ip, a->port);
  gcs_actor_give_back(m, target, a->lease_id, 1);
}

/* ---- watching a live actor ---- */

static void probe_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  step_t *s = arg;
  gcs_actor_t *a = step_actor(s);
  (void)detail;
  if (a && a->phase == GCS_ACTOR_PROBING) {
    char hex[9];
    char *msg;
    if (status == 0) {
      msg = xasprintf("its worker died unexpectedly (worker %s at %s:%d)", id_short(a->worker.b, ID_WORKER_SIZE, hex),
                      a->ip, a->port);
      gcs_actor_lost(s->m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_WORKER_DIED, msg);
    } else {
      msg = xasprintf("its node %s died (its raylet at %s does not answer)", id_short(a->node.b, ID_NODE_SIZE, hex),
                      s->target);
      a->has_avoid = 1;
      a->avoid = a->node;
      gcs_actor_lost(s->m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_NODE_DIED, msg);
    }
    free(msg);
  }
  pb_free(resp);
  free(s);
}

/* The worker is gone: ask its raylet whether the node is, too. */
static void probe_node(gcs_actors_t *m, gcs_actor_t *a)
{
  gcs_node_t *n = a->has_node ? gcs_nodes_find(&m->s->nodes, a->node.b, ID_NODE_SIZE) : NULL;
  char target[80] = "";
  if (n && n->info)
    snprintf(target, sizeof(target), "%s:%d", n->info->ip, n->info->raylet_port);
  a->gen++;
  a->phase = GCS_ACTOR_PROBING;
  step_t *s = step_new(m, a, target);
  Rayc__GetNodeStatsRequest req = RAYC__GET_NODE_STATS_REQUEST__INIT;
  if (!*target || n->state != GCS_NODE_ALIVE ||
      rpc_call(rpc_channel_get(m->client, target), &rayc__node_manager_service__descriptor, "GetNodeStats", &req.base,
               PROBE_MS, probe_done, s) != 0)
    probe_done(s, RAYC_EUNAVAILABLE, "the node is not alive", NULL);
}

static void exit_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  step_t *s = arg;
  gcs_actor_t *a = step_actor(s);
  Rayc__WaitActorExitReply *rep = (Rayc__WaitActorExitReply *)resp;
  char hex[9];
  /* the worker is gone (or going): no channel kept to it, unless it hosts other actors still */
  if (status != RAYC_ETIMEOUT && !s->m->stopping && !gcs_actor_host_in_use(s->m, s->target))
    rpc_channel_forget(s->m->client, s->target);
  if (!a || a->state != RAYC__ACTOR_STATE__ACTOR_ALIVE) {
  } else if (status == 0 && rep->exited) {
    char *msg = xasprintf("it exited: %s", rep->reason && *rep->reason ? rep->reason : "rayc_actor_exit");
    gcs_actor_set_state(s->m, a, RAYC__ACTOR_STATE__ACTOR_DEAD, RAYC__ACTOR_DEATH_CAUSE__ACTOR_EXITED, msg);
    free(msg);
  } else if (status == RAYC_ETIMEOUT) {
    watch_exit(s->m, a);
  } else {
    log_info("actor %s: its worker at %s is gone (%s: %s)", id_short(a->id, ID_ACTOR_SIZE, hex), s->target,
             status ? rayc_strerror(status) : "exiting", status ? detail : (rep->reason ? rep->reason : ""));
    gcs_actor_host_lost(s->m, a);
    probe_node(s->m, a);
  }
  pb_free(resp);
  free(s);
}

static void watch_exit(gcs_actors_t *m, gcs_actor_t *a)
{
  char target[80];
  snprintf(target, sizeof(target), "%s:%d", a->ip, a->port);
  Rayc__WaitActorExitRequest req = RAYC__WAIT_ACTOR_EXIT_REQUEST__INIT;
  req.actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  step_t *s = step_new(m, a, target);
  if (rpc_call(gcs_actor_channel(m, target), &rayc__actor_worker_service__descriptor, "WaitActorExit", &req.base,
               WAIT_EXIT_MS, exit_done, s) != 0)
    free(s);
}

/* ---- stopping a worker ---- */

typedef struct kill_step {
  gcs_actors_t *m;
  char raylet[80]; /* "": nothing to give back (a host's lease is the host's: gcs_actor_host.c) */
  uint8_t lease_id[16];
} kill_step_t;

static void kill_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  kill_step_t *k = arg;
  (void)detail;
  /* The worker could not be told: make its raylet end it (it is gone already, most likely). */
  if (status != 0 && !k->m->stopping && *k->raylet)
    gcs_actor_give_back(k->m, k->raylet, k->lease_id, 1);
  pb_free(resp);
  free(k);
}

void gcs_actor_stop_worker(gcs_actors_t *m, gcs_actor_t *a, const char *reason)
{
  if (m->stopping || a->port <= 0 || (a->phase != GCS_ACTOR_CREATING && a->state != RAYC__ACTOR_STATE__ACTOR_ALIVE))
    return;
  kill_step_t *k = xcalloc(1, sizeof(*k));
  k->m = m;
  memcpy(k->lease_id, a->lease_id, 16);
  gcs_node_t *n = a->has_node ? gcs_nodes_find(&m->s->nodes, a->node.b, ID_NODE_SIZE) : NULL;
  if (n && n->info && !a->in_host)
    snprintf(k->raylet, sizeof(k->raylet), "%s:%d", n->info->ip, n->info->raylet_port);
  char target[80];
  snprintf(target, sizeof(target), "%s:%d", a->ip, a->port);
  Rayc__KillActorWorkerRequest req = RAYC__KILL_ACTOR_WORKER_REQUEST__INIT;
  req.actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  req.reason = (char *)reason;
  if (rpc_call(gcs_actor_channel(m, target), &rayc__actor_worker_service__descriptor, "KillActorWorker", &req.base,
               KILL_MS, kill_done, k) != 0)
    free(k);
}

/* ---- owners ---- */

typedef struct owner_step {
  gcs_actors_t *m;
  id_worker_t id;
} owner_step_t;

static void owner_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  owner_step_t *st = arg;
  gcs_actors_t *m = st->m;
  gcs_actor_owner_t *o = m->stopping ? NULL : hmap_get(&m->owners, st->id.b, ID_WORKER_SIZE);
  if (o) {
    o->polling = 0;
    if (status == 0) {
      gcs_actors_owner_gone(m, o, 1, NULL);
    } else if (status == RAYC_ETIMEOUT) {
      o->failures = 0;
      gcs_actor_owner_poll(m, o);
    } else if (++o->failures >= OWNER_FAILURES) {
      gcs_actors_owner_gone(m, o, 0, detail);
    } else {
      o->retry_at_ms = now_ms() + PLACE_RETRY_FAST_MS;
    }
  }
  pb_free(resp);
  free(st);
}

void gcs_actor_owner_poll(gcs_actors_t *m, gcs_actor_owner_t *o)
{
  Rayc__WaitOwnerExitRequest req = RAYC__WAIT_OWNER_EXIT_REQUEST__INIT;
  req.owner_worker_id = pb_bytes(o->id.b, ID_WORKER_SIZE);
  owner_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  st->id = o->id;
  o->retry_at_ms = 0;
  if (rpc_call(rpc_channel_get(m->client, o->target), &rayc__actor_worker_service__descriptor, "WaitOwnerExit",
               &req.base, WAIT_EXIT_MS, owner_done, st) == 0)
    o->polling = 1;
  else
    free(st);
}

void gcs_actor_watch_owner(gcs_actors_t *m, const Rayc__Address *owner)
{
  gcs_actor_owner_t *o = hmap_get(&m->owners, owner->worker_id.data, ID_WORKER_SIZE);
  if (o)
    return;
  o = xcalloc(1, sizeof(*o));
  memcpy(o->id.b, owner->worker_id.data, ID_WORKER_SIZE);
  int v6 = strchr(owner->ip, ':') != NULL;
  snprintf(o->target, sizeof(o->target), "%s%s%s:%d", v6 ? "[" : "", owner->ip, v6 ? "]" : "", owner->port);
  hmap_put(&m->owners, o->id.b, ID_WORKER_SIZE, o);
  gcs_actor_owner_poll(m, o);
}
