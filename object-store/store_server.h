/*
 * rayc-store's server: the node's clients (drivers and workers) talk to the store over a Unix
 * socket in length-prefixed rayc.LocalMessage frames (proto/local.proto, common/local.h), and
 * other nodes' stores talk to its object manager over gRPC (proto/object_manager.proto).
 *
 * Threads. The loop given to store_server_create owns all of the store's state (region,
 * allocator, object table, waiting requests, pulls); every handler runs to completion and never
 * blocks. Requests that must wait (a get for objects not yet sealed or still on disk, a create
 * waiting for room, a pull) are parked and answered later from the loop. Spill writes, restore
 * reads and file removal run on the store's I/O threads (store_io.h); gRPC's completion-queue
 * threads hand calls and replies to the loop (common/rpc.h).
 */
#ifndef RAYC_STORE_SERVER_H
#define RAYC_STORE_SERVER_H

#include "common/local.h"

#include <stdint.h>
#include <uv.h>

typedef struct store_server store_server_t;

typedef struct store_server_opts {
  const char *socket_path;                 /* Unix socket for local clients; its parent dir is made 0700 */
  uint64_t capacity;                       /* bytes of shared memory */
  const char *spill_dir;                   /* where spill files go (made 0700 when missing) */
  double spill_threshold;                  /* spill primary copies once they pass this share of capacity (0.8) */
  int io_threads;                          /* spill/restore threads (>= 1) */
  const char *node_ip;                     /* object manager address; NULL: no object manager */
  int om_port;                             /* 0: ephemeral */
  const char *token;                       /* cluster token for the object manager's calls (server and client);
                               NULL: none */
  const char *tls_cert, *tls_key, *tls_ca; /* TLS files for the object manager (server and
                               client), read during store_server_create; NULL: plaintext */
  local_limits_t limits;                   /* on the local socket's clients (common/local.h) */
} store_server_opts_t;

/* Maps a region of opts->capacity bytes, listens on opts->socket_path and, when node_ip is set,
 * serves the object manager on node_ip:om_port. opts (and its strings) are borrowed for the call.
 * Returns 0 and *out (free with store_server_destroy), or a negative errno / RAYC_E* code, having
 * logged why. */
int store_server_create(uv_loop_t *loop, const store_server_opts_t *opts, store_server_t **out);

/* The object manager's bound TCP port, or 0 when it has none. */
int store_server_om_port(const store_server_t *s);

/* Starts a graceful shutdown (idempotent): stops listening, closes every client (releasing what
 * each held), cancels pulls, finishes the I/O threads, answers nothing more, unlinks the socket
 * and removes this store's spill files. The loop ends once it has run the close callbacks. */
void store_server_shutdown(store_server_t *s);

/* Shuts down if not yet done and frees the store (region, objects, bookkeeping). Call after the
 * loop has run the close callbacks (uv_run returned). Accepts NULL. */
void store_server_destroy(store_server_t *s);

/* The whole life of rayc-store (main() calls it; store_run.c). Returns the exit status: 0, 1 on a
 * start-up failure, 2 on bad settings. */
int store_server_run(int argc, char **argv);

#endif
