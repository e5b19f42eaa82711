/*
 * Idle heartbeats as UDP datagrams: the wire format and its MAC, shared by the raylet (which sends
 * requests) and the GCS (which answers them). docs/ARCHITECTURE.md "Idle heartbeats over UDP".
 *
 * A raylet whose heartbeat is `unchanged` (nothing to report) sends one datagram to the GCS's
 * gRPC host and port number over UDP instead of a ReportHeartbeat call, so an idle node needs no
 * gRPC connection to the GCS. Little-endian; a fixed body, then in a reply of version 2 the view
 * (the cluster view's delta, when the raylet's is behind), then the MAC:
 *
 *   off  size  request (kind 1)                 reply (kind 2)
 *     0     2  magic "rh"                        magic "rh"
 *     2     1  version (2, or 1)                 the request's version
 *     3     1  kind                              kind
 *     4     1  flags: HB_UDP_F_MAC               flags: HB_UDP_F_MAC and the answer bits
 *     5     1  zero                              zero
 *     6     2  zero                              version 2: the view's length L (0: none); 1: zero
 *     8    28  node id                           node id (the request's)
 *    36     8  the raylet's boot nonce           the request's nonce
 *    44     8  sequence number (increasing)     the request's sequence number
 *    52     8  view epoch the raylet holds       job_seq (ReportHeartbeatReply.job_seq)
 *    60     8  view version the raylet holds     pubsub_epoch
 *    68     L  -                                 a ClusterView delta, protobuf-packed (HB_UDP_F_VIEW)
 *  68+L    32  HMAC-SHA256(token, bytes 0..67)   HMAC-SHA256(token, bytes 0..67+L) (with HB_UDP_F_MAC)
 *
 * A datagram is at most HB_UDP_DGRAM_MAX bytes (1,200: one IPv6 packet's minimum MTU, so never
 * fragmented); a request is always HB_UDP_BODY or HB_UDP_MAX. The GCS answers a request in its
 * version; it answers version 1 (an older raylet) without a view, with HB_UDP_F_VIEW_STALE when the
 * raylet's view is behind. A raylet sends version 2 once a gRPC heartbeat reply said that the GCS
 * answers it (ReportHeartbeatReply.udp_version), else version 1, so each side works with an older
 * other.
 *
 * With a cluster token every datagram carries the MAC, keyed by the token over everything before
 * it, and a receiver holding a token refuses a datagram without a valid one. Replay is refused by
 * the GCS (the nonce must be the one the raylet's last gRPC heartbeat named, the sequence number
 * must grow) and by the raylet (a reply must echo the nonce and sequence number it sent last).
 */
#ifndef RAYC_HB_UDP_H
#define RAYC_HB_UDP_H

#include "common/ids.h"
#include "common/pb.h"

#include <stddef.h>
#include <stdint.h>

enum {
  HB_UDP_VERSION = 2,  /* the newest; a GCS answers every version from 1 to this */
  HB_UDP_VERSION1 = 1, /* without views in replies */
  HB_UDP_REQUEST = 1,
  HB_UDP_REPLY = 2,
  HB_UDP_BODY = 68,                   /* the fixed body, before a view and the MAC */
  HB_UDP_MAC_LEN = 32,                /* HMAC-SHA256 */
  HB_UDP_MAX = HB_UDP_BODY + HB_UDP_MAC_LEN, /* a request, or a reply without a view */
  HB_UDP_DGRAM_MAX = 1200,            /* any datagram: no IP fragmentation (IPv6's minimum MTU 1,280) */
  HB_UDP_VIEW_MAX = HB_UDP_DGRAM_MAX - HB_UDP_MAX, /* a reply's packed view */
};

/* flags */
enum {
  HB_UDP_F_MAC = 1 << 0,          /* a MAC follows the body (and the view) */
  HB_UDP_F_UNKNOWN_NODE = 1 << 1, /* reply: ReportHeartbeatReply.unknown_node (register again) */
  HB_UDP_F_NODE_DEAD = 1 << 2,    /* reply: ReportHeartbeatReply.node_dead */
  HB_UDP_F_REPORT_WANTED = 1 << 3, /* reply: ReportHeartbeatReply.report_wanted */
  HB_UDP_F_VIEW_STALE = 1 << 4,   /* reply: the raylet's view is not current: heartbeat over gRPC now */
  HB_UDP_F_GRPC_WANTED = 1 << 5,  /* reply: the GCS does not know this nonce (it restarted): use gRPC */
  HB_UDP_F_VIEW = 1 << 6,         /* reply, version 2: the view's delta follows the body */
  HB_UDP_F_VIEW_MORE = 1 << 7,    /* reply, version 2, with HB_UDP_F_VIEW: the delta's oldest part
                                   * only; the view is still behind: send the next datagram now */
  HB_UDP_F_ANSWER1 = HB_UDP_F_UNKNOWN_NODE | HB_UDP_F_NODE_DEAD | HB_UDP_F_REPORT_WANTED | HB_UDP_F_VIEW_STALE |
                     HB_UDP_F_GRPC_WANTED, /* the answer bits of version 1 */
  HB_UDP_F_ANSWER = HB_UDP_F_ANSWER1 | HB_UDP_F_VIEW | HB_UDP_F_VIEW_MORE,
};

/* Why a datagram was refused (negative, for counting and logging). */
enum {
  HB_UDP_ESIZE = -1,   /* shorter than the body, longer than HB_UDP_DGRAM_MAX, or not the size its
                        * header says (view length, MAC) */
  HB_UDP_EFORMAT = -2, /* magic, version, kind, reserved bytes or flags wrong */
  HB_UDP_EMAC = -3,    /* the receiver holds a token and the MAC is missing or wrong */
};

typedef struct hb_udp_msg {
  uint8_t version; /* HB_UDP_VERSION or HB_UDP_VERSION1 (0 to encode: HB_UDP_VERSION) */
  uint8_t kind;    /* HB_UDP_REQUEST or HB_UDP_REPLY */
  uint8_t flags;   /* the answer bits of a reply (HB_UDP_F_MAC is set by the encoder) */
  uint8_t node[ID_NODE_SIZE];
  uint64_t nonce, seq;
  int64_t a, b;         /* request: view epoch, view version; reply: job_seq, pubsub_epoch */
  const uint8_t *view;  /* a reply with HB_UDP_F_VIEW: the packed ClusterView (decoded: points into
                         * the datagram) */
  size_t view_len;      /* its length (1..HB_UDP_VIEW_MAX); 0: none */
} hb_udp_msg_t;

/* Writes m to out (HB_UDP_MAX bytes of room, HB_UDP_DGRAM_MAX with a view; m->view may point at
 * out + HB_UDP_BODY) with a MAC keyed by token (NULL or "": none); returns the length, or 0 when m
 * is not a datagram the format allows (a view too long, in a request or in version 1, without
 * HB_UDP_F_VIEW or that flag without one). */
size_t hb_udp_encode(const hb_udp_msg_t *m, const char *token, uint8_t *out);

/* Reads a datagram of len bytes into *m; 0, or HB_UDP_ESIZE, HB_UDP_EFORMAT or HB_UDP_EMAC. With a
 * token (not NULL or "") the MAC must be there and right; without one a MAC is not checked. Never
 * reads past len; m->view points into buf. */
int hb_udp_decode(const uint8_t *buf, size_t len, const char *token, hb_udp_msg_t *m);

/* The view a decoded reply carries (HB_UDP_F_VIEW), unpacked and checked as a request would be
 * (common/rpc_valid.h): a delta, node ids of their size. NULL when there is none or it is not one of
 * those (why says which, len bytes). Free with pb_free. */
Rayc__ClusterView *hb_udp_view_unpack(const hb_udp_msg_t *m, char *why, size_t len);

/* "size", "format", "mac" for a negative result of hb_udp_decode. */
const char *hb_udp_strerror(int rc);

#endif
