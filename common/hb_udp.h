/*
 * Idle heartbeats as UDP datagrams: the wire format and its MAC, shared by the raylet (which sends
 * requests) and the GCS (which answers them). docs/ARCHITECTURE.md "Idle heartbeats over UDP".
 *
 * A raylet whose heartbeat is `unchanged` (nothing to report) sends one datagram to the GCS's
 * gRPC host and port number over UDP instead of a ReportHeartbeat call, so an idle node needs no
 * gRPC connection to the GCS. Every field is fixed size, little-endian:
 *
 *   off  size  request (kind 1)                 reply (kind 2)
 *     0     2  magic "rh"                        magic "rh"
 *     2     1  version (1)                       version (1)
 *     3     1  kind                              kind
 *     4     1  flags: HB_UDP_F_MAC               flags: HB_UDP_F_MAC and the answer bits
 *     5     3  zero                              zero
 *     8    28  node id                           node id (the request's)
 *    36     8  the raylet's boot nonce           the request's nonce
 *    44     8  sequence number (increasing)     the request's sequence number
 *    52     8  view epoch the raylet holds       job_seq (ReportHeartbeatReply.job_seq)
 *    60     8  view version the raylet holds     pubsub_epoch
 *    68    32  HMAC-SHA256(token, bytes 0..67)   likewise (only with HB_UDP_F_MAC)
 *
 * With a cluster token every datagram carries the MAC, keyed by the token over everything before
 * it, and a receiver holding a token refuses a datagram without a valid one. Replay is refused by
 * the GCS (the nonce must be the one the raylet's last gRPC heartbeat named, the sequence number
 * must grow) and by the raylet (a reply must echo the nonce and sequence number it sent last).
 */
#ifndef RAYC_HB_UDP_H
#define RAYC_HB_UDP_H

#include "common/ids.h"

#include <stddef.h>
#include <stdint.h>

enum {
  HB_UDP_VERSION = 1,
  HB_UDP_REQUEST = 1,
  HB_UDP_REPLY = 2,
  HB_UDP_BODY = 68,                   /* bytes before the MAC */
  HB_UDP_MAC_LEN = 32,                /* HMAC-SHA256 */
  HB_UDP_MAX = HB_UDP_BODY + HB_UDP_MAC_LEN,
};

/* flags */
enum {
  HB_UDP_F_MAC = 1 << 0,          /* a MAC follows the body */
  HB_UDP_F_UNKNOWN_NODE = 1 << 1, /* reply: ReportHeartbeatReply.unknown_node (register again) */
  HB_UDP_F_NODE_DEAD = 1 << 2,    /* reply: ReportHeartbeatReply.node_dead */
  HB_UDP_F_REPORT_WANTED = 1 << 3, /* reply: ReportHeartbeatReply.report_wanted */
  HB_UDP_F_VIEW_STALE = 1 << 4,   /* reply: the raylet's view is not current: heartbeat over gRPC now */
  HB_UDP_F_GRPC_WANTED = 1 << 5,  /* reply: the GCS does not know this nonce (it restarted): use gRPC */
  HB_UDP_F_ANSWER = HB_UDP_F_UNKNOWN_NODE | HB_UDP_F_NODE_DEAD | HB_UDP_F_REPORT_WANTED | HB_UDP_F_VIEW_STALE |
                    HB_UDP_F_GRPC_WANTED,
};

/* Why a datagram was refused (negative, for counting and logging). */
enum {
  HB_UDP_ESIZE = -1,   /* neither HB_UDP_BODY nor HB_UDP_MAX bytes, or a size its flags contradict */
  HB_UDP_EFORMAT = -2, /* magic, version, kind or reserved bits wrong */
  HB_UDP_EMAC = -3,    /* the receiver holds a token and the MAC is missing or wrong */
};

typedef struct hb_udp_msg {
  uint8_t kind;  /* HB_UDP_REQUEST or HB_UDP_REPLY */
  uint8_t flags; /* the answer bits of a reply (HB_UDP_F_MAC is set by the encoder) */
  uint8_t node[ID_NODE_SIZE];
  uint64_t nonce, seq;
  int64_t a, b; /* request: view epoch, view version; reply: job_seq, pubsub_epoch */
} hb_udp_msg_t;

/* Writes m to out (HB_UDP_MAX bytes of room) with a MAC keyed by token (NULL or "": none);
 * returns the length. */
size_t hb_udp_encode(const hb_udp_msg_t *m, const char *token, uint8_t *out);

/* Reads a datagram of len bytes into *m; 0, or HB_UDP_ESIZE, HB_UDP_EFORMAT or HB_UDP_EMAC. With a
 * token (not NULL or "") the MAC must be there and right; without one a MAC is not checked. Never
 * reads past len. */
int hb_udp_decode(const uint8_t *buf, size_t len, const char *token, hb_udp_msg_t *m);

/* "size", "format", "mac" for a negative result of hb_udp_decode. */
const char *hb_udp_strerror(int rc);

#endif
