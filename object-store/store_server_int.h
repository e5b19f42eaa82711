/*
 * rayc-store's server internals, shared by its files:
 *   store_server.c    lifecycle, connections, replies, the periodic timer
 *   store_handlers.c  the local request table and its handlers
 *   store_wait.c      parked gets (waiting for seals and restores) and requests waiting for room
 *   store_spill.c     spill batches, restores and spill files (I/O on store_io threads)
 *   store_om.c        the gRPC ObjectManagerService: serving chunks (with pins), FreeObjects
 *   store_pull.c      pulling objects from other nodes into this store
 *
 * A client is its local_conn_t (with a store_conn_t attached); its id (local_conn_id) names it in
 * the object table's reference counts. Internal users (pulls, the object manager's pins) take
 * ids with STORE_CLIENT_INTERNAL set. Parked requests point at their connection and are dropped
 * in on_close, before the connection is freed, so no parked request outlives its connection.
 */
#ifndef RAYC_STORE_SERVER_INT_H
#define RAYC_STORE_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/hmap.h"
#include "common/local.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "object-store/store_core.h"
#include "object-store/store_io.h"
#include "object-store/store_region.h"
#include "object-store/store_server.h"
#include "proto/object_manager.pb-c.h"

enum {
  STORE_GET_MAX_IDS = 65536, /* keeps a get reply well under FRAME_MAX */
  STORE_PULL_MAX_SOURCES = 64,
  STORE_CHUNK_SIZE = 5 << 20,     /* bytes per GetChunk (DESIGN.md: 5 MiB) */
  STORE_CHUNK_MAX = 16 << 20,     /* the most one GetChunk may ask for */
  STORE_PULL_WINDOW = 6,          /* chunk calls in flight per pull */
  STORE_PULL_ATTEMPTS = 3,        /* failed chunk calls on one source before the next source */
  STORE_PULL_RETRY_MS = 100,      /* pause before re-asking a failed chunk (times attempts) */
  STORE_CHUNK_TIMEOUT_MS = 30000, /* deadline of one GetChunk call */
  STORE_PIN_IDLE_MS = 2000,       /* a served object is unpinned after this long without a chunk */
  STORE_RESTORE_ROOM_MS = 10000,  /* how long a restore waits for room before it fails */
  STORE_SPILL_INFLIGHT = 2,       /* spill batches being written at once */
  STORE_SPILL_MAX_OBJECTS = 1024, /* objects fused into one spill file at most */
  STORE_SPILL_BACKOFF_MS = 1000,  /* pause after a failed spill */
  STORE_CRON_MS = 100,            /* the periodic timer, while the store has work */
  STORE_IDLE_CRON_MS = 1000,      /* ... and while it has none (store_server.c, store_idle) */
};

#define STORE_CLIENT_OM_PIN (STORE_CLIENT_INTERNAL | 1) /* holds the object manager's pins */

typedef struct store_pull store_pull_t;

/* What the store keeps per local connection (local_conn_data). */
typedef struct store_conn {
  local_conn_t *conn;
  int subscribed;
  struct store_conn *sub_prev, *sub_next; /* the subscribers list */
} store_conn_t;

/* A parked get. got[i] is set once a reference to ids[i] was taken for conn; the reply reports
 * exactly those objects as found. */
typedef struct store_get_wait {
  struct store_get_wait *prev, *next;
  store_server_t *srv;
  local_conn_t *conn;
  uint64_t seq;
  uv_timer_t timer; /* started only for a finite timeout; closed (and the wait freed) on removal */
  size_t n, remaining;
  uint8_t *ids;     /* n * ID_OBJECT_SIZE, owned */
  uint8_t *got;     /* n flags, owned */
  int restore_only; /* its time is up: answer once none of its objects is being restored */
  int finished;
} store_get_wait_t;

typedef enum store_room_kind {
  STORE_ROOM_CREATE,  /* a client's create */
  STORE_ROOM_PULL,    /* the local copy of a pull */
  STORE_ROOM_RESTORE, /* memory to restore a spilled object into */
} store_room_kind_t;

/* A request waiting for room in the region, queued oldest first. */
typedef struct store_room_wait {
  struct store_room_wait *prev, *next;
  store_server_t *srv;
  store_room_kind_t kind;
  int64_t start_ms;
  uv_timer_t timer;
  uint64_t need; /* bytes */
  uint8_t id[ID_OBJECT_SIZE];
  /* create */
  local_conn_t *conn;
  uint64_t seq;
  uint64_t data_size, metadata_size;
  uint8_t *owner; /* owned */
  size_t owner_len;
  /* pull */
  store_pull_t *pull;
} store_room_wait_t;

/* Create arguments, borrowed from a request or a parked create. */
typedef struct store_create_args {
  const uint8_t *id;
  uint64_t data_size, metadata_size;
  const void *owner;
  size_t owner_len;
} store_create_args_t;

/* A GetChunk call parked until its (spilled) object is restored. */
typedef struct store_chunk_wait {
  struct store_chunk_wait *next;
  rpc_call_t *call;
  const Rayc__GetChunkRequest *req; /* owned by the call */
  int64_t start_ms;
} store_chunk_wait_t;

struct store_server {
  uv_loop_t *loop;
  local_server_t *listener;
  store_region_t region;
  store_core_t core;
  /* waiting (store_wait.c) */
  store_get_wait_t *gets_head, *gets_tail;
  hmap_t get_index; /* id -> store_get_index_t* (store_wait.c): parked gets by the ids they lack */
  store_room_wait_t *rooms_head, *rooms_tail;
  hmap_t restores;   /* id -> store_room_wait_t*: restores waiting for room */
  int restore_retry; /* a restore failed: parked gets may want it again (cron) */
  store_conn_t *subs;
  /* spilling (store_spill.c) */
  store_io_t *io;
  char *spill_dir;
  char *spill_prefix; /* "store-<pid>-": this store's file names */
  double spill_threshold;
  uint64_t spill_file_target; /* bytes fused into one file */
  int spill_inflight;
  uint64_t spill_seq;
  int64_t spill_backoff_until;
  uint64_t spill_files, spill_file_bytes;
  /* object manager (store_om.c, store_pull.c) */
  rpc_server_t *om;
  int om_port;
  rpc_client_t *om_client;
  char *token;
  hmap_t pins; /* id -> store_pin_t*: objects pinned while chunks are served */
  store_chunk_wait_t *chunk_waits;
  hmap_t pulls;         /* id -> store_pull_t* */
  uint64_t next_client; /* for internal client ids */
  uint64_t pulled_objects, pulled_bytes, served_chunks, served_bytes;
  struct store_job_stats *job_stats; /* owned: per-job object counters (store_jobs.c) */
  size_t njob_stats, capjob_stats;
  uv_timer_t cron;
  uint64_t last_frame_ms;  /* loop time of the last local frame: the cron is busy a second after */
  int64_t metrics_next_ms; /* next refresh of the gauges (store_metrics.c) */
  int shut_down;
  char err[256]; /* message for the error reply of the current request */
};

/* ---- store_server.c ---- */

/* Sets m's seq and an OK status and queues it on c (pass_fd >= 0 travels with it). */
void store_reply(local_conn_t *c, uint64_t seq, Rayc__LocalMessage *m, int pass_fd);
/* Replies with status code and message (borrowed) and no body. */
void store_reply_error(local_conn_t *c, uint64_t seq, int code, const char *msg);
/* Replies OK with body ok = true. */
void store_reply_ok(local_conn_t *c, uint64_t seq);
/* Records the message for the current request's error reply; returns code. */
int store_fail(store_server_t *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* After anything that may have freed memory or made objects droppable: retries the requests
 * waiting for room and lets the spiller look at the thresholds. */
void store_kick(store_server_t *s);
/* Something came in: the cron ticks at STORE_CRON_MS again (until the store is idle). */
void store_cron_busy(store_server_t *s);
/* A new internal client id. */
uint64_t store_internal_client(store_server_t *s);
/* Sends a StoreObjectSealed notification for o to every subscribed connection. */
void store_notify_sealed(store_server_t *s, const store_obj_t *o);
/* Marks c's connection as subscribed. */
void store_subscribe(store_server_t *s, local_conn_t *c);

/* ---- store_handlers.c ---- */

/* Handles one decoded request from c: replies, or parks the request. */
void store_dispatch(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m);

/* ---- store_wait.c ---- */

/* Serves a get of n ids (flat, n * ID_OBJECT_SIZE bytes, borrowed): answers at once when every
 * object is readable (or timeout_ms is 0 and none is being restored), else parks it until they
 * are or timeout_ms passes (< 0: no limit). Spilled objects are restored on the way. */
void store_get_start(store_server_t *s, local_conn_t *c, uint64_t seq, const uint8_t *ids, size_t n,
                     int64_t timeout_ms);

/* Object id became readable, or a restore of it ended: advances the parked gets waiting for it. */
void store_gets_on_object(store_server_t *s, const uint8_t *id);

/* Asks for restores again for parked gets whose restore failed (called by the timer). */
void store_gets_retry_restores(store_server_t *s);

/* Tries a create now; on 0 the reply is sent. Else returns the error (message in core). */
int store_create_now(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a);

/* Parks a client's create that found no room, until memory is made or timeout_ms passes
 * (< 0: no limit). */
void store_room_wait_create(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a,
                            int timeout_ms);

/* Queues a pull's local create (need bytes) or a restore of id; returns the wait (owned by the
 * queue). timeout_ms < 0: no limit. */
store_room_wait_t *store_room_wait_pull(store_server_t *s, store_pull_t *p, uint64_t need, int64_t timeout_ms);
store_room_wait_t *store_room_wait_restore(store_server_t *s, const uint8_t *id, uint64_t need);

/* Removes a wait without running it (a cancelled pull). */
void store_room_cancel(store_server_t *s, store_room_wait_t *w);

/* Bytes the oldest waiting request needs, or 0 when none waits. */
uint64_t store_room_head_need(const store_server_t *s);

/* Retries the queued requests oldest first, stopping at the first that still finds no room. */
void store_room_retry(store_server_t *s);

/* Drops c's parked requests (c == NULL: all of them, also internal ones), without replying. */
void store_wait_drop(store_server_t *s, local_conn_t *c);

/* ---- store_spill.c ---- */

/* Starts spill batches while primary copies pass the threshold or a queued request needs room
 * that eviction cannot give, up to STORE_SPILL_INFLIGHT at a time. */
void store_spill_maybe(store_server_t *s);

/* Makes sure a SPILLED object is being restored (or waits for room to be): no-op otherwise. */
void store_restore_request(store_server_t *s, store_obj_t *o);

/* Starts restoring o now: 0, or RAYC_EOUT_OF_MEMORY (no room yet). */
int store_restore_now(store_server_t *s, store_obj_t *o);

/* A restore of o could not get room in time: o stays SPILLED with restore_err set. */
void store_restore_fail(store_server_t *s, store_obj_t *o, int err);

/* 1 when o is RESTORING, or SPILLED with a restore waiting for room. */
int store_restore_pending(const store_server_t *s, const store_obj_t *o);

/* core hook: the last object of f is gone; removes the file on an I/O thread. */
void store_spill_file_unused(void *ctx, store_spill_file_t *f);

/* Removes every file this store wrote into its spill dir (at exit). */
void store_spill_remove_all(store_server_t *s);
/* Removes the files of stores that are gone (their pid no longer runs), at start. */
void store_spill_remove_stale(store_server_t *s);

/* ---- store_om.c ---- */

/* Serves ObjectManagerService on node_ip:port (tls borrowed for the call); 0 or a negative code
 * (logged). */
int store_om_start(store_server_t *s, const char *node_ip, int port, const rpc_tls_t *tls);
/* Stops serving; pins are released. */
void store_om_stop(store_server_t *s);
/* A restore ended: answers the GetChunk calls that waited for it. */
void store_om_on_restored(store_server_t *s, const store_obj_t *o);
/* Releases pins idle for STORE_PIN_IDLE_MS (called by the timer). */
void store_om_cron(store_server_t *s);
/* The object manager's method table (for the test that checks it against the service). */
extern const rpc_method_t store_om_methods[];
extern const size_t store_om_nmethods;

/* ---- store_pull.c ---- */

/* Serves a StorePullRequest from c: replies now or when the pull ends. */
int store_pull_request(store_server_t *s, local_conn_t *c, uint64_t seq, const Rayc__StorePullRequest *r);
/* A room wait of a pull: tries its local create; 0 or RAYC_EOUT_OF_MEMORY to keep waiting. */
int store_pull_room_try(store_pull_t *p);
/* A pull's room wait timed out. */
void store_pull_room_timeout(store_pull_t *p);
/* Object o was sealed: answers pulls that waited for a local create. */
void store_pull_on_sealed(store_server_t *s, const store_obj_t *o);
/* Forgets c's waiting pull requests (c closes). */
void store_pull_drop_conn(store_server_t *s, local_conn_t *c);
/* Answers every pull with UNAVAILABLE and cancels its calls (at shutdown). */
void store_pull_shutdown(store_server_t *s);
/* Starts fetching for pulls that waited on a local create that was aborted (called by the timer). */
void store_pull_cron(store_server_t *s);

/* ---- store_jobs.c: per-job object accounting (governance records) ---- */
enum store_jobs_kind { STORE_JOBS_CREATED, STORE_JOBS_PULLED, STORE_JOBS_SPILLED };
/* Counts one object (id: ID_OBJECT_SIZE bytes) of bytes for its job. */
void store_jobs_count(store_server_t *s, const uint8_t *object_id, enum store_jobs_kind kind, uint64_t bytes);
void store_jobs_release(store_server_t *s);
/* ObjectManagerService.GetJobObjects. */
void store_jobs_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
/* store_list.c: ObjectManagerService.ListObjects (the state API's objects). */
void store_list_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
/* store_metrics.c: refreshes the store's Prometheus gauges and counters once a second (cron). */
void store_metrics_cron(store_server_t *s);

#endif
