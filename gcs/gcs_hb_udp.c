/*
 * Idle heartbeats over UDP, the GCS's side. See gcs_hb_udp.h and common/hb_udp.h.
 *
 * The socket is non-blocking and read only by the cron (gcs_server_cron, every 10-100 ms), with
 * recvmmsg in batches and at most HBU_PER_TICK datagrams per tick: an idle heartbeat costs the
 * GCS no wake-up of its own and no gRPC call (no connection, no call arena), and a flood of
 * datagrams costs at most one bounded batch per tick. The receive buffer holds a few thousand
 * nodes' datagrams between two ticks.
 *
 * The answer carries the cluster view's delta when the raylet's view is behind by a few nodes (at
 * most HBU_VIEW_ENTRIES_MAX, the oldest changes that fit a datagram first), so an idle raylet stays
 * on UDP while nodes join and leave; a full view or a longer delta sends it to gRPC (view_stale).
 *
 * A datagram is applied only when it decodes with a valid MAC (with a token), names a node the
 * table holds, carries the nonce of that node's last gRPC heartbeat and a sequence number above
 * the last one accepted: a forged or replayed datagram never refreshes a node's liveness. Each
 * refusal is counted (rayc_gcs_heartbeat_datagrams_total by result) and logged at most every
 * HBU_WARN_MS.
 */
#include "gcs/gcs_hb_udp.h"

#include "common/hb_udp.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc_tls.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HBU_BATCH = 64, HBU_PER_TICK = 4096, HBU_RCVBUF = 4 << 20, HBU_WARN_MS = 10000, HBU_TRIM_MS = 30000 };

/* A view behind by more nodes than this is sent over gRPC (one reply) rather than as a train of
 * datagrams (a few entries each, one cron tick apart). */
enum { HBU_VIEW_ENTRIES_MAX = 16 };

/* What became of a datagram (a label of the metric): answered with nothing more to say, with the
 * view's delta, or sending the raylet to gRPC for its view; unknown node, gRPC wanted; refused. */
enum hbu_result { HBU_OK, HBU_VIEW, HBU_STALE, HBU_UNKNOWN, HBU_GRPC, HBU_SIZE, HBU_FORMAT, HBU_MAC, HBU_REPLAY,
                  HBU_NRESULTS };
static const char *const hbu_result_names[HBU_NRESULTS] = {"ok", "view", "view_stale", "unknown_node", "grpc_wanted",
                                                          "size", "format", "mac", "replayed"};

/* Binds fd to ip:port; 0 or -errno. */
static int hbu_bind(const char *ip, int port, int *fd_out)
{
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  char ports[16];
  snprintf(ports, sizeof(ports), "%d", port);
  if (getaddrinfo(ip, ports, &hints, &ai) != 0 || !ai)
    return -EADDRNOTAVAIL;
  int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ? -errno : 0;
  freeaddrinfo(ai);
  if (rc < 0) {
    if (fd >= 0)
      close(fd);
    return rc;
  }
  int size = HBU_RCVBUF; /* FORCE passes rmem_max where we may (CAP_NET_ADMIN); else what it allows */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  *fd_out = fd;
  return 0;
}

void gcs_hb_udp_open(gcs_server_t *s)
{
  s->hb_udp_fd = -1;
  if (!s->conf->heartbeat_udp)
    return;
  if (!s->token && rpc_tls_enabled(&s->tls)) {
    log_info("heartbeats over UDP off: TLS without a cluster token could not authenticate them");
    return;
  }
  int rc = hbu_bind(s->conf->node_ip_address, s->port, &s->hb_udp_fd);
  if (rc < 0) {
    log_warn("cannot bind UDP %s:%d for idle heartbeats (%s): raylets heartbeat over gRPC",
             s->conf->node_ip_address, s->port, strerror(-rc));
    return;
  }
  int size = 0;
  socklen_t len = sizeof(size);
  getsockopt(s->hb_udp_fd, SOL_SOCKET, SO_RCVBUF, &size, &len);
  log_info("idle heartbeats over UDP on %s:%d (%s, receive buffer %d KiB)", s->conf->node_ip_address, s->port,
           s->token ? "HMAC-SHA256 with the cluster token" : "no token: unauthenticated", size / 1024);
}

void gcs_hb_udp_close(gcs_server_t *s)
{
  if (s->hb_udp_fd >= 0)
    close(s->hb_udp_fd);
  s->hb_udp_fd = -1;
}

/* Puts the view's delta since what the request names into rep, packed at buf (HB_UDP_VIEW_MAX
 * bytes): HBU_OK when the raylet's view is current, HBU_VIEW with the delta (or its oldest part,
 * HB_UDP_F_VIEW_MORE), HBU_STALE when it takes a gRPC heartbeat (a full view, a long delta, a
 * version 1 raylet). */
static enum hbu_result hbu_view(gcs_server_t *s, const Rayc__ReportHeartbeatRequest *hb, uint8_t version,
                                hb_udp_msg_t *rep, uint8_t *buf)
{
  gcs_cluster_view_t view = {0};
  int rc = -1; /* version 1: its replies carry no view */
  if (gcs_nodes_view_current(&s->nodes, hb->view_epoch, hb->view_version))
    rc = 0;
  else if (version >= HB_UDP_VERSION)
    rc = gcs_nodes_view_since_max(&s->nodes, hb->view_epoch, hb->view_version, HBU_VIEW_ENTRIES_MAX,
                                  HB_UDP_VIEW_MAX, &view);
  if (rc == 1 && protobuf_c_message_get_packed_size(&view.msg.base) > HB_UDP_VIEW_MAX) {
    gcs_cluster_view_release(&view); /* never: the delta was cut to fit */
    rc = -1;
  }
  gcs_node_count_heartbeat(hb, rc == 1 ? &view.msg : NULL);
  if (rc <= 0) {
    rep->flags |= rc < 0 ? HB_UDP_F_VIEW_STALE : 0;
    return rc < 0 ? HBU_STALE : HBU_OK;
  }
  rep->view = buf;
  rep->view_len = protobuf_c_message_pack(&view.msg.base, buf);
  rep->flags |= HB_UDP_F_VIEW | (view.msg.version != s->nodes.view_version ? HB_UDP_F_VIEW_MORE : 0);
  gcs_cluster_view_release(&view);
  return HBU_VIEW;
}

/* Applies a request from a node that passed the checks, as an idle ReportHeartbeat, and fills the
 * reply's answer bits and view (packed at view_buf); returns HBU_OK, HBU_VIEW or HBU_STALE. */
static enum hbu_result hbu_apply(gcs_server_t *s, gcs_node_t *n, const hb_udp_msg_t *m, int64_t now,
                                 hb_udp_msg_t *rep, uint8_t *view_buf)
{
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(n->id.b, ID_NODE_SIZE);
  hb.unchanged = 1;
  hb.view_epoch = m->a;
  hb.view_version = m->b;
  hb.udp_nonce = m->nonce; /* the node's own nonce (checked): the table takes the higher number */
  hb.udp_seq = m->seq;
  int rc = gcs_nodes_heartbeat(&s->nodes, &hb, now, NULL);
  rep->flags = rc == 1 ? HB_UDP_F_REPORT_WANTED : 0;
  return hbu_view(s, &hb, m->version, rep, view_buf);
}

/* Checks one datagram; fills the reply in *rep (its view packed at view_buf, HB_UDP_VIEW_MAX bytes)
 * and returns a result below HBU_SIZE when it is to be answered, a refusal otherwise. */
static enum hbu_result hbu_handle(gcs_server_t *s, const uint8_t *buf, size_t len, int64_t now, hb_udp_msg_t *rep,
                                  uint8_t *view_buf)
{
  hb_udp_msg_t m;
  int rc = hb_udp_decode(buf, len, s->token, &m);
  if (rc < 0 || m.kind != HB_UDP_REQUEST)
    return rc == HB_UDP_ESIZE ? HBU_SIZE : rc == HB_UDP_EMAC ? HBU_MAC : HBU_FORMAT;
  *rep = (hb_udp_msg_t){.version = m.version, .kind = HB_UDP_REPLY, .nonce = m.nonce, .seq = m.seq};
  memcpy(rep->node, m.node, ID_NODE_SIZE);
  rep->a = gcs_pubsub_channel_seq(&s->pubsub, RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB);
  rep->b = s->pubsub.epoch;
  gcs_node_t *n = gcs_nodes_find(&s->nodes, m.node, ID_NODE_SIZE);
  if (!n || n->state == GCS_NODE_DEAD) { /* as the gRPC heartbeat answers it: register again */
    rep->flags = HB_UDP_F_UNKNOWN_NODE | (n ? HB_UDP_F_NODE_DEAD : 0);
    return HBU_UNKNOWN;
  }
  if (n->udp_nonce == 0) { /* no gRPC heartbeat of this incarnation yet (a GCS restart) */
    rep->flags = HB_UDP_F_GRPC_WANTED;
    return HBU_GRPC;
  }
  if (m.nonce != n->udp_nonce || m.seq <= n->udp_seq)
    return HBU_REPLAY;
  return hbu_apply(s, n, &m, now, rep, view_buf);
}

/* Counts a batch's results, and warns about refusals at most every HBU_WARN_MS. */
static void hbu_count(gcs_server_t *s, const unsigned *counts, int64_t now)
{
  metrics_family_t *f = metrics_family("rayc_gcs_heartbeat_datagrams_total", METRICS_COUNTER,
                                       "Heartbeat datagrams received over UDP, by what became of them.", "Result");
  for (int i = 0; i < HBU_NRESULTS; i++) {
    if (!counts[i])
      continue;
    metrics_add(metrics_series1(f, hbu_result_names[i]), counts[i]);
    if (i >= HBU_SIZE)
      s->hb_udp_refused += counts[i];
  }
  if (s->hb_udp_refused && now - s->hb_udp_warned_ms >= HBU_WARN_MS) {
    log_warn("refused %llu heartbeat datagrams (malformed, forged or replayed) since the last warning; see "
             "rayc_gcs_heartbeat_datagrams_total",
             (unsigned long long)s->hb_udp_refused);
    s->hb_udp_refused = 0;
    s->hb_udp_warned_ms = now;
  }
}

/* Receives and answers one batch; returns how many came. */
static int hbu_batch(gcs_server_t *s, int64_t now)
{
  uint8_t in[HBU_BATCH][HB_UDP_MAX + 1], out[HBU_BATCH][HB_UDP_DGRAM_MAX]; /* 84 KB of the loop's stack */
  struct sockaddr_storage from[HBU_BATCH];
  struct iovec iov[HBU_BATCH], oiov[HBU_BATCH];
  struct mmsghdr msgs[HBU_BATCH], replies[HBU_BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < HBU_BATCH; i++) {
    iov[i] = (struct iovec){in[i], sizeof(in[i])};
    msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof(from[i]), .msg_iov = &iov[i],
                                      .msg_iovlen = 1};
  }
  int n = recvmmsg(s->hb_udp_fd, msgs, HBU_BATCH, MSG_DONTWAIT, NULL);
  if (n <= 0)
    return 0;
  unsigned counts[HBU_NRESULTS] = {0};
  int nout = 0;
  for (int i = 0; i < n; i++) {
    hb_udp_msg_t rep;
    size_t len = msgs[i].msg_hdr.msg_flags & MSG_TRUNC ? sizeof(in[i]) + 1 : msgs[i].msg_len;
    enum hbu_result r = len > HB_UDP_MAX ? HBU_SIZE : hbu_handle(s, in[i], len, now, &rep, out[nout] + HB_UDP_BODY);
    counts[r]++;
    if (r >= HBU_SIZE)
      continue;
    oiov[nout] = (struct iovec){out[nout], hb_udp_encode(&rep, s->token, out[nout])}; /* the view is in place */
    memset(&replies[nout], 0, sizeof(replies[nout]));
    replies[nout].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = msgs[i].msg_hdr.msg_namelen,
                                            .msg_iov = &oiov[nout], .msg_iovlen = 1};
    nout++;
  }
  if (nout > 0 && sendmmsg(s->hb_udp_fd, replies, (unsigned)nout, MSG_DONTWAIT) < 0)
    log_debug("answering heartbeat datagrams: %s", strerror(errno)); /* lost ones are retried next period */
  hbu_count(s, counts, now);
  return n;
}

/* Once joins have settled, hands the heap that their connections held back to the kernel. While
 * nodes join, each joining raylet holds a connection (registration, its first reports) and so do
 * raylets whose view needs a gRPC heartbeat (view_stale); HBU_TRIM_MS after the last join their
 * channels have gone idle and closed (the raylet's --gcs-idle-close-ms, 10 s), and what gRPC freed
 * is free pages in the arenas that malloc keeps (the RSS stays at the joins' high water without
 * this). Once per burst. */
static void hbu_trim(gcs_server_t *s, int64_t now)
{
  if (!s->last_join_ms || now - s->last_join_ms < HBU_TRIM_MS)
    return;
  s->last_join_ms = 0;
  malloc_trim(0);
}

void gcs_hb_udp_drain(gcs_server_t *s, int64_t now)
{
  if (s->hb_udp_fd < 0)
    return;
  hbu_trim(s, now);
  for (int done = 0; done < HBU_PER_TICK;) {
    int n = hbu_batch(s, now);
    done += n;
    if (n < HBU_BATCH)
      break;
  }
}
