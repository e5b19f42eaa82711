/*
 * The gRPC layer: protobuf-c messages over gRPC's C core (1.51), server and client.
 *
 * Server. A daemon lists its methods in one static table of rpc_method_t rows (service descriptor +
 * method name + handler + policy flags). rpc_server_create() resolves every row against its
 * protobuf-c service descriptor (path "/<package>.<Service>/<Method>", request and reply
 * descriptors) and fails on a row that does not match, so tables cannot drift from the protos.
 * One thread per server drives the completion queue; for each call it receives the request, checks
 * the `authorization` metadata against the cluster token (when one is set), unpacks the request
 * (malformed -> INVALID_ARGUMENT, never a crash), and hands the call to the handler: on the given
 * libuv loop (through a loopq) or, with no loop, directly on the completion-queue thread.
 *
 * A server call is a state machine: PENDING (waiting for a request) -> PROCESSING (handler owns it)
 * -> SENDING_REPLY -> FINISHED. The handler (or anyone it hands the call to) must finish it exactly
 * once with rpc_reply() or rpc_reply_error(); both are thread-safe.
 *
 * Client. An rpc_client_t owns one completion queue and one thread (started by its first async
 * call). Channels are made per target and reused. rpc_call() starts an async unary call whose
 * callback runs exactly once, on the client's loop (when created with one) or on the client's
 * thread; rpc_call_sync() blocks the calling thread and may be used from any thread, including a
 * loop thread. gRPC 1.51 slows down per call with thousands of calls in flight on one channel:
 * keep a few hundred at most (measured: ~29k calls/s at 256, ~19k at 1,000, ~15k at 5,000).
 *
 * Security: with rpc_tls_t settings, servers and clients speak mutual TLS (rpc_tls.c); without,
 * plaintext. Either way the token is what authorizes a call.
 *
 * Every call carries a deadline. Clients send and take messages of any size; a server takes
 * requests up to opts->max_message (RPC_SERVER_MAX_MESSAGE, 256 MiB: objects travel in 5 MiB
 * chunks, task arguments inline up to 100 KiB, working-dir packages up to 100 MiB), refusing a
 * longer one from its length prefix alone. Errors come back as RAYC_E* codes mapped from gRPC status
 * codes by common/status.c, with the peer's detail text.
 */
#ifndef RAYC_COMMON_RPC_H
#define RAYC_COMMON_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

typedef struct rpc_server rpc_server_t;
typedef struct rpc_call rpc_call_t;
typedef struct rpc_client rpc_client_t;
typedef struct rpc_channel rpc_channel_t;

/* A handler owns call until it replies. req is owned by the call and stays valid until the reply. */
typedef void (*rpc_handler_fn)(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

enum rpc_method_flags {
  RPC_NO_AUTH = 1u << 0, /* callable without the cluster token (none today; kept for health checks) */
  /* Not registered with gRPC: served from the server's unregistered requests, found by path. gRPC
   * keeps a table of 2 slots (~80 B each) per registered method in every connection; a server of
   * many idle peers (the GCS) registers only the methods called often. A cold call costs one more
   * batch (the server reads its message itself) and a lookup; token, validation, handler and
   * metrics are the same as for a registered method. */
  RPC_COLD = 1u << 1,
};

/* A row's own request check, after the generic ones (common/rpc_valid.h): 0, or a negative RAYC_E*
 * code with a message in why. Runs on the server's completion-queue thread: a pure function. */
typedef int (*rpc_check_fn)(const ProtobufCMessage *req, char *why, size_t len);

/* A row's test of whether a valid request may wait for the loop's next wake-up or
 * rpc_server_flush() instead of waking the loop now (1: it may). Runs on the server's
 * completion-queue thread after validation: a pure function. */
typedef int (*rpc_lazy_fn)(const ProtobufCMessage *req);

typedef struct rpc_method {
  const ProtobufCServiceDescriptor *service;
  const char *method; /* as in the .proto: "RegisterNode" */
  rpc_handler_fn handler;
  unsigned flags;
  /* Request validation before the handler runs (rpc_valid.h): the space-separated fields the
   * handler needs ("job job.driver_pid"; NULL: none), and an optional extra check. A request
   * that fails gets INVALID_ARGUMENT with the reason, is counted and logged (rate-limited). */
  const char *required;
  rpc_check_fn check;
  /* Optional, servers with a loop only: requests it passes are handed to the loop without a
   * wake-up (loopq_post_lazy), in order with the others; the daemon calls rpc_server_flush() from a
   * periodic timer. For frequent calls that need no prompt answer (the GCS's idle heartbeats):
   * each hand-off that wakes an idle loop is a context switch. rpc_call_arrival_ms() tells the
   * handler when the call came. */
  rpc_lazy_fn lazy;
} rpc_method_t;

/* TLS for a server or a client: PEM files, read when the server or client is created. All three
 * set: mutual TLS (the server requires a client certificate signed by ca_file and the client checks
 * that the server's certificate, signed by ca_file, names the host it dialled: give certificates
 * an IP subjectAltName for each node address). All three NULL or "": plaintext, as before. Any
 * other combination is an error. See deploy/make-test-ca.sh. */
typedef struct rpc_tls {
  const char *cert_file; /* this process's certificate chain */
  const char *key_file;  /* its private key */
  const char *ca_file;   /* the CA that signed every certificate of the cluster */
} rpc_tls_t;

typedef struct rpc_server_opts {
  uv_loop_t *loop;      /* handlers run on this loop; NULL: on the server's completion-queue thread */
  const char *token;    /* required `authorization` metadata value; NULL or "": no check */
  void *ctx;            /* first argument of every handler */
  const rpc_tls_t *tls; /* NULL: plaintext */
  size_t max_message;   /* longest request taken, bytes; 0: RPC_SERVER_MAX_MESSAGE */
  /* 1: no HTTP/2 BDP probes. gRPC answers data with a PING whose ACK wakes both ends again; a
   * server of many peers sending small periodic calls (the GCS and its heartbeats) turns that off
   * and announces a fixed 1 MiB flow-control window instead of growing it by probing. */
  int no_bdp_probe;
  /* 1: each connection reads into buffers sized by its recent reads, from 512 B, instead of the
   * 8 KiB slice gRPC 1.51 holds per connection while it waits for data: a server of many mostly
   * idle peers (the GCS) pays it once per peer. Takes effect only after rpc_small_reads_setup(). */
  int small_reads;
  /* 1: no HPACK dynamic table for the headers peers send (the server announces a table size of
   * 0): each call's headers travel as literals (~200 B more per call), and no connection keeps a
   * table of its peer's headers (~0.8 KiB each). For a server of many idle peers (the GCS). */
  int no_header_table;
  /* 1: the server's thread does not poll gRPC's sockets; another thread of the process must (an
   * rpc client's, rpc_client_poll()). A process with a server and a client otherwise has two
   * pollers, and gRPC's epoll engine hands the poller role from one to the other on every event
   * (a wake-up each time). Drivers: their client's thread polls for both (worker/cw_exec.c). */
  int non_polling;
} rpc_server_opts_t;

/* Default bound on a request a server reads (working-dir packages go up to 100 MiB in one KV put;
 * objects travel in 5 MiB chunks). */
#define RPC_SERVER_MAX_MESSAGE ((size_t)256 << 20)

/* Lets small_reads servers size their reads: turns off gRPC 1.51's tcp_read_chunks experiment (on
 * by default: every read goes into an 8 KiB slice, whatever the channel arguments say) for this
 * process, by running its first grpc_init() with "-tcp_read_chunks" added to GRPC_EXPERIMENTS
 * (then put back as it was), unless the variable already names the experiment. gRPC then uses
 * its older read path (its default before 1.51), which sizes each read from the connection's
 * recent reads between GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE and ..._MAX_...: for every connection of
 * the process, clients included (theirs start at gRPC's 8 KiB and adapt). Call before the
 * process's first use of gRPC, while it runs one thread (it sets the environment); only the
 * process's first call does anything. 0, or RAYC_EALREADY_EXISTS when gRPC already runs (its
 * read path stays as it is). */
int rpc_small_reads_setup(void);

/* Returns a new server, or NULL (logged) when a table row does not match its service descriptor
 * (unknown method name, missing handler, or a method listed twice) or the TLS files are unusable.
 * With a token, every call, including one for a path the table lacks, must carry it: a call
 * without it gets UNAUTHENTICATED (counted, and logged with the peer's address) and reaches no
 * handler. Tokens are compared in constant time. The table is borrowed and must
 * outlive the server. With opts->loop, call on that loop's thread. Destroy with rpc_server_destroy(). */
rpc_server_t *rpc_server_create(const rpc_method_t *methods, size_t n, const rpc_server_opts_t *opts);

/* Binds addr ("127.0.0.1:0", "10.0.0.5:6380", "unix:/path"). Returns the bound TCP port (> 0),
 * 0 for a Unix socket, or a negative RAYC_E* code. A wildcard host ("0.0.0.0", "[::]", "" or
 * "*") is refused with RAYC_EINVALID_ARGUMENT: daemons listen on their node's address only, never
 * by accident on every interface. Call before rpc_server_start(). */
int rpc_server_listen(rpc_server_t *s, const char *addr);

/* Binds host ("10.0.0.5", "::1") on a free port of [min_port, max_port], trying them in turn from
 * a random one (so processes starting together rarely collide); min_port <= 0: an ephemeral port.
 * Returns the bound port, RAYC_EUNAVAILABLE when every port of the range is taken, or another
 * negative RAYC_E* code (a wildcard host, a bad range). How workers and drivers keep to
 * --min-worker-port..--max-worker-port. */
int rpc_server_listen_range(rpc_server_t *s, const char *host, int min_port, int max_port);

/* Starts serving; 0 or a negative RAYC_E* code. */
int rpc_server_start(rpc_server_t *s);

/* Stops accepting, cancels calls in flight and joins the server's thread. Accepts NULL.
 *
 * Calls are never lost or double-freed across destroy:
 *  - calls not yet handed to a handler (including those queued to the loop) are dropped: their
 *    handlers never run, their clients see CANCELLED;
 *  - a call a handler holds when destroy starts becomes orphaned: its client sees CANCELLED, and
 *    the handler must still finish it exactly once with rpc_reply()/rpc_reply_error(), before or
 *    after destroy returns (from any thread). Such a late reply sends nothing and frees the call
 *    and its request, which stays valid until then. A call never finished leaks.
 *
 * With a loop: call from the loop thread (a handler may call it). Without a loop: never from a
 * handler running on the server's own thread (that aborts: it would join itself). */
void rpc_server_destroy(rpc_server_t *s);

/* Loop thread, not from inside a handler. Runs the handlers of the calls handed over lazily (and
 * of any other call queued for the loop) now. Accepts NULL. */
void rpc_server_flush(rpc_server_t *s);

/* When the call's request arrived (now_ms()'s clock), as the server's thread saw it. */
int64_t rpc_call_arrival_ms(const rpc_call_t *call);

/* A server without a loop calls fn(ctx) on its thread for every call it accepts, just before the
 * handler (the core worker wakes its background thread so). Any thread; NULL removes it. */
void rpc_server_on_call(rpc_server_t *s, void (*fn)(void *ctx));

/* Finishes call with resp (borrowed: packed before return; NULL sends an empty message, every
 * field default). Thread-safe. After the call, neither call nor its request may be used. */
void rpc_reply(rpc_call_t *call, const ProtobufCMessage *resp);

/* Finishes call with an error: err is a negative RAYC_E* code, the text its detail. Thread-safe. */
void rpc_reply_error(rpc_call_t *call, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The peer of call ("ipv4:127.0.0.1:5555"), for log lines; valid until the reply. */
const char *rpc_call_peer(const rpc_call_t *call);

/* Number of calls rejected for a missing or wrong token since the server started. */
unsigned long rpc_server_auth_failures(const rpc_server_t *s);
/* Calls refused as malformed or invalid (they reached no handler) since the server started. */
unsigned long rpc_server_invalid_requests(const rpc_server_t *s);

/* Checks that table rows cover every method of svc exactly once; returns the number of methods
 * missing or duplicated plus the rows of svc naming no method of it (0 when the table is
 * complete). Rows of other services are ignored. Used by tests. */
int rpc_methods_check(const rpc_method_t *methods, size_t n, const ProtobufCServiceDescriptor *svc);

/* ---- client ---- */

typedef struct rpc_client_opts {
  uv_loop_t *loop;      /* callbacks run on this loop; NULL: on the client's own thread */
  const char *token;    /* sent as `authorization` metadata; NULL or "": none */
  const rpc_tls_t *tls; /* NULL: plaintext */
  int no_bdp_probe;     /* 1: no HTTP/2 BDP probes (see rpc_server_opts_t; the raylet's client) */
  int idle_close_ms;    /* > 0: a channel with no call for this long closes its connection (gRPC's client
                         * idle timeout); the next call opens a new one. 0: gRPC's default (30 min) */
  int poll_when_busy;   /* 1: the client thread waits in gRPC only while async calls are in flight, and
                         * otherwise sleeps on a condition variable (for a process whose server thread
                         * polls: see rpc_client.c "Polling only while busy"). 0: it always waits in gRPC */
} rpc_client_opts_t;

/* status: 0 or a negative RAYC_E* code; detail: the peer's or the transport's text (borrowed for
 * the callback). resp: NULL unless status == 0; the callback takes ownership and frees it with
 * protobuf_c_message_free_unpacked(resp, NULL). */
typedef void (*rpc_done_fn)(void *arg, int status, const char *detail, ProtobufCMessage *resp);

/* Returns a new client, or NULL (logged) when the token is not a legal header value (printable
 * ASCII) or the TLS files are unusable. With opts->loop, call on that loop's thread. The client's thread starts with its first
 * async call (a client used only for sync calls has none). Destroy with rpc_client_destroy(). */
rpc_client_t *rpc_client_create(const rpc_client_opts_t *opts);

/* Starts the client's thread now rather than with the first async call, so that it polls gRPC's
 * sockets for a server of this process created with non_polling (0 or a RAYC_E* code). It also
 * starts a helper thread that polls as well while 16 or more async calls are in flight (reading
 * replies in parallel with the client thread's callbacks, which still all run on the client
 * thread) and sleeps otherwise, so a lone call has one poller. */
int rpc_client_poll(rpc_client_t *c);

/* Lending the client's queue to a thread about to block for a reply (a driver's rayc_get). While
 * it is lent, the borrower polls gRPC's sockets itself and runs the callbacks of the calls that
 * complete, one at a time on its own thread as the client thread would, and the client thread
 * sleeps: a reply wakes the thread waiting for it and no other (one wake-up where a hand-off took
 * two). A borrower that lets go leaves the queue lent but idle for ~1 ms: the next lending (a
 * loop of synchronous gets) takes it with no hand-off; after that the client thread polls again.
 *
 * rpc_client_lend_begin returns 1 when the queue is now lent to the calling thread; 0 when it
 * cannot be (no async call yet started the client thread, the client closes, it is lent to
 * another thread, or this is the client thread). Call it holding no lock a callback takes: it
 * may wait for the client thread to finish the callback it runs. The borrower then calls
 * rpc_client_lend_poll, which waits for one completion until deadline (CLOCK_REALTIME; NULL:
 * none) and runs its callback: 0 after a completion or an rpc_client_kick, RAYC_ETIMEOUT,
 * RAYC_ECANCELLED when the client closes; and rpc_client_lend_end when done (always, after a
 * begin that returned 1). rpc_client_kick (any thread) makes the borrower's poll return, and a
 * poll not yet begun return at once: call it when something the borrower waits for happens on
 * another thread. */
int rpc_client_lend_begin(rpc_client_t *c);
int rpc_client_lend_poll(rpc_client_t *c, const struct timespec *deadline);
void rpc_client_lend_end(rpc_client_t *c);
void rpc_client_kick(rpc_client_t *c);

/* Cancels calls in flight, destroys its channels and joins its thread. Accepts NULL.
 *
 * Every async call started gets its callback exactly once before this returns. Callbacks already
 * delivered or queued when destroy starts run as usual (without a loop they may still be running
 * on the client thread until it is joined; with a loop, queued ones run inside this function).
 * The rest run on the calling thread inside this function, after the client thread is joined:
 * with RAYC_ECANCELLED (detail "rpc client destroyed"), or with their real result when the reply
 * had already arrived. A callback running inside destroy may not start calls on this client
 * (rpc_call returns RAYC_ECANCELLED). No rpc_call_sync() may be in progress.
 *
 * With a loop: call from the loop thread (a callback may call it). Without a loop: never from a
 * callback running on the client's own thread (that aborts: it would join itself). */
void rpc_client_destroy(rpc_client_t *c);

/* Returns a channel to target ("host:port" or "unix:/path"), connecting lazily; the client keeps
 * ownership (channels are destroyed with the client). The same target returns the same channel. */
rpc_channel_t *rpc_channel_get(rpc_client_t *c, const char *target);

/* As rpc_channel_get, but a new channel to a numeric "ip:port" target is a direct one
 * (rpc_direct.c): its one TCP connection is started now, with none of gRPC's resolver, load
 * balancer and subchannel (whose two channel stacks cost ~0.8 M instructions per channel), and it
 * is never remade: once that connection ends, every call on it fails with RAYC_EUNAVAILABLE. For a
 * peer that is not there again once it has gone away: an actor's worker. The next
 * rpc_channel_get(_direct) of the target replaces a channel whose connection ended (a new peer may
 * listen on a reused port), and every 64th new direct channel sweeps all ended ones: either frees
 * the channel once no call is in flight on it and no rpc_channel_ref holds it, so hold no
 * rpc_channel_t pointer to a direct channel past the next get on c without a ref; or get it by
 * target for each call. Under TLS, or for another kind of target, the channel is an ordinary one.
 * If c has a live channel to target already, that one is returned, whichever kind. */
rpc_channel_t *rpc_channel_get_direct(rpc_client_t *c, const char *target);

/* A reference to ch (NULL: nothing) that keeps the rpc_channel_t alive after c replaced or forgot
 * it (calls on it then fail, RAYC_EUNAVAILABLE), for a holder that keeps the pointer across gets:
 * the caller's record of an actor. rpc_channel_unref drops it, and frees a channel c no longer
 * lists once no call and no ref holds it. rpc_client_destroy frees every channel, referenced or
 * not: never unref after it. Thread-safe. */
void rpc_channel_ref(rpc_channel_t *ch);
void rpc_channel_unref(rpc_channel_t *ch);

/* Destroys c's channel to target, if it has one, for a peer that is gone for good (an actor's
 * worker that exited), so a client that talks to many short-lived peers does not keep a channel
 * to each forever. Calls in flight on it finish as they would; a later rpc_channel_get(target)
 * makes a new channel. The caller must hold no rpc_channel_t pointer to target past this. */
void rpc_channel_forget(rpc_client_t *c, const char *target);

/* Starts a unary call of svc.method with req (borrowed: packed before return). done runs exactly
 * once if this returns 0; on a negative return it never runs: RAYC_EINVALID_ARGUMENT for a method
 * svc does not have or a req of the wrong type (logged), RAYC_ECANCELLED while the client is being
 * destroyed. timeout_ms <= 0 means no deadline. Thread-safe. */
int rpc_call(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req,
             int timeout_ms, rpc_done_fn done, void *arg);

/* Blocking call. On 0, *resp is new (free with protobuf_c_message_free_unpacked) and *detail is
 * NULL. On error, when detail is not NULL, *detail is a new string (free()) saying why.
 * Thread-safe, any number of threads at once; from a loop thread it blocks that loop. */
int rpc_call_sync(rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
                  const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail);

/* ---- TLS settings ---- */

/* Fills tls from RAYC_TLS_CERT, RAYC_TLS_KEY and RAYC_TLS_CA (pointers into the environment, valid
 * until it changes): how workers and drivers learn the settings daemons take as --tls-*. */
void rpc_tls_from_env(rpc_tls_t *tls);

/* 1 when tls asks for TLS (any file set), 0 for plaintext (NULL or every field unset). */
int rpc_tls_enabled(const rpc_tls_t *tls);

#endif
