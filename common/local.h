/*
 * Unix-socket servers on a libuv loop speaking frames (common/frame.h), for rayc-store and
 * rayc-raylet's local clients.
 *
 * The socket file is created 0600 in a 0700 directory. A connecting peer whose uid differs from the
 * daemon's is refused (SO_PEERCRED). Each connection reads with a uv_poll handle into a
 * frame_reader and writes through an output queue, so a slow client never blocks the loop; frames
 * may carry one fd (SCM_RIGHTS), sent with the first byte of that frame. A peer that sends a
 * malformed frame is disconnected by the caller (local_conn_close) and nothing else is affected.
 */
#ifndef RAYC_COMMON_LOCAL_H
#define RAYC_COMMON_LOCAL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct local_server local_server_t;
typedef struct local_conn local_conn_t;

typedef struct local_server_cbs {
  /* A peer connected (already checked: same uid). May be NULL. */
  void (*on_connect)(void *ctx, local_conn_t *c);
  /* One complete frame; payload borrowed for the call. The callback may close c. */
  void (*on_frame)(void *ctx, local_conn_t *c, const uint8_t *payload, size_t len);
  /* The connection is closing (peer hung up, error, or local_conn_close); c is freed after this
   * returns. Release everything the connection holds here. May be NULL. */
  void (*on_close)(void *ctx, local_conn_t *c);
} local_server_cbs_t;

/* Listens on path (an existing file there is replaced). Returns a new server, or NULL with
 * *err set to a negative errno. cbs is copied; ctx is passed to every callback. */
local_server_t *local_server_create(uv_loop_t *loop, const char *path, const local_server_cbs_t *cbs,
                                    void *ctx, int *err);

/* Closes every connection (on_close runs for each), stops listening and unlinks the socket file.
 * Memory is freed by libuv close callbacks: run the loop once more before uv_loop_close. */
void local_server_destroy(local_server_t *s);

/* Queues one frame; pass_fd (>= 0) is dup'ed, so the caller keeps its fd. 0 or a negative code
 * (the connection is closing). */
int local_conn_send(local_conn_t *c, const void *payload, size_t len, int pass_fd);

/* Packs m and queues it as one frame. */
int local_conn_send_msg(local_conn_t *c, const ProtobufCMessage *m, int pass_fd);

/* Closes c after its queued output is dropped; on_close runs (now or on the next loop turn). */
void local_conn_close(local_conn_t *c);

void local_conn_set_data(local_conn_t *c, void *data);
void *local_conn_data(const local_conn_t *c);
pid_t local_conn_pid(const local_conn_t *c);
/* A small number unique per connection, for logs. */
uint64_t local_conn_id(const local_conn_t *c);

#endif
