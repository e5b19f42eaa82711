/*
 * The GCS actor manager (Ray's GcsActorManager + GcsActorScheduler): the actor table, actor
 * placement and fault tolerance.
 *
 * An actor's states (one enum, changed only by gcs_actor_set_state, which logs and publishes):
 *
 *   PENDING_CREATION --placed, constructor ran--> ALIVE --worker/node lost, restarts left--> RESTARTING
 *         |                                         |                                        |
 *         +------------ constructor failed, killed, owner died, no restarts left -----------+--> DEAD
 *
 * Placement (gcs_actor_place.c): pick a node (the owner's if it has the resources, else any ALIVE
 * node that has them, round robin), lease a dedicated worker from that node's raylet
 * (RequestWorkerLease, for the job's "actor job" id: the job id with its top bit set, so the
 * raylet does not kill actor workers with the driver's job: the GCS alone ends them), push the
 * ACTOR_CREATION_TASK to it, and once the constructor has returned publish the worker's address.
 * Then the GCS holds a WaitActorExit call on the worker: it is answered when the actor exits by
 * itself (rayc_actor_exit: DEAD, no restart) and fails when the worker dies (the raylet is then
 * probed to tell a dead worker from a dead node). A restart runs the constructor again on a new
 * worker, avoiding a node that died. Every asynchronous step carries the actor's generation, which
 * any change of plan (kill, loss, restart) bumps, so late answers of an abandoned step are ignored
 * (a worker granted or created too late is given back or killed).
 *
 * Lifetimes: an owned actor dies with its owner: the GCS holds a WaitOwnerExit call on the
 * creating process (answered when it exits in order, failing when it dies), and the owning job
 * finishing kills the job's owned actors too. Detached actors live until killed.
 *
 * Callers learn about changes by long-polling GetActorInfo with the last version they saw.
 * Everything runs on the GCS loop. Per actor: the record, its names, the packed creation task
 * (freed once DEAD): well under 4 KiB for small constructor arguments.
 *
 * Persistence (gcs_actor_store.c): the table lives in memory and is written through to a
 * persistent GCS store (Redis; table "ACTOR", one ActorTableEntry per actor) once per state
 * change, at registration and when a lease is granted; replies and long-poll answers go out through gcs_server_reply, so a
 * client is only told what survives a crash. A restarted GCS reloads the table (names included)
 * and, once serving, resumes it: ALIVE actors keep their workers (WaitActorExit is held again;
 * a worker that died meanwhile is probed and restarted or ends as usual; an actor whose node is
 * DEAD is lost at once), PENDING/RESTARTING ones are placed again (a worker leased for them
 * before the crash is given back and killed), owners are watched again. RegisterActor is
 * idempotent by actor id, so clients may retry it across a restart.
 */
#ifndef RAYC_GCS_ACTOR_H
#define RAYC_GCS_ACTOR_H

#include "common/hmap.h"
#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "proto/gcs_actor.pb-c.h"

#include <stdint.h>

struct gcs_server;
struct gcs_node;

enum gcs_actor_phase {
  GCS_ACTOR_IDLE,     /* nothing in flight (ALIVE, DEAD, or waiting to retry placement) */
  GCS_ACTOR_LEASING,  /* RequestWorkerLease in flight */
  GCS_ACTOR_CREATING, /* PushTask(ACTOR_CREATION_TASK) in flight */
  GCS_ACTOR_PROBING,  /* its worker was lost: asking its raylet whether the node lives */
};

typedef struct gcs_actor_waiter {
  struct gcs_actor_waiter *next;
  rpc_call_t *call;
  int64_t deadline_ms;
} gcs_actor_waiter_t;

typedef struct gcs_actor {
  uint8_t id[ID_ACTOR_SIZE];
  Rayc__ActorState state;
  Rayc__ActorDeathCause cause;
  enum gcs_actor_phase phase;
  uint8_t detached, has_owner, has_node, has_avoid, retry_wanted;
  uint8_t warned_no_node; /* the "no alive node fits" warning was logged (once per actor) */
  int64_t no_fit_version; /* the cluster view's version when no node fitted it (0: none): the
                             periodic retry skips the placement while the view is unchanged */
  int64_t no_fit_ms;      /* when that was found (a full placement runs at least every 10 s) */
  int32_t max_restarts, num_restarts, max_task_retries, max_concurrency;
  uint32_t gen;     /* bumped by every change of plan: stale callbacks compare it */
  uint64_t version; /* published to callers */
  id_job_t job;
  id_worker_t owner;
  char *name, *ns, *class_name, *code_path, *death_msg;
  uint8_t *spec; /* the packed creation TaskSpec; NULL once DEAD */
  size_t spec_len;
  id_node_t node;  /* where it is placed (has_node) */
  id_node_t avoid; /* a node that died under it (has_avoid) */
  id_worker_t worker;
  char ip[48];
  int32_t port; /* > 0 once ALIVE */
  uint8_t lease_id[16];
  uint8_t kill_id[32]; /* request_id of the last KillActor done (kill_id_len bytes) */
  uint8_t kill_id_len;
  int64_t retry_at_ms, start_ms, end_ms;
  gcs_actor_waiter_t *waiters;
  uint8_t in_host;      /* placed in a shared worker (gcs_actor_host.c): host_key names it */
  uint8_t host_key[16]; /* with in_host */
  uint8_t left_key[16]; /* the host it last left: a restart goes elsewhere (a late KillActorWorker
                           there names the actor id, so it must not find the new incarnation) */
} gcs_actor_t;

/* A worker process that hosts actors that share it (gcs_actor_host.c). */
typedef struct gcs_actor_host {
  uint8_t key[16]; /* random: the hosts map's key, and each member actor's host_key */
  id_job_t job;
  int32_t language;
  char *code_path;
  id_node_t node;
  char raylet[80]; /* its node's raylet, "ip:port" */
  char target[80]; /* the worker, "ip:port", once granted */
  char ip[48];     /* the worker's address, once granted */
  int32_t port;
  uint8_t lease_id[16];
  id_worker_t worker;
  int n;           /* member actors (waiting for the lease, being created or alive) */
  uint8_t granted; /* the raylet leased the worker */
  uint8_t dead;    /* no more members: its worker died, or its last member left before the grant */
} gcs_actor_host_t;

typedef struct gcs_actor_owner {
  id_worker_t id;
  char target[80];
  uint8_t polling, dead;
  int failures;
  int64_t retry_at_ms;
} gcs_actor_owner_t;

typedef struct gcs_actors {
  struct gcs_server *s;    /* borrowed */
  rpc_client_t *client;    /* on the GCS loop: raylets, actor workers, owners */
  hmap_t by_id;            /* id -> gcs_actor_t (owned; DEAD ones are kept) */
  hmap_t by_name;          /* "ns\0name" -> live gcs_actor_t */
  hmap_t owners;           /* worker id -> gcs_actor_owner_t (owned) */
  id_worker_t lease_owner; /* the owner id the GCS's leases carry */
  size_t rr;               /* round-robin start for node choice */
  int stopping;
  int persist;  /* write the table through to the store (not with the memory store) */
  hmap_t hosts; /* key -> gcs_actor_host_t (owned): workers shared by several actors */
  int per_host; /* --actors-per-worker */
} gcs_actors_t;

/* Makes the manager of server s (its loop, token and node/job tables are used). Returns NULL if
 * the rpc client cannot be made. Destroy with gcs_actors_destroy(). */
gcs_actors_t *gcs_actors_create(struct gcs_server *s);

/* Answers every held call and cancels what is in flight (loop thread; before the RPC server is
 * destroyed or after). Idempotent. */
void gcs_actors_shutdown(gcs_actors_t *m);

/* Frees the manager (after gcs_actors_shutdown). Accepts NULL. */
void gcs_actors_destroy(gcs_actors_t *m);

/* Periodic work at monotonic time now: expired long polls, placement retries, owner re-polls. */
void gcs_actors_cron(gcs_actors_t *m, int64_t now);

/* A node died: its actors restart elsewhere or die. */
void gcs_actors_on_node_dead(gcs_actors_t *m, const id_node_t *node);

/* A job finished: its owned (non-detached) actors die. */
void gcs_actors_on_job_finished(gcs_actors_t *m, const id_job_t *job);

/* A placement group (hex id) was removed: the actors placed in its bundles die (no restart). */
void gcs_actors_on_pg_removed(gcs_actors_t *m, const char *pg_hex);

/* RPC handlers of ActorInfoGcsService (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_actor_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_actor_on_get_info(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_actor_on_get_named(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_actor_on_kill(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_actor_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

/* ---- internal: gcs_actor.c <-> gcs_actor_place.c ---- */

/* Changes a's state (logged, version bumped, waiters answered); msg (copied) is the death or loss
 * reason, NULL to keep the current one. DEAD drops the name and the creation task. */
void gcs_actor_set_state(gcs_actors_t *m, gcs_actor_t *a, Rayc__ActorState st, Rayc__ActorDeathCause cause,
                         const char *msg);

/* a's worker (or node) is gone: restart it if it may, else DEAD. */
void gcs_actor_lost(gcs_actors_t *m, gcs_actor_t *a, Rayc__ActorDeathCause cause, const char *msg);

/* Ends a for good or for a restart: stops its worker, bumps its generation. */
void gcs_actor_kill(gcs_actors_t *m, gcs_actor_t *a, Rayc__ActorDeathCause cause, const char *msg, int no_restart);

/* gcs_actor_place.c */
void gcs_actor_schedule(gcs_actors_t *m, gcs_actor_t *a);
void gcs_actor_stop_worker(gcs_actors_t *m, gcs_actor_t *a, const char *reason);
void gcs_actor_watch_owner(gcs_actors_t *m, const Rayc__Address *owner);
void gcs_actor_owner_poll(gcs_actors_t *m, gcs_actor_owner_t *o);
/* gcs_actor.c: an owner exited (exited: it answered its long poll) or died: its actors die. */
void gcs_actors_owner_gone(gcs_actors_t *m, gcs_actor_owner_t *o, int exited, const char *detail);

/* The by_name key of (ns, name): "ns\0name", *len bytes; returns new (free()). */
char *gcs_actor_name_key(const char *ns, const char *name, size_t *len);

/* Fills info as a shallow view of a (borrowing a's memory and addr/owner, which the caller
 * provides). */
void gcs_actor_view(gcs_actors_t *m, const gcs_actor_t *a, Rayc__ActorInfo *info, Rayc__Address *addr,
                    Rayc__Address *owner);

/* gcs_actor_store.c: writes a through to the store (errors are logged: memory stays
 * authoritative, and a store that fails for good stops the GCS). */
void gcs_actor_persist(gcs_actors_t *m, const gcs_actor_t *a);
/* Loads the stored table into m (at creation; unreadable records are skipped and logged). */
void gcs_actors_load(gcs_actors_t *m);
/* Picks the loaded actors up again (once the GCS serves): see "Persistence" above. */
void gcs_actors_resume(gcs_actors_t *m);

/* gcs_actor_place.c: holds WaitActorExit on a's (ALIVE) worker again. */
void gcs_actor_watch(gcs_actors_t *m, gcs_actor_t *a);
/* Gives a's leased worker back to the raylet of a's node, which ends it (a half-made actor). */
void gcs_actor_return_lease(gcs_actors_t *m, gcs_actor_t *a);

/* gcs_actor_place.c, for gcs_actor_host.c */
void gcs_actor_create_on(gcs_actors_t *m, gcs_actor_t *a); /* pushes the constructor to a's worker */
void gcs_actor_retry_later(gcs_actor_t *a, int ms);        /* placement again after ms */
void gcs_actor_give_back(gcs_actors_t *m, const char *raylet, const uint8_t *lease_id, int exiting);

/* gcs_actor_host.c: actors that share a worker. Puts a (whose creation task is spec) into a host
 * worker on node n of its job, language and code path with room, or a new one (leased from n's
 * raylet); returns 0 when a is not to share (it needs resources, or sharing is off). */
int gcs_actor_host_place(gcs_actors_t *m, gcs_actor_t *a, struct gcs_node *n, const Rayc__TaskSpec *spec);
/* a leaves its host (if it is in one); the host's last member gives the worker back, which ends it. */
void gcs_actor_host_leave(gcs_actors_t *m, gcs_actor_t *a);
/* a's host worker is gone: no actor is placed there any more. */
void gcs_actor_host_lost(gcs_actors_t *m, const gcs_actor_t *a);
/* 1 if target ("ip:port") is a host worker that still has members (its channel is kept). */
int gcs_actor_host_in_use(gcs_actors_t *m, const char *target);
/* A reloaded actor (GCS restart) that shares a worker: an ALIVE one joins (or makes) the host
 * record of its worker. Returns 1 if a shares its worker (so a worker leased for it is not to be
 * ended: other actors may live there), else 0. */
int gcs_actor_host_adopt(gcs_actors_t *m, gcs_actor_t *a);
/* Frees every host record (gcs_actors_destroy). */
void gcs_actor_hosts_release(gcs_actors_t *m);

/* Returns "ALIVE", ... */
const char *gcs_actor_state_name(Rayc__ActorState st);

#endif
