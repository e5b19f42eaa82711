/*
 * Idle heartbeats over UDP, the raylet's side (common/hb_udp.h; docs/ARCHITECTURE.md "Idle
 * heartbeats over UDP").
 *
 * A heartbeat with nothing to report (`unchanged`) goes as one datagram to the GCS's host and port
 * number instead of a ReportHeartbeat call, so an idle node keeps no gRPC call going to the GCS and
 * its channel can close (raylet_gcs.c). The answer is applied as a ReportHeartbeatReply would be
 * (raylet_gcs_heartbeat_apply), with the view's delta it carries when the view moved (version 2):
 * the node stays on UDP while other nodes join, leave or change. When it carries its delta's oldest
 * part only (HB_UDP_F_VIEW_MORE), the next datagram goes at once. One that says the view is stale
 * (a full view or a long delta is due), or that the GCS wants a gRPC heartbeat (it restarted and
 * does not know this raylet's nonce), makes the next heartbeat a gRPC call at once, which brings
 * the view.
 *
 * Only the answer to the last datagram sent is taken (same nonce and sequence number, a valid MAC).
 * When HBU_MISSES datagrams in a row went unanswered (UDP filtered, the GCS not listening on UDP),
 * heartbeats go over gRPC for HBU_RETRY_PERIODS periods, then UDP is tried again; the first time is
 * logged as a warning, later ones at debug.
 */
#include "raylet/raylet.h"

#include "common/hb_udp.h"
#include "common/log.h"
#include "common/util.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

enum { HBU_MISSES = 3, HBU_RETRY_PERIODS = 60 };

typedef struct raylet_hb_udp {
  uv_udp_t sock;     /* first: its close callback frees the record */
  uint64_t nonce;    /* random per raylet process: the GCS learns it from a gRPC heartbeat */
  uint64_t seq;      /* of the last datagram sent */
  uint64_t pending;  /* the seq of the datagram not answered yet; 0: none */
  int misses;        /* datagrams in a row that were not answered before the next heartbeat */
  int64_t retry_ms;  /* in fallback to gRPC until then (monotonic); 0: not */
  int warned;        /* the fallback was logged as a warning once */
  int grpc_next;     /* the next heartbeat goes over gRPC (the view is stale, or the GCS asked) */
  uint8_t version;   /* of the datagrams sent: what the GCS's last gRPC reply said it answers */
  uint8_t buf[HB_UDP_DGRAM_MAX + 1];
} raylet_hb_udp_t;

static void hbu_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  raylet_hb_udp_t *u = ((raylet_t *)h->data)->hbu;
  (void)suggested;
  *buf = uv_buf_init((char *)u->buf, sizeof(u->buf));
}

/* The view's delta a reply carries, NULL when none; one that does not unpack or check sends the next
 * heartbeat to gRPC (the GCS would not send it: a bug, logged). */
static Rayc__ClusterView *hbu_view(raylet_hb_udp_t *u, const hb_udp_msg_t *m)
{
  char why[200];
  if (!(m->flags & HB_UDP_F_VIEW))
    return NULL;
  Rayc__ClusterView *v = hb_udp_view_unpack(m, why, sizeof(why));
  if (!v) {
    log_warn("a heartbeat datagram's cluster view is malformed (%s): asking over gRPC", why);
    u->grpc_next = 1;
  }
  return v;
}

static void hbu_on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
  raylet_t *r = h->data;
  raylet_hb_udp_t *u = r->hbu;
  hb_udp_msg_t m;
  (void)buf;
  (void)from;
  if (n <= 0 || (flags & UV_UDP_PARTIAL) || r->stopping)
    return;
  /* only the answer to the datagram sent last, from whoever holds the token (the socket is connected
   * to the GCS's address, so nobody else's datagrams reach it either) */
  if (hb_udp_decode(u->buf, (size_t)n, r->token, &m) < 0 || m.kind != HB_UDP_REPLY || m.version != u->version ||
      m.nonce != u->nonce || m.seq != u->pending || u->pending == 0 || memcmp(m.node, r->node_id.b, ID_NODE_SIZE) != 0)
    return;
  u->pending = 0;
  u->misses = 0;
  if (m.flags & (HB_UDP_F_VIEW_STALE | HB_UDP_F_GRPC_WANTED))
    u->grpc_next = 1;
  Rayc__ReportHeartbeatReply rep = RAYC__REPORT_HEARTBEAT_REPLY__INIT;
  rep.unknown_node = (m.flags & HB_UDP_F_UNKNOWN_NODE) != 0;
  rep.node_dead = (m.flags & HB_UDP_F_NODE_DEAD) != 0;
  rep.report_wanted = (m.flags & HB_UDP_F_REPORT_WANTED) != 0;
  rep.job_seq = m.a;
  rep.pubsub_epoch = m.b;
  rep.cluster_view = hbu_view(u, &m);
  raylet_gcs_heartbeat_apply(r, &rep);
  /* the rest of the delta: only when this part was applied (a gap asks for the full view instead) */
  int more = (m.flags & HB_UDP_F_VIEW_MORE) && rep.cluster_view && r->view_version == rep.cluster_view->version;
  pb_free(rep.cluster_view);
  if ((u->grpc_next || more) && !rep.unknown_node) {
    r->last_heartbeat_ms = 0; /* now: over gRPC its reply brings the view, over UDP the delta's rest */
    raylet_gcs_heartbeat(r);
  }
}

void raylet_hb_udp_gcs_version(raylet_t *r, int version)
{
  if (r->hbu)
    r->hbu->version = version >= HB_UDP_VERSION ? HB_UDP_VERSION : HB_UDP_VERSION1;
}

int raylet_hb_udp_start(raylet_t *r)
{
  char host[256];
  int port;
  if (!r->cfg.heartbeat_udp || (!(r->token && *r->token) && rpc_tls_enabled(&r->tls)))
    return 0; /* TLS without a token: a datagram could not be authenticated; the GCS does not listen */
  if (hostport_split(r->cfg.gcs_address, host, sizeof(host), &port) < 0) {
    log_warn("heartbeats over UDP off: cannot read a host and port in --gcs-address %s", r->cfg.gcs_address);
    return 0;
  }
  if (r->cfg.heartbeat_udp_port > 0)
    port = r->cfg.heartbeat_udp_port;
  char ports[16];
  snprintf(ports, sizeof(ports), "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(host, ports, &hints, &ai) != 0 || !ai) {
    log_warn("heartbeats over UDP off: cannot resolve %s", host);
    return 0;
  }
  raylet_hb_udp_t *u = xcalloc(1, sizeof(*u));
  u->version = HB_UDP_VERSION1; /* until a gRPC heartbeat's reply says the GCS answers a newer one */
  if (getrandom(&u->nonce, sizeof(u->nonce), 0) != sizeof(u->nonce) || u->nonce == 0)
    u->nonce = ((uint64_t)wall_ms() << 20) ^ (uint64_t)getpid() ^ 1; /* unique per process, which is what it needs */
  uv_udp_init(&r->loop, &u->sock);
  u->sock.data = r;
  r->hbu = u;
  int rc = uv_udp_connect(&u->sock, ai->ai_addr);
  freeaddrinfo(ai);
  if (rc == 0)
    rc = uv_udp_recv_start(&u->sock, hbu_alloc, hbu_on_recv);
  if (rc < 0) {
    log_warn("heartbeats over UDP off: %s", uv_strerror(rc));
    raylet_hb_udp_stop(r);
  }
  return 0;
}

static void hbu_on_close(uv_handle_t *h)
{
  free((raylet_hb_udp_t *)h); /* the handle is the record's first member */
}

void raylet_hb_udp_stop(raylet_t *r)
{
  if (!r->hbu)
    return;
  uv_close((uv_handle_t *)&r->hbu->sock, hbu_on_close);
  r->hbu = NULL;
}

void raylet_hb_udp_fill(raylet_t *r, Rayc__ReportHeartbeatRequest *req)
{
  raylet_hb_udp_t *u = r->hbu;
  if (!u)
    return;
  req->udp_nonce = u->nonce;
  req->udp_seq = u->seq;
  u->pending = 0; /* a gRPC heartbeat in between: an unanswered datagram before it is no miss */
  u->grpc_next = 0;
}

/* Whether this heartbeat may go as a datagram; counts the last one as a miss if it was not answered. */
static int hbu_usable(raylet_t *r, raylet_hb_udp_t *u, int64_t now)
{
  char id[9];
  if (u->pending && ++u->misses >= HBU_MISSES) {
    u->pending = 0;
    u->misses = 0;
    u->retry_ms = now + (int64_t)HBU_RETRY_PERIODS * r->cfg.heartbeat_ms;
    if (u->warned++)
      log_debug("no answer to %d UDP heartbeats in a row: over gRPC again", HBU_MISSES);
    else
      log_warn("node %s: no answer to %d UDP heartbeats in a row from the GCS at %s: heartbeats go over gRPC "
               "(UDP is tried again every %d periods)",
               id_short(r->node_id.b, ID_NODE_SIZE, id), HBU_MISSES, r->cfg.gcs_address, HBU_RETRY_PERIODS);
  }
  if (u->retry_ms && now < u->retry_ms)
    return 0;
  u->retry_ms = 0;
  return !u->grpc_next;
}

int raylet_hb_udp_send(raylet_t *r, int64_t now, int64_t view_epoch, int64_t view_version)
{
  raylet_hb_udp_t *u = r->hbu;
  if (!u || !hbu_usable(r, u, now))
    return 0;
  hb_udp_msg_t m = {.version = u->version,
                    .kind = HB_UDP_REQUEST,
                    .nonce = u->nonce,
                    .seq = ++u->seq,
                    .a = view_epoch,
                    .b = view_version};
  memcpy(m.node, r->node_id.b, ID_NODE_SIZE);
  uint8_t out[HB_UDP_MAX];
  uv_buf_t b = uv_buf_init((char *)out, (unsigned)hb_udp_encode(&m, r->token, out));
  int rc = uv_udp_try_send(&u->sock, &b, 1, NULL);
  if (rc < 0 && rc != UV_EAGAIN) /* e.g. ECONNREFUSED from an earlier ICMP: counts as unanswered */
    log_debug("sending a UDP heartbeat: %s", uv_strerror(rc));
  u->pending = u->seq;
  return 1;
}
