/*
 * The GCS actor table: registration, state changes, long polls, names, kills, owners' and nodes'
 * deaths. Placement and the calls to raylets, workers and owners are in gcs_actor_place.c; the
 * design is in gcs_actor.h.
 */
#include "gcs/gcs_actor.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ACTOR_MAX_WAIT_MS = 60000, ACTOR_NAME_MAX = 256, ACTOR_SPEC_MAX = 1 << 20 };
/* An actor no node fits is looked at again every ACTOR_NO_FIT_RECHECK_MS, but placed again only when
 * the cluster view changed, or ACTOR_NO_FIT_FULL_RETRY_MS after the last full try. */
enum { ACTOR_NO_FIT_RECHECK_MS = 1000, ACTOR_NO_FIT_FULL_RETRY_MS = 10000 };

static const char *state_names[] = {"PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"};

const char *gcs_actor_state_name(Rayc__ActorState st)
{
  return (unsigned)st < 4 ? state_names[st] : "UNKNOWN";
}

static gcs_actors_t *actors_of(void *ctx)
{
  return ((gcs_server_t *)ctx)->actors;
}

/* ---- views ---- */

void gcs_actor_view(gcs_actors_t *m, const gcs_actor_t *a, Rayc__ActorInfo *info, Rayc__Address *addr,
                    Rayc__Address *owner)
{
  rayc__actor_info__init(info);
  info->actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  info->state = a->state;
  info->version = a->version;
  info->class_name = a->class_name;
  info->name = a->name ? a->name : (char *)"";
  info->ray_namespace = a->ns ? a->ns : (char *)"";
  info->job_id = pb_bytes(a->job.b, ID_JOB_SIZE);
  info->num_restarts = a->num_restarts;
  info->max_restarts = a->max_restarts;
  info->max_task_retries = a->max_task_retries;
  info->max_concurrency = a->max_concurrency;
  info->detached = a->detached;
  info->death_cause = a->cause;
  info->death_message = a->death_msg ? a->death_msg : (char *)"";
  info->start_time_ms = a->start_ms;
  info->end_time_ms = a->end_ms;
  if (a->state == RAYC__ACTOR_STATE__ACTOR_ALIVE && a->port > 0) {
    rayc__address__init(addr);
    addr->node_id = pb_bytes(a->node.b, ID_NODE_SIZE);
    addr->ip = (char *)a->ip;
    addr->port = a->port;
    addr->worker_id = pb_bytes(a->worker.b, ID_WORKER_SIZE);
    info->address = addr;
  }
  gcs_actor_owner_t *o = a->has_owner ? hmap_get(&m->owners, a->owner.b, ID_WORKER_SIZE) : NULL;
  if (o) {
    rayc__address__init(owner);
    owner->worker_id = pb_bytes(o->id.b, ID_WORKER_SIZE);
    owner->ip = o->target;
    info->owner = owner;
  }
}

static void actor_reply_info(gcs_actors_t *m, const gcs_actor_t *a, rpc_call_t *call)
{
  Rayc__GetActorInfoReply rep = RAYC__GET_ACTOR_INFO_REPLY__INIT;
  Rayc__ActorInfo info;
  Rayc__Address addr, owner;
  gcs_actor_view(m, a, &info, &addr, &owner);
  rep.actor = &info;
  gcs_server_reply(m->s, call, &rep.base);
}

static void actor_answer_waiters(gcs_actors_t *m, gcs_actor_t *a)
{
  gcs_actor_waiter_t *w = a->waiters;
  a->waiters = NULL;
  while (w) {
    gcs_actor_waiter_t *next = w->next;
    actor_reply_info(m, a, w->call);
    free(w);
    w = next;
  }
}

/* ---- state ---- */

char *gcs_actor_name_key(const char *ns, const char *name, size_t *len)
{
  size_t a = strlen(ns), b = strlen(name);
  char *k = xmalloc(a + b + 1);
  memcpy(k, ns, a);
  k[a] = '\0';
  memcpy(k + a + 1, name, b);
  *len = a + b + 1;
  return k;
}

static void actor_drop_name(gcs_actors_t *m, gcs_actor_t *a)
{
  if (!a->name)
    return;
  size_t klen;
  char *k = gcs_actor_name_key(a->ns, a->name, &klen);
  if (hmap_get(&m->by_name, k, klen) == a)
    hmap_del(&m->by_name, k, klen);
  free(k);
}

void gcs_actor_set_state(gcs_actors_t *m, gcs_actor_t *a, Rayc__ActorState st, Rayc__ActorDeathCause cause,
                         const char *msg)
{
  char hex[9];
  if (msg) {
    free(a->death_msg);
    a->death_msg = xstrdup(msg);
    a->cause = cause;
  }
  if (a->state != st)
    log_info("actor %s (%s%s%s): %s -> %s%s%s", id_short(a->id, ID_ACTOR_SIZE, hex), a->class_name, a->name ? " " : "",
             a->name ? a->name : "", gcs_actor_state_name(a->state), gcs_actor_state_name(st), msg ? ": " : "",
             msg ? msg : "");
  if (a->state != st && (st == RAYC__ACTOR_STATE__ACTOR_RESTARTING || st == RAYC__ACTOR_STATE__ACTOR_DEAD))
    gcs_event_add(m->s,
                  st == RAYC__ACTOR_STATE__ACTOR_DEAD ? RAYC__CLUSTER_EVENT_SEVERITY__EVENT_WARNING
                                                      : RAYC__CLUSTER_EVENT_SEVERITY__EVENT_INFO,
                  st == RAYC__ACTOR_STATE__ACTOR_DEAD ? "ACTOR_DEAD" : "ACTOR_RESTARTED", NULL,
                  a->id + ID_ACTOR_SIZE - ID_JOB_SIZE, a->id, NULL, "actor %s (%s) %s%s%s", hex, a->class_name,
                  st == RAYC__ACTOR_STATE__ACTOR_DEAD ? "died" : "restarts", a->death_msg ? ": " : "",
                  a->death_msg ? a->death_msg : "");
  a->state = st;
  a->version++;
  if (st == RAYC__ACTOR_STATE__ACTOR_DEAD) {
    gcs_actor_host_leave(m, a);
    a->end_ms = wall_ms();
    a->phase = GCS_ACTOR_IDLE;
    a->retry_wanted = 0;
    a->port = 0;
    a->gen++;
    actor_drop_name(m, a);
    free(a->spec);
    a->spec = NULL;
    a->spec_len = 0;
  }
  gcs_actor_persist(m, a);
  actor_answer_waiters(m, a);
}

static int restarts_left(const gcs_actor_t *a)
{
  return a->max_restarts < 0 || a->num_restarts < a->max_restarts;
}

static gcs_actor_owner_t *actor_owner(gcs_actors_t *m, const gcs_actor_t *a)
{
  return a->has_owner ? hmap_get(&m->owners, a->owner.b, ID_WORKER_SIZE) : NULL;
}

void gcs_actor_lost(gcs_actors_t *m, gcs_actor_t *a, Rayc__ActorDeathCause cause, const char *msg)
{
  if (a->state == RAYC__ACTOR_STATE__ACTOR_DEAD)
    return;
  a->gen++;
  a->phase = GCS_ACTOR_IDLE;
  a->port = 0;
  gcs_actor_host_leave(m, a);
  gcs_actor_owner_t *o = actor_owner(m, a);
  if (o && o->dead) {
    gcs_actor_set_state(m, a, RAYC__ACTOR_STATE__ACTOR_DEAD, RAYC__ACTOR_DEATH_CAUSE__ACTOR_OWNER_DIED,
                        "its owner died");
  } else if (restarts_left(a) && a->spec) {
    a->num_restarts++;
    gcs_actor_set_state(m, a, RAYC__ACTOR_STATE__ACTOR_RESTARTING, cause, msg);
    gcs_actor_schedule(m, a);
  } else {
    gcs_actor_set_state(m, a, RAYC__ACTOR_STATE__ACTOR_DEAD, cause, msg);
  }
}

void gcs_actor_kill(gcs_actors_t *m, gcs_actor_t *a, Rayc__ActorDeathCause cause, const char *msg, int no_restart)
{
  if (a->state == RAYC__ACTOR_STATE__ACTOR_DEAD)
    return;
  gcs_actor_stop_worker(m, a, msg);
  gcs_actor_host_leave(m, a);
  a->gen++;
  a->phase = GCS_ACTOR_IDLE;
  a->port = 0;
  a->has_node = 0;
  if (!no_restart && restarts_left(a) && a->spec) {
    a->num_restarts++;
    gcs_actor_set_state(m, a, RAYC__ACTOR_STATE__ACTOR_RESTARTING, cause, msg);
    gcs_actor_schedule(m, a);
  } else {
    gcs_actor_set_state(m, a, RAYC__ACTOR_STATE__ACTOR_DEAD, cause, msg);
  }
}

/* ---- registration ---- */

static const char *register_check(const Rayc__RegisterActorRequest *r)
{
  const Rayc__TaskSpec *s = r->creation_spec;
  if (!s || s->actor_id.len != ID_ACTOR_SIZE || s->job_id.len != ID_JOB_SIZE || s->task_id.len != ID_TASK_SIZE ||
      !s->function_name || !*s->function_name || s->type != RAYC__TASK_TYPE__ACTOR_CREATION_TASK)
    return "creation_spec must be an ACTOR_CREATION_TASK with a 16-byte actor id, job id, task id and class";
  if (strlen(r->name) > ACTOR_NAME_MAX || strlen(r->ray_namespace) > ACTOR_NAME_MAX ||
      strlen(s->function_name) > ACTOR_NAME_MAX)
    return "names are limited to 256 bytes";
  if (r->max_restarts < -1 || r->max_task_retries < -1)
    return "max_restarts and max_task_retries must be -1 or more";
  for (size_t i = 0; i < s->n_resources; i++)
    if (!(s->resources[i]->amount >= 0) || s->resources[i]->amount > 1e15)
      return "resource amounts must be finite and not negative";
  if (rayc__task_spec__get_packed_size(s) > ACTOR_SPEC_MAX)
    return "the creation task is larger than 1 MiB (pass big constructor arguments by reference to a put object)";
  return NULL;
}

static gcs_actor_t *actor_new(const Rayc__RegisterActorRequest *r)
{
  const Rayc__TaskSpec *s = r->creation_spec;
  gcs_actor_t *a = xcalloc(1, sizeof(*a));
  memcpy(a->id, s->actor_id.data, ID_ACTOR_SIZE);
  memcpy(a->job.b, s->job_id.data, ID_JOB_SIZE);
  a->state = RAYC__ACTOR_STATE__ACTOR_PENDING_CREATION;
  a->version = 1;
  a->class_name = xstrdup(s->function_name);
  a->code_path = xstrdup(r->code_path);
  if (*r->name) {
    a->name = xstrdup(r->name);
    a->ns = xstrdup(*r->ray_namespace ? r->ray_namespace : "default");
  }
  a->detached = r->detached;
  a->max_restarts = r->max_restarts;
  a->max_task_retries = r->max_task_retries;
  a->max_concurrency = s->max_concurrency > 0 ? s->max_concurrency : 1;
  a->spec_len = rayc__task_spec__get_packed_size(s);
  a->spec = xmalloc(a->spec_len ? a->spec_len : 1);
  rayc__task_spec__pack(s, a->spec);
  a->start_ms = wall_ms();
  if (!r->detached && r->owner && r->owner->worker_id.len == ID_WORKER_SIZE && r->owner->port > 0 && r->owner->ip) {
    a->has_owner = 1;
    memcpy(a->owner.b, r->owner->worker_id.data, ID_WORKER_SIZE);
  }
  return a;
}

static void reply_registered(gcs_actors_t *m, rpc_call_t *call, const gcs_actor_t *a, int existed)
{
  Rayc__RegisterActorReply rep = RAYC__REGISTER_ACTOR_REPLY__INIT;
  rep.actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  rep.existed = existed;
  if (!existed && a->state == RAYC__ACTOR_STATE__ACTOR_PENDING_CREATION && a->port <= 0)
    rep.version = a->version; /* the caller's first long poll waits for ALIVE (one poll less) */
  gcs_server_reply(m->s, call, &rep.base);
}

void gcs_actor_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *msg)
{
  gcs_actors_t *m = actors_of(ctx);
  const Rayc__RegisterActorRequest *r = (const Rayc__RegisterActorRequest *)msg;
  const char *why = register_check(r);
  if (why) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "%s", why);
    return;
  }
  const Rayc__TaskSpec *s = r->creation_spec;
  gcs_actor_t *known = hmap_get(&m->by_id, s->actor_id.data, ID_ACTOR_SIZE);
  if (known) { /* a retry of a registration whose reply was lost (the GCS restarted): the same answer */
    if (memcmp(known->job.b, s->job_id.data, ID_JOB_SIZE) != 0)
      rpc_reply_error(call, RAYC_EALREADY_EXISTS, "an actor with this id is already registered by another job");
    else
      reply_registered(m, call, known, 0);
    return;
  }
  size_t klen = 0;
  char *key = *r->name ? gcs_actor_name_key(*r->ray_namespace ? r->ray_namespace : "default", r->name, &klen) : NULL;
  gcs_actor_t *same = key ? hmap_get(&m->by_name, key, klen) : NULL;
  if (same) {
    free(key);
    if (r->get_if_exists)
      reply_registered(m, call, same, 1);
    else
      rpc_reply_error(call, RAYC_EALREADY_EXISTS, "an actor named '%s' already exists in namespace '%s'", r->name,
                      same->ns);
    return;
  }
  gcs_actor_t *a = actor_new(r);
  hmap_put(&m->by_id, a->id, ID_ACTOR_SIZE, a);
  if (key)
    hmap_put(&m->by_name, key, klen, a);
  free(key);
  if (a->has_owner)
    gcs_actor_watch_owner(m, r->owner);
  char hex[9];
  log_info("actor %s (%s%s%s) registered: %s, max_restarts %d", id_short(a->id, ID_ACTOR_SIZE, hex), a->class_name,
           a->name ? " " : "", a->name ? a->name : "", a->detached ? "detached" : "owned", a->max_restarts);
  gcs_actor_persist(m, a);
  reply_registered(m, call, a, 0);
  gcs_actor_schedule(m, a);
}

/* ---- queries ---- */

void gcs_actor_on_get_info(void *ctx, rpc_call_t *call, const ProtobufCMessage *msg)
{
  gcs_actors_t *m = actors_of(ctx);
  const Rayc__GetActorInfoRequest *r = (const Rayc__GetActorInfoRequest *)msg;
  gcs_actor_t *a = r->actor_id.len == ID_ACTOR_SIZE ? hmap_get(&m->by_id, r->actor_id.data, ID_ACTOR_SIZE) : NULL;
  if (!a) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "no actor with this id");
    return;
  }
  if (r->known_version != a->version || r->wait_ms <= 0 || a->state == RAYC__ACTOR_STATE__ACTOR_DEAD || m->stopping) {
    actor_reply_info(m, a, call);
    return;
  }
  gcs_actor_waiter_t *w = xmalloc(sizeof(*w));
  w->call = call;
  w->deadline_ms = now_ms() + (r->wait_ms < ACTOR_MAX_WAIT_MS ? r->wait_ms : ACTOR_MAX_WAIT_MS);
  w->next = a->waiters;
  a->waiters = w;
}

void gcs_actor_on_get_named(void *ctx, rpc_call_t *call, const ProtobufCMessage *msg)
{
  gcs_actors_t *m = actors_of(ctx);
  const Rayc__GetNamedActorRequest *r = (const Rayc__GetNamedActorRequest *)msg;
  size_t klen;
  char *key = gcs_actor_name_key(*r->ray_namespace ? r->ray_namespace : "default", r->name, &klen);
  gcs_actor_t *a = hmap_get(&m->by_name, key, klen);
  free(key);
  if (!a) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "no live actor named '%s' in namespace '%s'", r->name,
                    *r->ray_namespace ? r->ray_namespace : "default");
    return;
  }
  Rayc__GetNamedActorReply rep = RAYC__GET_NAMED_ACTOR_REPLY__INIT;
  Rayc__ActorInfo info;
  Rayc__Address addr, owner;
  gcs_actor_view(m, a, &info, &addr, &owner);
  rep.actor = &info;
  gcs_server_reply(m->s, call, &rep.base);
}

void gcs_actor_on_kill(void *ctx, rpc_call_t *call, const ProtobufCMessage *msg)
{
  gcs_actors_t *m = actors_of(ctx);
  const Rayc__KillActorRequest *r = (const Rayc__KillActorRequest *)msg;
  gcs_actor_t *a = r->actor_id.len == ID_ACTOR_SIZE ? hmap_get(&m->by_id, r->actor_id.data, ID_ACTOR_SIZE) : NULL;
  if (!a) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "no actor with this id");
    return;
  }
  if (r->request_id.len > sizeof(a->kill_id)) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "request_id is limited to 32 bytes");
    return;
  }
  if (r->request_id.len && r->request_id.len == a->kill_id_len &&
      memcmp(r->request_id.data, a->kill_id, a->kill_id_len) == 0) { /* a retry: done already */
    gcs_server_reply(m->s, call, NULL);
    return;
  }
  a->kill_id_len = (uint8_t)r->request_id.len;
  if (r->request_id.len)
    memcpy(a->kill_id, r->request_id.data, r->request_id.len);
  gcs_actor_kill(m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_KILLED, "it was killed by rayc_actor_kill", r->no_restart);
  gcs_server_reply(m->s, call, NULL);
}

void gcs_actor_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *msg)
{
  (void)msg;
  gcs_actors_t *m = actors_of(ctx);
  size_t n = m->by_id.count, i = 0;
  Rayc__ActorInfo *infos = xcalloc(n ? n : 1, sizeof(*infos));
  Rayc__ActorInfo **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
  Rayc__Address *addrs = xcalloc(n ? 2 * n : 1, sizeof(*addrs));
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it); i++) {
    gcs_actor_view(m, it.value, &infos[i], &addrs[2 * i], &addrs[2 * i + 1]);
    ptrs[i] = &infos[i];
  }
  Rayc__ListActorsReply rep = RAYC__LIST_ACTORS_REPLY__INIT;
  rep.actors = ptrs;
  rep.n_actors = n;
  gcs_server_reply(m->s, call, &rep.base);
  free(addrs);
  free(ptrs);
  free(infos);
}

/* ---- deaths elsewhere ---- */

void gcs_actors_on_node_dead(gcs_actors_t *m, const id_node_t *node)
{
  char hex[9], msg[96];
  if (!m || m->stopping)
    return;
  snprintf(msg, sizeof(msg), "its node %s died", id_short(node->b, ID_NODE_SIZE, hex));
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    if (a->state == RAYC__ACTOR_STATE__ACTOR_DEAD || !a->has_node || memcmp(a->node.b, node->b, ID_NODE_SIZE) != 0)
      continue;
    a->has_avoid = 1;
    a->avoid = *node;
    a->has_node = 0;
    if (a->phase == GCS_ACTOR_LEASING) { /* not created there yet: place it elsewhere */
      a->gen++;
      gcs_actor_schedule(m, a);
    } else {
      gcs_actor_lost(m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_NODE_DIED, msg);
    }
  }
}

/* Kills every live owned actor that matches (owner worker, or job). */
static void kill_owned(gcs_actors_t *m, const id_worker_t *owner, const id_job_t *job, const char *msg)
{
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    if (a->detached || a->state == RAYC__ACTOR_STATE__ACTOR_DEAD)
      continue;
    if (owner && !(a->has_owner && memcmp(a->owner.b, owner->b, ID_WORKER_SIZE) == 0))
      continue;
    if (job && memcmp(a->job.b, job->b, ID_JOB_SIZE) != 0)
      continue;
    gcs_actor_kill(m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_OWNER_DIED, msg, 1);
  }
}

void gcs_actors_on_job_finished(gcs_actors_t *m, const id_job_t *job)
{
  char hex[9], msg[96];
  if (!m || m->stopping)
    return;
  snprintf(msg, sizeof(msg), "its owner died: job %s finished", id_hex(job->b, ID_JOB_SIZE, hex));
  kill_owned(m, NULL, job, msg);
}

void gcs_actors_on_pg_removed(gcs_actors_t *m, const char *pg_hex)
{
  if (!m || m->stopping)
    return;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    if (a->state == RAYC__ACTOR_STATE__ACTOR_DEAD || !a->spec)
      continue;
    Rayc__TaskSpec *spec = rayc__task_spec__unpack(NULL, a->spec_len, a->spec);
    int in_group = 0;
    for (size_t i = 0; spec && i < spec->n_resources && !in_group; i++) {
      const char *g = strstr(spec->resources[i]->name, "_group_");
      in_group = g && strstr(g, pg_hex) != NULL;
    }
    pb_free(spec);
    if (in_group) {
      char *msg = xasprintf("its placement group %s was removed", pg_hex);
      gcs_actor_kill(m, a, RAYC__ACTOR_DEATH_CAUSE__ACTOR_KILLED, msg, 1);
      free(msg);
    }
  }
}

void gcs_actors_owner_gone(gcs_actors_t *m, gcs_actor_owner_t *o, int exited, const char *detail)
{
  char hex[9];
  o->dead = 1;
  char *msg = xasprintf("its owner died: the process that created it (worker %s at %s) %s%s%s",
                        id_short(o->id.b, ID_WORKER_SIZE, hex), o->target, exited ? "exited" : "died",
                        detail ? ": " : "", detail ? detail : "");
  log_info("actor owner %s %s; killing its actors", hex, exited ? "exited" : "died");
  kill_owned(m, &o->id, NULL, msg);
  free(msg);
}

/* ---- life cycle ---- */

gcs_actors_t *gcs_actors_create(struct gcs_server *s)
{
  rpc_client_opts_t o = {.loop = s->loop, .token = s->token, .tls = &s->tls};
  rpc_client_t *c = rpc_client_create(&o);
  if (!c)
    return NULL;
  gcs_actors_t *m = xcalloc(1, sizeof(*m));
  m->s = s;
  m->client = c;
  hmap_init(&m->by_id);
  hmap_init(&m->by_name);
  hmap_init(&m->owners);
  hmap_init(&m->hosts);
  m->per_host = s->conf ? s->conf->actors_per_worker : 0;
  m->lease_owner = id_worker_random();
  gcs_actors_load(m);
  return m;
}

void gcs_actors_cron(gcs_actors_t *m, int64_t now)
{
  if (!m || m->stopping)
    return;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    for (gcs_actor_waiter_t **pp = &a->waiters; *pp;) {
      gcs_actor_waiter_t *w = *pp;
      if (now < w->deadline_ms) {
        pp = &w->next;
        continue;
      }
      *pp = w->next;
      actor_reply_info(m, a, w->call);
      free(w);
    }
    if (a->retry_wanted && now >= a->retry_at_ms && a->state != RAYC__ACTOR_STATE__ACTOR_DEAD) {
      if (a->no_fit_version && a->no_fit_version == m->s->nodes.view_version &&
          now - a->no_fit_ms < ACTOR_NO_FIT_FULL_RETRY_MS) {
        a->retry_at_ms = now + ACTOR_NO_FIT_RECHECK_MS; /* nothing changed: no node fits still */
        continue;
      }
      a->retry_wanted = 0;
      gcs_actor_schedule(m, a);
    }
  }
  for (hmap_iter_t it = hmap_iter(&m->owners); hmap_next(&it);) {
    gcs_actor_owner_t *o = it.value;
    if (!o->dead && !o->polling && o->retry_at_ms && now >= o->retry_at_ms)
      gcs_actor_owner_poll(m, o);
  }
}

void gcs_actors_shutdown(gcs_actors_t *m)
{
  if (!m || m->stopping)
    return;
  m->stopping = 1;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    a->gen++;
    gcs_actor_waiter_t *w = a->waiters;
    a->waiters = NULL;
    while (w) {
      gcs_actor_waiter_t *next = w->next;
      rpc_reply_error(w->call, RAYC_EUNAVAILABLE, "the GCS is shutting down");
      free(w);
      w = next;
    }
  }
  rpc_client_destroy(m->client); /* callbacks see m->stopping and do nothing */
  m->client = NULL;
}

void gcs_actors_destroy(gcs_actors_t *m)
{
  if (!m)
    return;
  gcs_actors_shutdown(m);
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_actor_t *a = it.value;
    free(a->name);
    free(a->ns);
    free(a->class_name);
    free(a->code_path);
    free(a->death_msg);
    free(a->spec);
    free(a);
  }
  for (hmap_iter_t it = hmap_iter(&m->owners); hmap_next(&it);)
    free(it.value);
  gcs_actor_hosts_release(m);
  hmap_release(&m->by_id);
  hmap_release(&m->by_name);
  hmap_release(&m->owners);
  free(m);
}
