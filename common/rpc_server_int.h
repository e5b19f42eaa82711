/*
 * The rpc server's records (rpc_server.c runs them; rpc_server_setup.c creates the gRPC server and
 * listens). Private to those two files.
 */
#ifndef RAYC_COMMON_RPC_SERVER_INT_H
#define RAYC_COMMON_RPC_SERVER_INT_H

#include "common/loopq.h"
#include "common/rpc.h"
#include "common/rpc_int.h"
#include "common/rpc_metrics.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define RPC_ROW_SLOTS        16  /* requests kept outstanding per method; each arrival re-arms one */
#define RPC_UNKNOWN_SLOTS    2   /* unregistered requests of a server with no cold rows (all UNIMPLEMENTED) */
#define RPC_WARN_PER_SEC     10  /* rejected-call warnings logged per second; the rest are counted */
#define RPC_SMALL_READ_BYTES 512 /* first read buffer of a small_reads server's connection */
#define RPC_CLOSE_SEND_GRACE_MS 1000 /* a closing server waits this long for replies already sent */
#define RPC_READ_EXPERIMENT  "tcp_read_chunks" /* gRPC 1.51's fixed 8 KiB reads */

enum rpc_call_state {
  RPC_CALL_PENDING,    /* request outstanding; for a hot row gRPC reads the message first */
  RPC_CALL_READING,    /* a cold row's call: its message is being read */
  RPC_CALL_QUEUED,     /* posted to the loop, handler not yet run */
  RPC_CALL_PROCESSING, /* the handler owns it */
  RPC_CALL_SENDING,    /* the final batch is outstanding */
  RPC_CALL_ORPHANED,   /* its server is gone; the late reply (or dispatch) frees it */
};

struct rpc_row { /* a table row resolved against its service descriptor */
  const rpc_method_t *m;
  const ProtobufCMethodDescriptor *md;
  char *path;                             /* "/rayc.NodeInfoGcsService/RegisterNode" */
  void *handle;                           /* grpc_server_register_method(); NULL: a cold row */
  metrics_series_t *m_seconds, *m_failed; /* rayc_grpc_server_* series of this method */
};

struct rpc_call {
  _Atomic int state;
  rpc_server_t *s;           /* NULL once orphaned */
  const struct rpc_row *row; /* NULL: an unregistered request (a cold row's call or an unknown path) */
  grpc_call *call;
  gpr_timespec deadline;
  grpc_call_details details; /* unregistered requests only */
  grpc_metadata_array md;
  grpc_byte_buffer *recv, *send;
  grpc_slice status_text; /* kept until the final batch completes */
  int cancelled;
  int64_t t0_us; /* when the request was accepted (table methods), for the latency histogram */
  ProtobufCMessage *req;
  pthread_mutex_t peer_mu; /* peer is cached lazily, possibly while destroy orphans the call */
  char *peer;
  struct rpc_call *prev, *next; /* s->all: every call record the server owns */
  struct rpc_call *free_next;
};

struct rpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  grpc_completion_queue *listen_cq; /* non_polling: registered for the listeners' sake, never polled */
  pthread_t thread;
  int started, grpc;
  loopq_t *q;
  void *ctx;
  char *token;
  size_t token_len;
  grpc_server_credentials *creds; /* TLS; NULL: plaintext */
  struct rpc_row *rows;
  size_t nrows;
  size_t unregistered_slots; /* unregistered requests kept outstanding */
  _Atomic int closing;
  atomic_ulong auth_failures;
  atomic_ulong invalid; /* requests refused as malformed or invalid */
  /* CQ thread only (and the creating thread before start / after join). */
  struct rpc_call all;
  struct rpc_call *free;
  size_t live; /* calls armed and not yet recycled or orphaned */
  int swept, shutdown_done, woken, cq_shut;
  int cancelled;       /* grpc_server_cancel_all_calls() done (closing) */
  int64_t close_t0_ms; /* when closing began (CLOCK_MONOTONIC ms) */
  int shutdown_tag; /* its address is the shutdown tag */
  /* The wake-up: one call on a lame channel, failed at once, whose completion on the CQ makes
   * the server thread look at `closing` (it blocks on the CQ with no deadline). */
  grpc_channel *wake_ch;
  grpc_call *wake_call;
  grpc_metadata_array wake_md;
  grpc_status_code wake_status;
  grpc_slice wake_text;
  int wake_tag;               /* its address is the wake-up's tag */
  void (*on_call)(void *ctx); /* rpc_server_on_call (atomic) */
  int64_t warn_sec;           /* srv_warn() rate limit */
  unsigned warn_n;
  unsigned long warn_dropped;
};

/* rpc_server_setup.c: creates s's gRPC server and completion queue(s) and registers its hot rows
 * (gRPC reads their requests before handing the calls over); cold rows and unknown paths come
 * through the unregistered requests. */
void rpc_srv_create_grpc(rpc_server_t *s, const rpc_server_opts_t *opts);

#endif
