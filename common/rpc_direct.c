/*
 * Direct channels (rpc.h, rpc_channel_get_direct): one TCP connection made at once and handed to
 * gRPC as a connected descriptor (grpc_channel_create_from_fd), for a peer that is reached on one
 * connection and never again once it is gone: an actor's worker.
 *
 * Why: a channel made by grpc_channel_create builds two channel stacks (the client channel's, with
 * its resolver and load balancer, and the subchannel's once it connects), and every filter of each
 * converts the channel's arguments into gRPC's tree of them again. The GCS made one such channel
 * per created actor (to push the constructor, hold WaitActorExit, send KillActorWorker), and the
 * creator one per actor handle: callgrind counted about half of the GCS's instructions per actor
 * in them (docs/PERFORMANCE.md, "Actor creation: GCS, raylet, driver"). A direct channel has one
 * stack of a few filters and no resolver, balancer or subchannel.
 *
 * What it gives up: reconnection. Once its connection breaks, every call on it fails with
 * UNAVAILABLE, which is what a call to a worker that died gets on an ordinary channel as well (they
 * do not wait for the peer to come back). gRPC takes only insecure credentials for it, so under
 * TLS the caller gets an ordinary channel.
 */
#include "common/rpc_int.h"
#include "common/util.h"

#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "1.2.3.4:5" or "[::1]:5" into addr; 0, or -1 for anything else (a host name, a URI). */
static int direct_addr(const char *target, struct sockaddr_storage *addr, socklen_t *len)
{
  char host[64];
  int port;
  if (hostport_split(target, host, sizeof(host), &port) != 0)
    return -1;
  int v6 = strchr(host, ':') != NULL;
  memset(addr, 0, sizeof(*addr));
  if (v6) {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*a6);
    return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : -1;
  }
  struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
  a4->sin_family = AF_INET;
  a4->sin_port = htons((uint16_t)port);
  *len = sizeof(*a4);
  return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

/* args without those of the resolver and the subchannel (the proxy, reconnection backoff), which a
 * direct channel does not have: every filter of the channel's stack converts every argument into
 * gRPC's own tree of them (~4 k instructions an argument and filter, callgrind). own holds them. */
static const grpc_channel_args *direct_args(const grpc_channel_args *args, grpc_channel_args *own)
{
  static const char *const unused[] = {GRPC_ARG_ENABLE_HTTP_PROXY, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                                       GRPC_ARG_MAX_RECONNECT_BACKOFF_MS};
  own->num_args = 0;
  for (size_t i = 0; i < args->num_args && own->num_args < RPC_ARGS_MAX; i++) {
    size_t k = 0;
    while (k < sizeof(unused) / sizeof(unused[0]) && strcmp(args->args[i].key, unused[k]) != 0)
      k++;
    if (k == sizeof(unused) / sizeof(unused[0]))
      own->args[own->num_args++] = args->args[i];
  }
  return own;
}

grpc_channel *rpc_direct_create(const char *target, grpc_channel_credentials *insecure, const grpc_channel_args *args,
                                int *watch_fd)
{
  struct sockaddr_storage addr;
  socklen_t len;
  if (direct_addr(target, &addr, &len) != 0)
    return NULL;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return NULL;
  int one = 1; /* gRPC's own connector sets this; a descriptor handed over must have it already */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  /* Not waited for: until the connection is up, gRPC's first write finds the socket not writable
   * and waits for it; a refused connection fails the calls made on the channel. */
  if (connect(fd, (struct sockaddr *)&addr, len) != 0 && errno != EINPROGRESS) {
    close(fd);
    return NULL;
  }
  /* Our own descriptor of the connection, to see it end (rpc_direct_ended): gRPC closes its own
   * when the transport goes, and the number may then name another file. */
  int watch = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  grpc_arg kept[RPC_ARGS_MAX];
  grpc_channel_args own = {0, kept};
  if (watch < 0) {
    close(fd);
    return NULL;
  }
  grpc_channel *ch = grpc_channel_create_from_fd(target, fd, insecure, direct_args(args, &own)); /* owns fd */
  if (!ch) {
    close(watch);
    return NULL;
  }
  *watch_fd = watch;
  return ch;
}

int rpc_direct_ended(int watch_fd)
{
  struct pollfd p = {.fd = watch_fd, .events = POLLRDHUP};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}
