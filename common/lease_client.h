/*
 * The client side of a worker lease (NodeManagerService.RequestWorkerLease), shared by the two
 * owners that lease workers: the core worker (worker/cw_submit.c, for tasks) and the GCS
 * (gcs/gcs_actor_place.c, for actors). It builds the request's common fields and reads a reply
 * into one of a few outcomes; each caller keeps its own state machine (retries, spillback hops,
 * what a failure does to its tasks or its actor).
 *
 * Nothing here allocates: the request points into the caller's storage and the classified reply
 * borrows from the reply message (valid while the caller holds it).
 */
#ifndef RAYC_COMMON_LEASE_CLIENT_H
#define RAYC_COMMON_LEASE_CLIENT_H

#include "common/ids.h"
#include "common/res.h"
#include "proto/node_manager.pb-c.h"

#include <stddef.h>
#include <stdint.h>

enum { LEASE_ID_SIZE = 16, LEASE_TARGET_MAX = 80 };

/* The fields every lease request carries. Strings and arrays are borrowed. */
typedef struct lease_params {
  id_job_t job;
  id_worker_t owner;               /* the lease dies with this worker (or driver, or the GCS) */
  Rayc__ResourceEntry **resources; /* the resource shape */
  size_t n_resources;
  const char *code_path; /* NULL: "" */
  int language;          /* enum rayc_language: the pool's key with job and code path */
  int spilled;           /* the sender chose this node: queue here, never spill back */
} lease_params_t;

/* Fills req (initialized here) from p, with a fresh random lease id written to lease_id (the
 * request points at it: keep it alive until the call is started). Scheduling strategy, affinity
 * and placement-group fields are left to the caller. */
void lease_request_init(Rayc__RequestWorkerLeaseRequest *req, const lease_params_t *p, uint8_t lease_id[LEASE_ID_SIZE]);

/* Points ptrs[i] at ents[i], each filled from res (names borrowed from the intern table); returns
 * res->n. ents and ptrs need res->n slots. */
size_t lease_res_entries(const res_set_t *res, Rayc__ResourceEntry *ents, Rayc__ResourceEntry **ptrs);

enum lease_outcome {
  LEASE_GRANTED,     /* worker, lease_id and target are set */
  LEASE_SPILLBACK,   /* ask the raylet at target (node_id when the reply named it) instead */
  LEASE_REJECTED,    /* the raylet refused it (reason) */
  LEASE_INFEASIBLE,  /* no node of the cluster can run this shape (RAYC_EINFEASIBLE) */
  LEASE_UNAVAILABLE, /* the raylet could not be reached (RAYC_EUNAVAILABLE) */
  LEASE_CANCELLED,   /* the request was cancelled, or its owner or job ended (RAYC_ECANCELLED) */
  LEASE_FAILED,      /* any other error, or a reply that is none of the above (reason says) */
};

typedef struct lease_reply {
  enum lease_outcome outcome;
  int status;                      /* the call's status: 0 when the raylet answered */
  const char *reason;              /* borrowed: the error detail or the raylet's reason; never NULL */
  id_worker_t worker;              /* LEASE_GRANTED */
  uint8_t lease_id[LEASE_ID_SIZE]; /* LEASE_GRANTED */
  id_node_t node;                  /* GRANTED or SPILLBACK, when has_node */
  int has_node;
  char ip[48]; /* the worker's (GRANTED) or the raylet's (SPILLBACK) address */
  int port;
  char target[LEASE_TARGET_MAX]; /* "ip:port" ("[ip]:port" for IPv6), for rpc_channel_get */
  const int32_t *gpu_ids;        /* borrowed from the reply (GRANTED) */
  size_t n_gpu_ids;
} lease_reply_t;

/* Reads a RequestWorkerLease completion (status, detail and rep as rpc_call's callback gets them;
 * rep may be NULL when status != 0) into *out. Returns out->outcome. */
enum lease_outcome lease_reply_classify(int status, const char *detail, const Rayc__RequestWorkerLeaseReply *rep,
                                        lease_reply_t *out);

/* The outcome's name ("granted", "spillback", ...), for logs. */
const char *lease_outcome_name(enum lease_outcome o);

#endif
