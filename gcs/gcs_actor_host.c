/*
 * Actors that share a worker process (rayc_actor_opts.share_worker): the GCS's host table.
 *
 * Ray gives every actor a process of its own; creating one then costs a fork, a gRPC server, the
 * job's code loaded, a connection to and from the GCS and the creator: ~40 ms of CPU per actor on
 * this machine (docs/PERFORMANCE.md). An actor that opts in and holds no resources for its life
 * (no CPU, GPU, memory or custom resource, not in a placement group) may instead be put in a
 * host: a worker leased from the raylet as for any actor, which then runs up to
 * --actors-per-worker actors of one job, language and code path. Actors asking for resources get
 * their own process (a host's lease holds none, so it could not account for them).
 *
 * Placement: the GCS picks the node as for any actor; on it, the actor joins a live host with
 * room, or founds a new one, whose worker is leased once for all the actors that join it while
 * the lease is in flight. Once granted, each member's constructor is pushed over the one channel
 * to the host, and WaitActorExit and KillActorWorker go the same way (they carry the actor id).
 * A member leaves its host when it dies, is killed, is lost or is placed again; when the last one
 * leaves, the worker is given back to its raylet, which ends it (as an actor worker's end does
 * today). A host whose worker is seen gone takes no new members; its actors are lost one by one
 * (each WaitActorExit fails) and restart per their max_restarts.
 *
 * The table lives on the GCS loop and is not persisted: a restarted GCS rebuilds it from the ALIVE
 * actors it reloads (gcs_actor_host_adopt: actors that share and name the same worker are one
 * host again). A sharing actor that was still being created when the GCS went down is placed
 * afresh without ending the worker it was leased (its siblings may live there); a host worker
 * that then has no member is only ended when the cluster stops.
 */
#include "gcs/gcs_actor.h"

#include "common/lease_client.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HOST_RETRY_MS = 1000, HOST_RETRY_FAST_MS = 100 };

typedef struct host_step {
  gcs_actors_t *m;
  uint8_t key[16];
} host_step_t;

/* 1 if the creation task spec may share: it holds no resources for the actor's life. */
static int spec_shares(const Rayc__TaskSpec *spec)
{
  if (!spec->share_worker)
    return 0;
  for (size_t i = 0; i < spec->n_resources; i++)
    if (spec->resources[i]->amount > 0)
      return 0;
  return 1;
}

static void host_free(gcs_actors_t *m, gcs_actor_host_t *h)
{
  hmap_del(&m->hosts, h->key, sizeof(h->key));
  free(h->code_path);
  free(h);
}

/* A live host on n for a's job and spec's language and code path, with room; or NULL. */
static gcs_actor_host_t *host_find(gcs_actors_t *m, const gcs_actor_t *a, const gcs_node_t *n,
                                   const Rayc__TaskSpec *spec)
{
  for (hmap_iter_t it = hmap_iter(&m->hosts); hmap_next(&it);) {
    gcs_actor_host_t *h = it.value;
    if (!h->dead && h->n < m->per_host && memcmp(h->key, a->left_key, sizeof(h->key)) != 0 &&
        memcmp(h->node.b, n->id.b, ID_NODE_SIZE) == 0 && memcmp(h->job.b, a->job.b, ID_JOB_SIZE) == 0 &&
        h->language == spec->language && strcmp(h->code_path, a->code_path ? a->code_path : "") == 0)
      return h;
  }
  return NULL;
}

/* Every member of h still waiting for its worker. */
static size_t host_waiting(gcs_actors_t *m, const gcs_actor_host_t *h, gcs_actor_t **out, size_t max)
{
  size_t k = 0;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it) && k < max;) {
    gcs_actor_t *a = it.value;
    if (a->in_host && memcmp(a->host_key, h->key, sizeof(h->key)) == 0 && a->phase == GCS_ACTOR_LEASING &&
        a->state != RAYC__ACTOR_STATE__ACTOR_DEAD)
      out[k++] = a;
  }
  return k;
}

static void host_start_member(gcs_actors_t *m, const gcs_actor_host_t *h, gcs_actor_t *a)
{
  a->worker = h->worker;
  memcpy(a->lease_id, h->lease_id, 16);
  snprintf(a->ip, sizeof(a->ip), "%s", h->ip);
  a->port = h->port;
  gcs_actor_persist(m, a);
  gcs_actor_create_on(m, a);
}

static void host_granted(gcs_actors_t *m, gcs_actor_host_t *h, const lease_reply_t *lr)
{
  char hex[9];
  h->granted = 1;
  h->worker = lr->worker;
  memcpy(h->lease_id, lr->lease_id, 16);
  snprintf(h->ip, sizeof(h->ip), "%s", lr->ip);
  h->port = lr->port;
  snprintf(h->target, sizeof(h->target), "%s:%d", h->ip, h->port); /* as gcs_actor_place.c names it */
  log_info("actor host %s: worker %s at %s hosts up to %d actors", id_short(h->key, 16, hex),
           id_short(h->worker.b, ID_WORKER_SIZE, hex), h->target, m->per_host);
  gcs_actor_t **v = xcalloc((size_t)h->n + 1, sizeof(*v));
  size_t k = host_waiting(m, h, v, (size_t)h->n);
  for (size_t i = 0; i < k; i++)
    host_start_member(m, h, v[i]);
  free(v);
}

static void host_failed(gcs_actors_t *m, gcs_actor_host_t *h, enum lease_outcome o, const char *reason)
{
  char hex[9];
  log_warn("actor host %s: no worker from the raylet at %s: %s (%s); its actors are placed again",
           id_short(h->key, 16, hex), h->raylet, lease_outcome_name(o), reason);
  gcs_actor_t **v = xcalloc((size_t)h->n + 1, sizeof(*v));
  size_t k = host_waiting(m, h, v, (size_t)h->n);
  for (size_t i = 0; i < k; i++) {
    v[i]->in_host = 0;
    v[i]->has_node = 0;
    gcs_actor_retry_later(v[i], o == LEASE_UNAVAILABLE ? HOST_RETRY_FAST_MS : HOST_RETRY_MS);
  }
  free(v);
  host_free(m, h);
}

static void host_lease_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  host_step_t *st = arg;
  gcs_actors_t *m = st->m;
  lease_reply_t lr;
  enum lease_outcome o = lease_reply_classify(status, detail, (Rayc__RequestWorkerLeaseReply *)resp, &lr);
  gcs_actor_host_t *h = m->stopping ? NULL : hmap_get(&m->hosts, st->key, sizeof(st->key));
  if (!h) {
  } else if (h->n == 0 || h->dead) { /* every member left meanwhile: the worker ran nothing */
    if (o == LEASE_GRANTED)
      gcs_actor_give_back(m, h->raylet, lr.lease_id, 0);
    host_free(m, h);
  } else if (o == LEASE_GRANTED) {
    host_granted(m, h, &lr);
  } else {
    host_failed(m, h, o, lr.reason);
  }
  pb_free(resp);
  free(st);
}

/* A new host on n for a, its worker asked for. NULL if the raylet cannot be called. */
static gcs_actor_host_t *host_new(gcs_actors_t *m, const gcs_actor_t *a, const gcs_node_t *n,
                                  const Rayc__TaskSpec *spec)
{
  gcs_actor_host_t *h = xcalloc(1, sizeof(*h));
  id_worker_t r = id_worker_random();
  memcpy(h->key, r.b, sizeof(h->key));
  h->job = a->job;
  h->language = spec->language;
  h->code_path = xstrdup(a->code_path ? a->code_path : "");
  h->node = n->id;
  snprintf(h->raylet, sizeof(h->raylet), "%s:%d", n->info->ip, n->info->raylet_port);
  Rayc__RequestWorkerLeaseRequest req;
  uint8_t lease_id[LEASE_ID_SIZE];
  lease_params_t p = {
      .job = a->job, .owner = m->lease_owner, .code_path = h->code_path, .language = spec->language, .spilled = 1};
  p.job.b[0] |= 0x80; /* the job's actor workers (gcs_actor.h) */
  lease_request_init(&req, &p, lease_id);
  host_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  memcpy(st->key, h->key, sizeof(h->key));
  if (rpc_call(rpc_channel_get(m->client, h->raylet), &rayc__node_manager_service__descriptor, "RequestWorkerLease",
               &req.base, -1, host_lease_done, st) != 0) {
    free(st);
    free(h->code_path);
    free(h);
    return NULL;
  }
  hmap_put(&m->hosts, h->key, sizeof(h->key), h);
  return h;
}

int gcs_actor_host_place(gcs_actors_t *m, gcs_actor_t *a, struct gcs_node *n, const Rayc__TaskSpec *spec)
{
  if (m->per_host <= 1 || !spec_shares(spec) || !n->info)
    return 0;
  gcs_actor_host_t *h = host_find(m, a, n, spec);
  if (!h && !(h = host_new(m, a, n, spec)))
    return 0; /* the ordinary path retries */
  h->n++;
  a->in_host = 1;
  memcpy(a->host_key, h->key, sizeof(h->key));
  a->gen++;
  a->has_node = 1;
  a->node = n->id;
  a->phase = GCS_ACTOR_LEASING;
  if (h->granted)
    host_start_member(m, h, a);
  return 1;
}

void gcs_actor_host_leave(gcs_actors_t *m, gcs_actor_t *a)
{
  if (!a->in_host)
    return;
  a->in_host = 0;
  memcpy(a->left_key, a->host_key, sizeof(a->left_key));
  gcs_actor_host_t *h = hmap_get(&m->hosts, a->host_key, sizeof(a->host_key));
  if (!h || --h->n > 0)
    return;
  if (!h->granted) { /* its lease reply frees it */
    h->dead = 1;
    return;
  }
  char hex[9];
  log_info("actor host %s: its last actor is gone; giving worker %s back", id_short(h->key, 16, hex), h->target);
  if (!m->stopping && *h->raylet) {
    gcs_actor_give_back(m, h->raylet, h->lease_id, 1);
    rpc_channel_forget(m->client, h->target);
  }
  host_free(m, h);
}

void gcs_actor_host_lost(gcs_actors_t *m, const gcs_actor_t *a)
{
  gcs_actor_host_t *h = a->in_host ? hmap_get(&m->hosts, a->host_key, sizeof(a->host_key)) : NULL;
  if (h)
    h->dead = 1;
}

int gcs_actor_host_in_use(gcs_actors_t *m, const char *target)
{
  for (hmap_iter_t it = hmap_iter(&m->hosts); hmap_next(&it);) {
    const gcs_actor_host_t *h = it.value;
    if (h->granted && h->n > 0 && strcmp(h->target, target) == 0)
      return 1;
  }
  return 0;
}

/* The live host whose worker is w, or NULL. */
static gcs_actor_host_t *host_by_worker(gcs_actors_t *m, const id_worker_t *w)
{
  for (hmap_iter_t it = hmap_iter(&m->hosts); hmap_next(&it);) {
    gcs_actor_host_t *h = it.value;
    if (h->granted && !h->dead && memcmp(h->worker.b, w->b, ID_WORKER_SIZE) == 0)
      return h;
  }
  return NULL;
}

/* A host for a's (granted, live) worker, made from what the actor table kept. */
static gcs_actor_host_t *host_from_actor(gcs_actors_t *m, const gcs_actor_t *a, int32_t language)
{
  gcs_node_t *n = gcs_nodes_find(&m->s->nodes, a->node.b, ID_NODE_SIZE);
  gcs_actor_host_t *h = xcalloc(1, sizeof(*h));
  id_worker_t r = id_worker_random();
  memcpy(h->key, r.b, sizeof(h->key));
  h->job = a->job;
  h->language = language;
  h->code_path = xstrdup(a->code_path ? a->code_path : "");
  h->node = a->node;
  if (n && n->info)
    snprintf(h->raylet, sizeof(h->raylet), "%s:%d", n->info->ip, n->info->raylet_port);
  h->worker = a->worker;
  memcpy(h->lease_id, a->lease_id, 16);
  snprintf(h->ip, sizeof(h->ip), "%s", a->ip);
  h->port = a->port;
  snprintf(h->target, sizeof(h->target), "%s:%d", h->ip, h->port);
  h->granted = 1;
  hmap_put(&m->hosts, h->key, sizeof(h->key), h);
  return h;
}

int gcs_actor_host_adopt(gcs_actors_t *m, gcs_actor_t *a)
{
  Rayc__TaskSpec *spec = a->spec ? rayc__task_spec__unpack(NULL, a->spec_len, a->spec) : NULL;
  int shares = spec && spec_shares(spec) && m->per_host > 1 && a->has_node && a->port > 0;
  int32_t language = spec ? spec->language : 0;
  pb_free(spec);
  if (!shares)
    return 0;
  if (a->state == RAYC__ACTOR_STATE__ACTOR_ALIVE) {
    gcs_actor_host_t *h = host_by_worker(m, &a->worker);
    if (!h)
      h = host_from_actor(m, a, language);
    h->n++;
    a->in_host = 1;
    memcpy(a->host_key, h->key, sizeof(h->key));
  }
  return 1;
}

void gcs_actor_hosts_release(gcs_actors_t *m)
{
  for (hmap_iter_t it = hmap_iter(&m->hosts); hmap_next(&it);) {
    gcs_actor_host_t *h = it.value;
    free(h->code_path);
    free(h);
  }
  hmap_release(&m->hosts);
}
