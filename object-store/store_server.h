/*
 * rayc-store's protocol server: the node's clients (drivers and workers) talk to the store over a
 * Unix socket in length-prefixed rayc.LocalMessage frames (proto/local.proto, common/local.h).
 *
 * Threads: none of its own. The loop given to store_server_create owns all of the store's state
 * (region, allocator, object table, waiting requests); every handler runs to completion and
 * never blocks. Requests that must wait (a get for objects not yet sealed, a create waiting for
 * room) are parked with a loop timer and answered later from the loop.
 */
#ifndef RAYC_STORE_SERVER_H
#define RAYC_STORE_SERVER_H

#include <stdint.h>
#include <uv.h>

typedef struct store_server store_server_t;

/* Maps a region of capacity bytes and starts listening on socket_path (borrowed; its parent
 * directory is created 0700 when missing). Returns 0 and *out (free with store_server_destroy), or
 * a negative errno / RAYC_E* code, having logged why. */
int store_server_create(uv_loop_t *loop, const char *socket_path, uint64_t capacity, store_server_t **out);

/* Starts a graceful shutdown (idempotent): stops listening, closes every client (releasing what
 * each held), answers nothing more and unlinks the socket. The loop ends once it has run the close
 * callbacks. */
void store_server_shutdown(store_server_t *s);

/* Shuts down if not yet done and frees the store (region, objects, bookkeeping). Call after the
 * loop has run the close callbacks (uv_run returned). Accepts NULL. */
void store_server_destroy(store_server_t *s);

#endif
