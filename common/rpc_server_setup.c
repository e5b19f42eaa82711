/*
 * The rpc server's setup (the contract is in rpc.h, the server's workings in rpc_server.c): the
 * gRPC server and its completion queues with the channel arguments a server asked for, gRPC's read
 * path for servers of many idle peers (rpc_small_reads_setup), and listening: one address, or a
 * free port of a range; never every interface.
 */
#include "common/rpc_server_int.h"
#include "common/rpc_tls.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* 1 when gRPC polls with its epoll1 engine: Linux's default, unless $GRPC_POLL_STRATEGY (the
 * only way to choose another in gRPC 1.51) names another engine first. */
static int srv_epoll1(void)
{
  const char *v = getenv("GRPC_POLL_STRATEGY");
  return !v || !*v || strcmp(v, "all") == 0 || strncmp(v, "epoll1", 6) == 0;
}

/* The server's CQ; with non_polling, one that never polls, plus (s->listen_cq) the polling queue
 * gRPC's listeners need (an accepted connection is assigned one of the server's polling queues),
 * which nobody waits on: gRPC's epoll1 engine keeps every socket in one process-wide epoll set, so
 * whichever thread polls (the client's) serves the server's sockets too. Other engines poll per
 * queue: with them the server polls as usual. */
static void srv_create_cq(rpc_server_t *s, int non_polling)
{
  non_polling = non_polling && srv_epoll1();
  grpc_completion_queue_attributes attr = {.version = 1,
                                           .cq_completion_type = GRPC_CQ_NEXT,
                                           .cq_polling_type = non_polling ? GRPC_CQ_NON_POLLING
                                                                          : GRPC_CQ_DEFAULT_POLLING};
  s->cq = grpc_completion_queue_create(grpc_completion_queue_factory_lookup(&attr), &attr, NULL);
  if (non_polling)
    s->listen_cq = grpc_completion_queue_create_for_next(NULL);
}

/* Creates the gRPC server and registers every hot row, so gRPC reads each of their requests before
 * handing the call over (one batch per call saved); cold rows and unknown paths come through the
 * unregistered requests (as many outstanding as a row's when there are cold rows). */
void rpc_srv_create_grpc(rpc_server_t *s, const rpc_server_opts_t *opts)
{
  grpc_init();
  s->grpc = 1;
  srv_create_cq(s, opts && opts->non_polling);
  grpc_arg a[RPC_ARGS_MAX];
  size_t max_message = opts && opts->max_message ? opts->max_message : RPC_SERVER_MAX_MESSAGE;
  int small_reads = opts && opts->small_reads, no_header_table = opts && opts->no_header_table;
  grpc_channel_args args = {rpc_args_fill(a, 1, max_message, opts && opts->no_bdp_probe), a};
  if (small_reads) {
    /* Reads sized by the connection's recent reads, from 512 B: an idle peer holds ~0.5 KiB. */
    a[args.num_args].type = a[args.num_args + 1].type = GRPC_ARG_INTEGER;
    a[args.num_args].key = (char *)GRPC_ARG_TCP_READ_CHUNK_SIZE;
    a[args.num_args++].value.integer = RPC_SMALL_READ_BYTES;
    a[args.num_args].key = (char *)GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE;
    a[args.num_args++].value.integer = RPC_SMALL_READ_BYTES / 2;
  }
  if (no_header_table) {
    a[args.num_args].type = GRPC_ARG_INTEGER;
    a[args.num_args].key = (char *)GRPC_ARG_HTTP2_HPACK_TABLE_SIZE_DECODER;
    a[args.num_args++].value.integer = 0;
  }
  s->server = grpc_server_create(&args, NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  if (s->listen_cq)
    grpc_server_register_completion_queue(s->server, s->listen_cq, NULL);
  s->unregistered_slots = RPC_UNKNOWN_SLOTS;
  for (size_t i = 0; i < s->nrows; i++) {
    if (s->rows[i].m->flags & RPC_COLD)
      s->unregistered_slots = RPC_ROW_SLOTS;
    else
      s->rows[i].handle = grpc_server_register_method(s->server, s->rows[i].path, NULL,
                                                      GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
  }
}

int rpc_small_reads_setup(void)
{
  /* Process-wide, as gRPC's experiments are: only the first call may touch the environment (a
   * later one, e.g. a test's second GCS, could race with threads of a running gRPC). */
  static atomic_int small_reads_done;
  if (atomic_exchange(&small_reads_done, 1))
    return grpc_is_initialized() ? RAYC_EALREADY_EXISTS : 0;
  const char *old = getenv("GRPC_EXPERIMENTS");
  if (old && strstr(old, RPC_READ_EXPERIMENT))
    return 0; /* the operator chose */
  char *keep = old ? xstrdup(old) : NULL;
  char *v = old && *old ? xasprintf("%s,-" RPC_READ_EXPERIMENT, old) : xstrdup("-" RPC_READ_EXPERIMENT);
  setenv("GRPC_EXPERIMENTS", v, 1);
  /* gRPC reads the experiments once per process, in its first grpc_init() or
   * grpc_is_initialized() (both run its basic init): set before either. The environment is then
   * put back, so that the processes this one starts (job supervisors) do not inherit the change. */
  int rc = grpc_is_initialized() ? RAYC_EALREADY_EXISTS : 0;
  if (rc == 0) {
    grpc_init();
    grpc_shutdown();
  }
  if (keep)
    setenv("GRPC_EXPERIMENTS", keep, 1);
  else
    unsetenv("GRPC_EXPERIMENTS");
  free(keep);
  free(v);
  if (rc)
    log_debug("rpc: gRPC already runs: its read path stays as it is");
  return rc;
}

/* 1 when addr ("HOST:PORT", "[V6]:PORT") names every interface rather than one address. */
static int srv_addr_is_wildcard(const char *addr)
{
  if (strncmp(addr, "unix:", 5) == 0 || strncmp(addr, "unix-abstract:", 14) == 0)
    return 0;
  char host[256];
  const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
  const char *start = addr[0] == '[' ? addr + 1 : addr;
  size_t n = end ? (size_t)(end - start) : strlen(start);
  if (n >= sizeof(host))
    return 0;
  memcpy(host, start, n);
  host[n] = '\0';
  struct in_addr v4;
  struct in6_addr v6;
  if (n == 0 || strcmp(host, "*") == 0)
    return 1;
  if (inet_aton(host, &v4))
    return v4.s_addr == htonl(INADDR_ANY);
  return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&v6);
}

int rpc_server_listen(rpc_server_t *s, const char *addr)
{
  if (s->started)
    return RAYC_EINVALID_ARGUMENT;
  if (srv_addr_is_wildcard(addr)) {
    log_error("rpc: refusing to listen on %s, every interface: give the node's own address", addr);
    return RAYC_EINVALID_ARGUMENT;
  }
  grpc_server_credentials *creds = s->creds ? s->creds : grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, addr, creds);
  if (!s->creds)
    grpc_server_credentials_release(creds);
  if (port <= 0) {
    log_error("rpc: cannot listen on %s (address in use or invalid)", addr);
    return RAYC_EIO;
  }
  return strncmp(addr, "unix", 4) == 0 ? 0 : port;
}

/* 1 when nothing listens on host:port now (a plain bind succeeds), so that gRPC is asked only for
 * ports that are likely free: each refusal of its own logs a multi-line error. */
static int srv_port_free(const char *host, int port)
{
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
  socklen_t len;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    len = sizeof(*v6);
  } else {
    return 1; /* a name: let gRPC resolve it */
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int ok = fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

int rpc_server_listen_range(rpc_server_t *s, const char *host, int min_port, int max_port)
{
  int v6 = strchr(host, ':') != NULL;
  if (min_port <= 0) {
    char *addr = xasprintf("%s%s%s:0", v6 ? "[" : "", host, v6 ? "]" : "");
    int port = rpc_server_listen(s, addr);
    free(addr);
    return port;
  }
  if (max_port < min_port || max_port > 65535) {
    log_error("rpc: bad port range %d..%d", min_port, max_port);
    return RAYC_EINVALID_ARGUMENT;
  }
  unsigned seed = (unsigned)now_us() ^ (unsigned)getpid();
  unsigned span = (unsigned)(max_port - min_port + 1), first = (unsigned)rand_r(&seed) % span;
  for (unsigned i = 0; i < span; i++) {
    int port = min_port + (int)((first + i) % span);
    if (!srv_port_free(host, port))
      continue;
    char *addr = xasprintf("%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    int rc = rpc_server_listen(s, addr);
    free(addr);
    if (rc > 0 || rc == RAYC_EINVALID_ARGUMENT)
      return rc;
  }
  log_error("rpc: every port of %d..%d on %s is taken", min_port, max_port, host);
  return RAYC_EUNAVAILABLE;
}
