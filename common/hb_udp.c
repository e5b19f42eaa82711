/* Idle heartbeats as UDP datagrams: encoding, decoding and the MAC. See hb_udp.h. */
#include "common/hb_udp.h"

#include "common/rpc_valid.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static void put64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* HMAC-SHA256 of the len bytes at p keyed by token into mac. */
static void hb_udp_mac(const char *token, const uint8_t *p, size_t len, uint8_t *mac)
{
  unsigned int n = HB_UDP_MAC_LEN;
  if (!HMAC(EVP_sha256(), token, (int)strlen(token), p, len, mac, &n))
    memset(mac, 0, HB_UDP_MAC_LEN); /* never matches a real MAC: the datagram is refused */
}

/* The flags a datagram of this version and kind may carry. */
static int hb_udp_allowed(uint8_t version, uint8_t kind)
{
  if (kind != HB_UDP_REPLY)
    return HB_UDP_F_MAC;
  return HB_UDP_F_MAC | (version == HB_UDP_VERSION1 ? HB_UDP_F_ANSWER1 : HB_UDP_F_ANSWER);
}

/* Whether a view of len bytes goes with these flags: present exactly when HB_UDP_F_VIEW says so,
 * within HB_UDP_VIEW_MAX; HB_UDP_F_VIEW_MORE only with a view. */
static int hb_udp_view_fits(int flags, size_t len)
{
  if ((flags & HB_UDP_F_VIEW_MORE) && !(flags & HB_UDP_F_VIEW))
    return 0;
  return (len > 0) == ((flags & HB_UDP_F_VIEW) != 0) && len <= HB_UDP_VIEW_MAX;
}

size_t hb_udp_encode(const hb_udp_msg_t *m, const char *token, uint8_t *out)
{
  int mac = token && *token;
  uint8_t version = m->version ? m->version : HB_UDP_VERSION;
  int flags = m->flags & hb_udp_allowed(version, m->kind) & ~HB_UDP_F_MAC;
  if ((version != HB_UDP_VERSION && version != HB_UDP_VERSION1) || !hb_udp_view_fits(flags, m->view_len))
    return 0;
  if (m->view_len) /* first: the view may already sit where it goes (the GCS packs it there) */
    memmove(out + HB_UDP_BODY, m->view, m->view_len);
  memset(out, 0, HB_UDP_BODY);
  out[0] = 'r';
  out[1] = 'h';
  out[2] = version;
  out[3] = m->kind;
  out[4] = (uint8_t)(flags | (mac ? HB_UDP_F_MAC : 0));
  out[6] = (uint8_t)m->view_len;
  out[7] = (uint8_t)(m->view_len >> 8);
  memcpy(out + 8, m->node, ID_NODE_SIZE);
  put64(out + 36, m->nonce);
  put64(out + 44, m->seq);
  put64(out + 52, (uint64_t)m->a);
  put64(out + 60, (uint64_t)m->b);
  size_t len = HB_UDP_BODY + m->view_len;
  if (!mac)
    return len;
  hb_udp_mac(token, out, len, out + len);
  return len + HB_UDP_MAC_LEN;
}

int hb_udp_decode(const uint8_t *buf, size_t len, const char *token, hb_udp_msg_t *m)
{
  if (len < HB_UDP_BODY || len > HB_UDP_DGRAM_MAX)
    return HB_UDP_ESIZE;
  uint8_t version = buf[2], kind = buf[3], flags = buf[4];
  size_t view_len = (size_t)buf[6] | (size_t)buf[7] << 8;
  if (buf[0] != 'r' || buf[1] != 'h' || (version != HB_UDP_VERSION && version != HB_UDP_VERSION1) ||
      (kind != HB_UDP_REQUEST && kind != HB_UDP_REPLY) || (flags & ~hb_udp_allowed(version, kind)) || buf[5] ||
      (version == HB_UDP_VERSION1 && view_len) || !hb_udp_view_fits(flags, view_len))
    return HB_UDP_EFORMAT;
  size_t signed_len = HB_UDP_BODY + view_len;
  if (len != signed_len + (flags & HB_UDP_F_MAC ? HB_UDP_MAC_LEN : 0))
    return HB_UDP_ESIZE;
  if (token && *token) {
    uint8_t want[HB_UDP_MAC_LEN];
    if (!(flags & HB_UDP_F_MAC))
      return HB_UDP_EMAC;
    hb_udp_mac(token, buf, signed_len, want);
    if (CRYPTO_memcmp(want, buf + signed_len, HB_UDP_MAC_LEN) != 0)
      return HB_UDP_EMAC;
  }
  memset(m, 0, sizeof(*m));
  m->version = version;
  m->kind = kind;
  m->flags = (uint8_t)(flags & HB_UDP_F_ANSWER);
  memcpy(m->node, buf + 8, ID_NODE_SIZE);
  m->nonce = get64(buf + 36);
  m->seq = get64(buf + 44);
  m->a = (int64_t)get64(buf + 52);
  m->b = (int64_t)get64(buf + 60);
  m->view = view_len ? buf + HB_UDP_BODY : NULL;
  m->view_len = view_len;
  return 0;
}

/* 0 when v is a delta whose fields pass the request rules and whose node ids have their size; else
 * -1 with why. */
static int hb_udp_view_check(const Rayc__ClusterView *v, char *why, size_t len)
{
  if (!v->delta) {
    snprintf(why, len, "the view is not a delta");
    return -1;
  }
  if (rpc_valid_check(&v->base, NULL, why, len) != 0)
    return -1;
  for (size_t i = 0; i < v->n_nodes; i++) /* the rules take an empty id as "not set" */
    if (v->nodes[i]->node_id.len != ID_NODE_SIZE) {
      snprintf(why, len, "nodes[%zu] has no node id", i);
      return -1;
    }
  for (size_t i = 0; i < v->n_removed; i++)
    if (v->removed[i].len != ID_NODE_SIZE) {
      snprintf(why, len, "removed[%zu] is not a node id", i);
      return -1;
    }
  return 0;
}

Rayc__ClusterView *hb_udp_view_unpack(const hb_udp_msg_t *m, char *why, size_t len)
{
  if (!m->view_len) {
    snprintf(why, len, "no view");
    return NULL;
  }
  Rayc__ClusterView *v =
      (Rayc__ClusterView *)protobuf_c_message_unpack(&rayc__cluster_view__descriptor, NULL, m->view_len, m->view);
  if (!v) {
    snprintf(why, len, "the view does not unpack");
    return NULL;
  }
  if (hb_udp_view_check(v, why, len) < 0) {
    pb_free(v);
    return NULL;
  }
  return v;
}

const char *hb_udp_strerror(int rc)
{
  switch (rc) {
  case HB_UDP_ESIZE:
    return "size";
  case HB_UDP_EFORMAT:
    return "format";
  case HB_UDP_EMAC:
    return "mac";
  default:
    return rc < 0 ? "unknown" : "ok";
  }
}
