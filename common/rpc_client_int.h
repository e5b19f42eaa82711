/*
 * The rpc client's records, shared by its two files: rpc_client.c (the client, its thread, calls,
 * lending) and rpc_channel.c (the channel table: ordinary and direct channels, refs, forgetting).
 * Not for use outside common/rpc_*.c.
 */
#ifndef RAYC_COMMON_RPC_CLIENT_INT_H
#define RAYC_COMMON_RPC_CLIENT_INT_H

#include "common/loopq.h"
#include "common/rpc.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* What one client batch fills in (the 6 ops of a unary call). */
struct rpc_cop {
  grpc_byte_buffer *send, *recv;
  grpc_metadata_array init_md, trail_md;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
};

/* An async call: tracked from start until its completion reaches the client thread. */
struct rpc_ccall {
  grpc_call *call;
  const ProtobufCMessageDescriptor *out;
  rpc_done_fn done;
  void *arg;
  rpc_client_t *c;
  struct rpc_cop op;
  int status;
  char *detail;
  ProtobufCMessage *resp;
  struct rpc_ccall *prev, *next; /* c->inflight, c->closed, or c->free */
  rpc_channel_t *ch;             /* the channel it runs on (its ncalls counts it) */
};

struct rpc_mh { /* a method registered on a channel */
  const ProtobufCMethodDescriptor *md;
  void *handle;
  char *path; /* must outlive the channel (grpc_channel_register_call) */
};

struct rpc_channel {
  rpc_channel_t *next;
  rpc_client_t *c;
  grpc_channel *ch;
  char *target;
  struct rpc_mh *mh; /* c->mu */
  size_t nmh, capmh;
  int ncalls;    /* c->mu: calls started on it and not finished */
  int forgotten; /* c->mu: unlinked (rpc_channel_forget, an ended direct one); on c->orphans */
  int refs;      /* c->mu: rpc_channel_ref holders; a forgotten channel is freed when both are 0 */
  int watch_fd;  /* a direct channel's connection (our own descriptor of it), or -1 */
};

struct rpc_pluck { /* an idle completion queue for sync calls */
  grpc_completion_queue *cq;
  struct rpc_pluck *next;
};

struct rpc_client {
  grpc_completion_queue *cq;
  pthread_t thread;
  int thread_started; /* mu */
  loopq_t *q;
  char *token;
  grpc_metadata auth;
  grpc_channel_credentials *creds; /* TLS, or insecure */
  int no_bdp;                      /* rpc_client_opts_t.no_bdp_probe */
  int tls;                         /* creds are TLS: no direct channels (rpc_direct.c) */
  int direct_made;                 /* mu: direct channels made since the last sweep of them all */
  int idle_close_ms;               /* rpc_client_opts_t.idle_close_ms */
  pthread_mutex_t mu;              /* channels, method handles, in-flight list, free lists */
  rpc_channel_t *channels;
  rpc_channel_t *orphans;    /* mu: forgotten channels still held by calls or refs */
  struct rpc_ccall inflight; /* sentinel */
  struct rpc_ccall *free;
  size_t nfree;
  struct rpc_pluck *plucks;
  _Atomic int closing;
  struct rpc_ccall *closed, *closed_tail; /* completed during destroy, delivered by destroy */
  /* rpc_client_poll: a second poller for busy times (clt_helper_main) */
  size_t ninflight;   /* mu: async calls tracked */
  int helper_started; /* mu */
  pthread_t helper;
  pthread_cond_t helper_cv;       /* mu: ninflight reached RPC_HELPER_BUSY, or closing */
  grpc_completion_queue *poll_cq; /* never gets an event: the helper waits on it to poll */
  /* rpc_client_lend_*: the queue lent to a thread blocked on a reply ("Lending" below) */
  _Atomic int lend;       /* mu to change (clt_main peeks without it): enum clt_lend */
  pthread_t borrower;     /* mu: the thread it is lent to (LEND_WANTED, LEND_ACTIVE) */
  _Atomic int kicked;     /* rpc_client_kick since the borrower last looked */
  int64_t idle_since_us;  /* mu: LEND_IDLE since */
  unsigned long lend_seq; /* mu: lendings so far (the parked client thread sees them churn) */
  int park_untimed;       /* mu: the parked client thread waits for lend_cv with no deadline */
  pthread_cond_t lend_cv; /* mu: lend changed */
  grpc_channel *kick_ch;  /* a lame channel, and on it one call bound to cq: its empty batches */
  grpc_call *kick_call;   /* complete at once with kick_tag, which makes cq_next return */
  int kick_tag;
  _Atomic int poll_when_busy; /* rpc_client_opts_t.poll_when_busy (mu to clear: rpc_client_poll) */
  int idle_waiting;           /* mu: the client thread waits on idle_cv */
  pthread_cond_t idle_cv;     /* mu: the first async call is in flight, or closing */
};

enum clt_lend {
  LEND_NONE,   /* the client thread polls the queue */
  LEND_WANTED, /* a borrower waits for the client thread to let go of it */
  LEND_ACTIVE, /* the borrower polls it; the client thread sleeps */
  LEND_IDLE,   /* the borrower let go; the client thread sleeps until RPC_LEND_IDLE_US pass or another comes */
};

/* Frees a channel (NULL: nothing). */
void rpc_clt_channel_free(rpc_channel_t *ch);

/* ch, taken off c->orphans when nothing holds it any more (c->mu held), else NULL. */
rpc_channel_t *rpc_clt_orphan_take_locked(rpc_channel_t *ch);

#endif
