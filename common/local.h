/*
 * Unix-socket servers on a libuv loop speaking frames (common/frame.h), for rayc-store and
 * rayc-raylet's local clients.
 *
 * The socket file is created 0600 in a 0700 directory. A connecting peer whose uid differs from the
 * daemon's is refused (SO_PEERCRED), except root's: root may read the token and the sockets anyway,
 * and is who runs drivers on a node whose daemons systemd runs as the rayc user. Each connection reads with a uv_poll handle into a
 * frame_reader and writes through an output queue, so a slow client never blocks the loop; frames
 * may carry one fd (SCM_RIGHTS), sent with the first byte of that frame. A peer that sends a
 * malformed frame is disconnected by the caller (local_conn_close) and nothing else is affected.
 * A frame whose length prefix exceeds FRAME_MAX is dropped by this module (the connection closes).
 * Fds sent by clients are closed unread.
 *
 * Callback rules (re-entrancy). Every callback may call any function here, on any connection,
 * including local_conn_close() on its own connection and local_server_destroy(). local_conn_close()
 * never calls back and never frees: it drops the queued output and marks the connection closing
 * (sends then fail with RAYC_EUNAVAILABLE, no more on_frame for it); on_close runs on a later
 * loop turn, and the connection memory (and its data pointer) stays valid until on_close returns.
 * on_close runs exactly once per connection that had on_connect. Exception: local_server_destroy()
 * runs on_close synchronously for every connection that has not had it yet, so nothing calls into
 * the owner after it returns.
 */
#ifndef RAYC_COMMON_LOCAL_H
#define RAYC_COMMON_LOCAL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* Default bound on a connection's queued output; past it the client is dropped as too slow. */
enum { LOCAL_OUTPUT_MAX = 64 << 20 };

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

/* Listens on path (an existing file there is replaced; a missing parent directory is made 0700).
 * Returns a new server, or NULL with *err set to a negative errno (logged). cbs is copied (on_frame
 * is required); ctx is passed to every callback. path is copied. */
local_server_t *local_server_create(uv_loop_t *loop, const char *path, const local_server_cbs_t *cbs, void *ctx,
                                    int *err);

/* Closes every connection (on_close runs for each), stops listening and unlinks the socket file.
 * Memory is freed by libuv close callbacks: run the loop once more before uv_loop_close. */
void local_server_destroy(local_server_t *s);

/* Queues one frame and writes what the socket takes at once; pass_fd (>= 0) is dup'ed, so the
 * caller keeps its fd. payload is borrowed (copied). Returns 0, RAYC_EUNAVAILABLE when the
 * connection is closing or was just closed (write error, or its queue passed the output limit),
 * RAYC_EPROTOCOL when len > FRAME_MAX, or a negative errno when the fd cannot be dup'ed. */
int local_conn_send(local_conn_t *c, const void *payload, size_t len, int pass_fd);

/* Packs m and queues it as one frame. */
int local_conn_send_msg(local_conn_t *c, const ProtobufCMessage *m, int pass_fd);

/* Closes c after its queued output is dropped; on_close runs on a later loop turn (see the
 * callback rules above). Idempotent; accepts NULL. */
void local_conn_close(local_conn_t *c);

/* Stops reading from c (no more on_frame) and refuses new sends, writes what is queued, then
 * closes c as local_conn_close does: for "error reply, then hang up". Idempotent; accepts NULL. */
void local_conn_close_after_flush(local_conn_t *c);

void local_conn_set_data(local_conn_t *c, void *data);
void *local_conn_data(const local_conn_t *c);
pid_t local_conn_pid(const local_conn_t *c);
/* A small number unique per connection, for logs. */
uint64_t local_conn_id(const local_conn_t *c);

/* Bytes queued for c and not yet taken by its socket. */
size_t local_conn_queued(const local_conn_t *c);

/* 1 once c is closing (local_conn_close, local_conn_close_after_flush, or the peer went away). */
int local_conn_is_closing(const local_conn_t *c);

/* Limits against peers that misbehave (each a daemon setting; hitting one is logged once per
 * server, at warning level, and counted):
 *   max_conns   connections at once; past it a new one is accepted and closed at once (also when
 *               the process runs out of fds: a spare fd is given up to accept and close it, so the
 *               listening socket never spins). 0: unlimited.
 *   frame_max   longest frame taken; a longer length prefix drops the connection as soon as its
 *               4-byte header arrives. 0: FRAME_MAX.
 *   stall_ms    a frame must arrive whole within this long of its first byte, else the connection
 *               is dropped (half a frame, then silence); checked by local_server_cron. 0: never. */
typedef struct local_limits {
  size_t max_conns;
  size_t frame_max;
  int stall_ms;
} local_limits_t;

typedef struct local_stats {
  unsigned long conns_refused;   /* over max_conns, or out of fds */
  unsigned long frames_oversize; /* length prefix over frame_max */
  unsigned long conns_stalled;   /* dropped mid-frame after stall_ms */
  size_t conns;                  /* open now */
} local_stats_t;

/* Sets s's limits (copied); the defaults are all 0 (none but FRAME_MAX). */
void local_server_set_limits(local_server_t *s, const local_limits_t *l);
void local_server_get_stats(const local_server_t *s, local_stats_t *out);
/* Drops connections stalled mid-frame (see stall_ms); call from the daemon's cron. */
void local_server_cron(local_server_t *s);

/* Sets the per-connection output bound (default LOCAL_OUTPUT_MAX); for tests and tuning. */
void local_server_set_output_limit(local_server_t *s, size_t bytes);

/* The socket path (borrowed). */
const char *local_server_path(const local_server_t *s);

#endif
