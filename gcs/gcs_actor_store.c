/*
 * The actor table in the GCS store (see "Persistence" in gcs_actor.h): one ActorTableEntry per
 * actor under its id in table "ACTOR", written on every state change; loaded when the GCS starts
 * and resumed once it serves.
 */
#include "gcs/gcs_actor.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GCS_ACTOR_TABLE "ACTOR"

/* ---- writing ---- */

void gcs_actor_persist(gcs_actors_t *m, const gcs_actor_t *a)
{
  if (!m->persist)
    return;
  Rayc__ActorTableEntry e = RAYC__ACTOR_TABLE_ENTRY__INIT;
  Rayc__ActorInfo info;
  Rayc__Address addr, owner;
  gcs_actor_view(m, a, &info, &addr, &owner);
  info.owner = NULL; /* its "ip" is the owner's target: kept in owner_target instead */
  e.info = &info;
  e.creation_spec = pb_bytes(a->spec, a->spec ? a->spec_len : 0);
  e.code_path = a->code_path ? a->code_path : (char *)"";
  gcs_actor_owner_t *o = a->has_owner ? hmap_get(&m->owners, a->owner.b, ID_WORKER_SIZE) : NULL;
  if (a->has_owner)
    e.owner_worker_id = pb_bytes(a->owner.b, ID_WORKER_SIZE);
  e.owner_target = o ? o->target : (char *)"";
  if (a->has_node)
    e.node_id = pb_bytes(a->node.b, ID_NODE_SIZE);
  if (a->has_avoid)
    e.avoid_node_id = pb_bytes(a->avoid.b, ID_NODE_SIZE);
  if (a->port > 0) {
    e.worker_id = pb_bytes(a->worker.b, ID_WORKER_SIZE);
    e.worker_ip = (char *)a->ip;
    e.worker_port = a->port;
    e.lease_id = pb_bytes(a->lease_id, sizeof(a->lease_id));
  }
  e.last_kill_id = pb_bytes(a->kill_id, a->kill_id_len);
  int rc = gcs_store_put_msg(m->s->store, GCS_ACTOR_TABLE, a->id, ID_ACTOR_SIZE, &e.base);
  if (rc < 0) {
    char hex[9];
    log_error("actor %s: storing it failed: %s", id_short(a->id, ID_ACTOR_SIZE, hex), rayc_strerror(rc));
  }
}

/* ---- loading ---- */

/* Why e cannot be loaded, or NULL. */
static const char *entry_check(const Rayc__ActorTableEntry *e, const uint8_t *key, size_t klen)
{
  const Rayc__ActorInfo *i = e->info;
  if (!i || i->actor_id.len != ID_ACTOR_SIZE || klen != ID_ACTOR_SIZE || memcmp(key, i->actor_id.data, klen) != 0)
    return "its id does not match its key";
  if ((unsigned)i->state > RAYC__ACTOR_STATE__ACTOR_DEAD || i->job_id.len != ID_JOB_SIZE || !*i->class_name)
    return "bad state, job id or class";
  if ((e->owner_worker_id.len && e->owner_worker_id.len != ID_WORKER_SIZE) ||
      (e->node_id.len && e->node_id.len != ID_NODE_SIZE) ||
      (e->avoid_node_id.len && e->avoid_node_id.len != ID_NODE_SIZE))
    return "bad owner or node id";
  if (e->last_kill_id.len > 32)
    return "bad kill id";
  if (e->worker_port > 0 && (e->worker_id.len != ID_WORKER_SIZE || e->lease_id.len != 16 || strlen(e->worker_ip) >= 48))
    return "bad worker address";
  return NULL;
}

static gcs_actor_t *entry_actor(const Rayc__ActorTableEntry *e)
{
  const Rayc__ActorInfo *i = e->info;
  gcs_actor_t *a = xcalloc(1, sizeof(*a));
  memcpy(a->id, i->actor_id.data, ID_ACTOR_SIZE);
  memcpy(a->job.b, i->job_id.data, ID_JOB_SIZE);
  a->state = i->state;
  a->cause = i->death_cause;
  a->version = i->version;
  a->detached = i->detached;
  a->max_restarts = i->max_restarts;
  a->num_restarts = i->num_restarts;
  a->max_task_retries = i->max_task_retries;
  a->max_concurrency = i->max_concurrency > 0 ? i->max_concurrency : 1;
  a->class_name = xstrdup(i->class_name);
  a->code_path = xstrdup(e->code_path);
  if (*i->name) {
    a->name = xstrdup(i->name);
    a->ns = xstrdup(*i->ray_namespace ? i->ray_namespace : "default");
  }
  a->death_msg = *i->death_message ? xstrdup(i->death_message) : NULL;
  a->start_ms = i->start_time_ms;
  a->end_ms = i->end_time_ms;
  if (e->creation_spec.len && a->state != RAYC__ACTOR_STATE__ACTOR_DEAD) {
    a->spec_len = e->creation_spec.len;
    a->spec = xmalloc(a->spec_len);
    memcpy(a->spec, e->creation_spec.data, a->spec_len);
  }
  if ((a->has_owner = e->owner_worker_id.len == ID_WORKER_SIZE))
    memcpy(a->owner.b, e->owner_worker_id.data, ID_WORKER_SIZE);
  if ((a->has_node = e->node_id.len == ID_NODE_SIZE))
    memcpy(a->node.b, e->node_id.data, ID_NODE_SIZE);
  if ((a->has_avoid = e->avoid_node_id.len == ID_NODE_SIZE))
    memcpy(a->avoid.b, e->avoid_node_id.data, ID_NODE_SIZE);
  a->kill_id_len = (uint8_t)e->last_kill_id.len;
  if (e->last_kill_id.len)
    memcpy(a->kill_id, e->last_kill_id.data, e->last_kill_id.len);
  if (e->worker_port > 0) {
    memcpy(a->worker.b, e->worker_id.data, ID_WORKER_SIZE);
    memcpy(a->lease_id, e->lease_id.data, 16);
    snprintf(a->ip, sizeof(a->ip), "%s", e->worker_ip);
    a->port = e->worker_port;
  }
  return a;
}

/* Adds the owner entry of a live owned actor (polled again by gcs_actors_resume). */
static void load_owner(gcs_actors_t *m, const gcs_actor_t *a, const char *target)
{
  if (!a->has_owner || a->state == RAYC__ACTOR_STATE__ACTOR_DEAD || !*target ||
      hmap_get(&m->owners, a->owner.b, ID_WORKER_SIZE))
    return;
  gcs_actor_owner_t *o = xcalloc(1, sizeof(*o));
  o->id = a->owner;
  snprintf(o->target, sizeof(o->target), "%s", target);
  hmap_put(&m->owners, o->id.b, ID_WORKER_SIZE, o);
}

static void load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_actors_t *m = arg;
  Rayc__ActorTableEntry *e = rayc__actor_table_entry__unpack(NULL, vlen, val);
  const char *why = e ? entry_check(e, key, klen) : "unreadable";
  if (why || hmap_get(&m->by_id, key, klen)) {
    log_warn("actor table: skipping a stored actor: %s", why ? why : "listed twice");
    pb_free(e);
    return;
  }
  gcs_actor_t *a = entry_actor(e);
  hmap_put(&m->by_id, a->id, ID_ACTOR_SIZE, a);
  if (a->name && a->state != RAYC__ACTOR_STATE__ACTOR_DEAD) {
    size_t len;
    char *k = gcs_actor_name_key(a->ns, a->name, &len);
    hmap_put(&m->by_name, k, len, a);
    free(k);
  }
  load_owner(m, a, e->owner_target);
  pb_free(e);
}

void gcs_actors_load(gcs_actors_t *m)
{
  /* A memory store dies with the GCS: a copy of every actor there would only cost memory. */
  m->persist = strcmp(gcs_store_name(m->s->store), "memory") != 0;
  if (!m->persist)
    return;
  int rc = gcs_store_scan(m->s->store, GCS_ACTOR_TABLE, NULL, 0, load_one, m);
  if (rc > 0)
    log_info("actor table: loaded %d actors from storage", rc);
}

/* ---- resuming ---- */

static void resume_one(gcs_actors_t *m, gcs_actor_t *a)
{
  if (a->state == RAYC__ACTOR_STATE__ACTOR_ALIVE) {
    gcs_node_t *n = a->has_node ? gcs_nodes_find(&m->s->nodes, a->node.b, ID_NODE_SIZE) : NULL;
    if (n && n->state == GCS_NODE_ALIVE && a->port > 0) {
      gcs_actor_host_adopt(m, a); /* a host of several actors is known again (gcs_actor_host.c) */
      gcs_actor_watch(m, a);
      return;
    }
    if (a->has_node) {
      a->has_avoid = 1;
      a->avoid = a->node;
    }
    a->has_node = 0;
    gcs_actor_lost(m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_NODE_DIED, "its node died while the GCS was down");
    return;
  }
  /* a worker was leased for it when the GCS went down: end it, start afresh (not a shared one) */
  if (a->port > 0 && !gcs_actor_host_adopt(m, a))
    gcs_actor_return_lease(m, a);
  a->port = 0;
  gcs_actor_schedule(m, a);
}

void gcs_actors_resume(gcs_actors_t *m)
{
  size_t live = 0;
  if (!m || m->stopping)
    return;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    if (a->state == RAYC__ACTOR_STATE__ACTOR_DEAD)
      continue;
    live++;
    resume_one(m, a);
  }
  for (hmap_iter_t it = hmap_iter(&m->owners); hmap_next(&it);) {
    gcs_actor_owner_t *o = it.value;
    if (!o->dead && !o->polling)
      gcs_actor_owner_poll(m, o);
  }
  if (live)
    log_info("actor table: resumed %zu live actors (%zu owners watched)", live, m->owners.count);
}
