/*
 * The rpc client's channel table (rpc.h: rpc_channel_get, _get_direct, _ref, _unref, _forget).
 * A client keeps one channel per target, ordinary (gRPC's resolver, balancer and subchannel; it
 * reconnects) or direct (rpc_direct.c: one connection handed to gRPC; it never reconnects, so an
 * ended one is replaced by the next get of its target). A channel unlinked while calls or refs
 * hold it waits on c->orphans until the last of them lets go.
 */
#include "common/rpc_client_int.h"
#include "common/rpc_int.h"

#include <grpc/grpc.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void rpc_clt_channel_free(rpc_channel_t *ch)
{
  if (!ch)
    return;
  grpc_channel_destroy(ch->ch); /* calls in flight hold references of their own */
  if (ch->watch_fd >= 0)
    close(ch->watch_fd);
  for (size_t i = 0; i < ch->nmh; i++)
    free(ch->mh[i].path);
  free(ch->mh);
  free(ch->target);
  free(ch);
}

rpc_channel_t *rpc_clt_orphan_take_locked(rpc_channel_t *ch)
{
  if (!ch || !ch->forgotten || ch->ncalls > 0 || ch->refs > 0)
    return NULL;
  rpc_channel_t **pp = &ch->c->orphans;
  while (*pp != ch)
    pp = &(*pp)->next;
  *pp = ch->next;
  ch->next = NULL;
  return ch;
}

/* The gRPC target for "host:port": a numeric IPv4 or [IPv6] host gets the "ipv4:"/"ipv6:" scheme,
 * whose resolver hands the address over at once. Without a scheme gRPC takes the "dns" resolver,
 * which resolves even a numeric address on its executor thread (a thread hop, a getaddrinfo and
 * the resolver's work serializer per channel: ~5% of the GCS's CPU while it made a channel to
 * every new actor's worker). Anything else (a host name, a URI) is passed as it is. */
static void clt_target(const char *target, char *out, size_t cap)
{
  char host[64];
  const char *colon = strrchr(target, ':');
  size_t hl = colon ? (size_t)(colon - target) : 0;
  int v6 = hl > 2 && target[0] == '[' && target[hl - 1] == ']';
  unsigned char addr[16];
  snprintf(out, cap, "%s", target);
  if (!colon || hl == 0 || hl >= sizeof(host) || colon[1] == '\0')
    return;
  memcpy(host, target + v6, hl - 2 * v6);
  host[hl - 2 * v6] = '\0';
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) == 1)
    snprintf(out, cap, "%s:%s", v6 ? "ipv6" : "ipv4", target);
}

/* Unlinks *pp (c->mu held); returns it when no call or ref holds it, for the caller to free after
 * unlocking, else NULL: it waits on c->orphans, and the last call or rpc_channel_unref frees it
 * (rpc_channel_forget's rule). */
static rpc_channel_t *clt_unlink_locked(rpc_channel_t **pp)
{
  rpc_channel_t *gone = *pp;
  *pp = gone->next;
  gone->next = NULL;
  if (gone->ncalls > 0 || gone->refs > 0) {
    gone->forgotten = 1;
    gone->next = gone->c->orphans;
    gone->c->orphans = gone;
    return NULL;
  }
  return gone;
}

/* Unlinks the direct channels whose connection has ended (c->mu held): all of them when all is
 * set, else only the one to target. Returns those to free, linked. A direct channel never
 * reconnects, and another peer may listen at its address later (a new worker on a reused port). */
static rpc_channel_t *clt_sweep_locked(rpc_client_t *c, const char *target, int all)
{
  rpc_channel_t *dead = NULL;
  for (rpc_channel_t **pp = &c->channels; *pp;) {
    rpc_channel_t *ch = *pp;
    if (ch->watch_fd < 0 || (!all && strcmp(ch->target, target) != 0) || !rpc_direct_ended(ch->watch_fd)) {
      pp = &ch->next;
      continue;
    }
    rpc_channel_t *gone = clt_unlink_locked(pp);
    if (gone) {
      gone->next = dead;
      dead = gone;
    }
  }
  return dead;
}

enum { CLT_SWEEP_EVERY = 64 }; /* direct channels made between two sweeps of the whole list */

static rpc_channel_t *clt_channel_get(rpc_client_t *c, const char *target, int direct)
{
  pthread_mutex_lock(&c->mu);
  int all = direct && c->direct_made >= CLT_SWEEP_EVERY;
  if (all)
    c->direct_made = 0;
  /* An ended direct channel to target is replaced by either kind of get: the peer there now is a
   * new one (the sweep polls direct channels only). */
  rpc_channel_t *dead = clt_sweep_locked(c, target, all);
  rpc_channel_t *ch = c->channels;
  while (ch && strcmp(ch->target, target) != 0)
    ch = ch->next;
  if (!ch) {
    ch = xcalloc(1, sizeof(*ch));
    ch->c = c;
    ch->target = xstrdup(target);
    ch->watch_fd = -1;
    grpc_arg a[RPC_ARGS_MAX];
    grpc_channel_args args = {rpc_args_fill(a, 0, 0, c->no_bdp), a};
    if (direct && !c->tls && (ch->ch = rpc_direct_create(target, c->creds, &args, &ch->watch_fd)))
      c->direct_made++;
    if (!ch->ch) {
      /* Not on a direct channel: one that went idle could not reconnect. */
      if (c->idle_close_ms > 0) { /* room: rpc_args_fill leaves at least one of RPC_ARGS_MAX */
        a[args.num_args].type = GRPC_ARG_INTEGER;
        a[args.num_args].key = (char *)GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS;
        a[args.num_args++].value.integer = c->idle_close_ms;
      }
      char uri[160];
      clt_target(target, uri, sizeof(uri));
      ch->ch = grpc_channel_create(uri, c->creds, &args); /* takes its own reference */
    }
    ch->next = c->channels;
    c->channels = ch;
  }
  pthread_mutex_unlock(&c->mu);
  while (dead) {
    rpc_channel_t *next = dead->next;
    rpc_clt_channel_free(dead);
    dead = next;
  }
  return ch;
}

rpc_channel_t *rpc_channel_get(rpc_client_t *c, const char *target)
{
  return clt_channel_get(c, target, 0);
}

rpc_channel_t *rpc_channel_get_direct(rpc_client_t *c, const char *target)
{
  return clt_channel_get(c, target, 1);
}

void rpc_channel_ref(rpc_channel_t *ch)
{
  if (!ch)
    return;
  pthread_mutex_lock(&ch->c->mu);
  ch->refs++;
  pthread_mutex_unlock(&ch->c->mu);
}

void rpc_channel_unref(rpc_channel_t *ch)
{
  if (!ch)
    return;
  rpc_client_t *c = ch->c;
  pthread_mutex_lock(&c->mu);
  ch->refs--;
  rpc_channel_t *gone = rpc_clt_orphan_take_locked(ch);
  pthread_mutex_unlock(&c->mu);
  rpc_clt_channel_free(gone);
}

void rpc_channel_forget(rpc_client_t *c, const char *target)
{
  rpc_channel_t *gone = NULL;
  pthread_mutex_lock(&c->mu);
  for (rpc_channel_t **pp = &c->channels; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->target, target) == 0) {
      gone = clt_unlink_locked(pp); /* in flight, grpc_channel_destroy would cancel them: the last one frees it */
      break;
    }
  pthread_mutex_unlock(&c->mu);
  rpc_clt_channel_free(gone);
}
