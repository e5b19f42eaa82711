/*
 * rayc-store's server internals, shared by store_server.c (lifecycle, connections, replies),
 * store_handlers.c (the request table and handlers) and store_wait.c (requests that wait).
 *
 * A client is its local_conn_t; its id (local_conn_id) names it in the object table's reference
 * counts. Parked requests point at their connection and are dropped in on_close, before the
 * connection is freed, so no parked request outlives its connection.
 */
#ifndef RAYC_STORE_SERVER_INT_H
#define RAYC_STORE_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/local.h"
#include "common/pb.h"
#include "object-store/store_core.h"
#include "object-store/store_region.h"
#include "object-store/store_server.h"

enum {
  STORE_GET_MAX_IDS = 65536, /* keeps a get reply well under FRAME_MAX */
};

/* A parked request: a get waiting for objects to be sealed, or a create waiting for room. */
typedef struct store_wait {
  struct store_wait *prev, *next;
  store_server_t *srv;
  local_conn_t *conn;
  uint64_t seq;
  int64_t start_ms;
  uv_timer_t timer; /* started only for a finite timeout; closed (and the wait freed) on removal */
  /* get */
  uint8_t *ids; /* n * ID_OBJECT_SIZE, owned */
  size_t n;
  /* create */
  uint8_t id[ID_OBJECT_SIZE];
  uint64_t data_size, metadata_size;
  uint8_t *owner; /* owned */
  size_t owner_len;
} store_wait_t;

typedef struct store_wait_list {
  store_wait_t *head, *tail;
} store_wait_list_t;

struct store_server {
  uv_loop_t *loop;
  local_server_t *listener;
  store_region_t region;
  store_core_t core;
  store_wait_list_t gets;    /* parked gets */
  store_wait_list_t creates; /* parked creates, oldest first */
  int shut_down;
  char err[256];             /* message for the error reply of the current request */
};

/* Create arguments, borrowed from a request or a parked create. */
typedef struct store_create_args {
  const uint8_t *id;
  uint64_t data_size, metadata_size;
  const void *owner;
  size_t owner_len;
} store_create_args_t;

/* ---- store_server.c ---- */

/* Sets m's seq and an OK status and queues it on c (pass_fd >= 0 travels with it). */
void store_reply(local_conn_t *c, uint64_t seq, Rayc__LocalMessage *m, int pass_fd);
/* Replies with status code and message (borrowed) and no body. */
void store_reply_error(local_conn_t *c, uint64_t seq, int code, const char *msg);
/* Replies OK with body ok = true. */
void store_reply_ok(local_conn_t *c, uint64_t seq);
/* Records the message for the current request's error reply; returns code. */
int store_fail(store_server_t *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- store_handlers.c ---- */

/* Handles one decoded request from c: replies, or parks the request. */
void store_dispatch(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m);

/* ---- store_wait.c ---- */

/* Replies to a get of n ids (flat, n * ID_OBJECT_SIZE bytes), taking a reference for c on each
 * object found. */
void store_get_reply(store_server_t *s, local_conn_t *c, uint64_t seq, const uint8_t *ids, size_t n);

/* Parks a get until all ids are readable or timeout_ms passes (< 0: no limit). ids copied. */
void store_wait_get(store_server_t *s, local_conn_t *c, uint64_t seq, const uint8_t *ids, size_t n,
                    int64_t timeout_ms);

/* core's on_sealed hook: answers the parked gets the object completes. */
void store_wait_on_sealed(void *ctx, const store_obj_t *o);

/* Tries a create now; on 0 the reply is sent. Else returns the error (message in core). */
int store_create_now(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a);

/* Parks a create that found no room, until memory is freed or timeout_ms passes (< 0: no limit). */
void store_wait_create(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a,
                       int timeout_ms);

/* Retries parked creates in order after memory was freed. */
void store_wait_retry_creates(store_server_t *s);

/* Drops c's parked requests (c == NULL: all of them), without replying. */
void store_wait_drop(store_server_t *s, local_conn_t *c);

#endif
