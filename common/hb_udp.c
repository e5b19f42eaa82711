/* Idle heartbeats as UDP datagrams: encoding, decoding and the MAC. See hb_udp.h. */
#include "common/hb_udp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

/* HMAC-SHA256 of body (HB_UDP_BODY bytes) keyed by token into mac. */
static void hb_udp_mac(const char *token, const uint8_t *body, uint8_t *mac)
{
  unsigned int len = HB_UDP_MAC_LEN;
  if (!HMAC(EVP_sha256(), token, (int)strlen(token), body, HB_UDP_BODY, mac, &len))
    memset(mac, 0, HB_UDP_MAC_LEN); /* never matches a real MAC: the datagram is refused */
}

size_t hb_udp_encode(const hb_udp_msg_t *m, const char *token, uint8_t *out)
{
  int mac = token && *token;
  memset(out, 0, HB_UDP_BODY);
  out[0] = 'r';
  out[1] = 'h';
  out[2] = HB_UDP_VERSION;
  out[3] = m->kind;
  out[4] = (uint8_t)((m->kind == HB_UDP_REPLY ? m->flags & HB_UDP_F_ANSWER : 0) | (mac ? HB_UDP_F_MAC : 0));
  memcpy(out + 8, m->node, ID_NODE_SIZE);
  put64(out + 36, m->nonce);
  put64(out + 44, m->seq);
  put64(out + 52, (uint64_t)m->a);
  put64(out + 60, (uint64_t)m->b);
  if (!mac)
    return HB_UDP_BODY;
  hb_udp_mac(token, out, out + HB_UDP_BODY);
  return HB_UDP_MAX;
}

int hb_udp_decode(const uint8_t *buf, size_t len, const char *token, hb_udp_msg_t *m)
{
  if (len != HB_UDP_BODY && len != HB_UDP_MAX)
    return HB_UDP_ESIZE;
  uint8_t kind = buf[3], flags = buf[4];
  int allowed = HB_UDP_F_MAC | (kind == HB_UDP_REPLY ? HB_UDP_F_ANSWER : 0);
  if (buf[0] != 'r' || buf[1] != 'h' || buf[2] != HB_UDP_VERSION || (kind != HB_UDP_REQUEST && kind != HB_UDP_REPLY) ||
      (flags & ~allowed) || buf[5] || buf[6] || buf[7])
    return HB_UDP_EFORMAT;
  if ((len == HB_UDP_MAX) != ((flags & HB_UDP_F_MAC) != 0))
    return HB_UDP_ESIZE;
  if (token && *token) {
    uint8_t want[HB_UDP_MAC_LEN];
    if (len != HB_UDP_MAX)
      return HB_UDP_EMAC;
    hb_udp_mac(token, buf, want);
    if (CRYPTO_memcmp(want, buf + HB_UDP_BODY, HB_UDP_MAC_LEN) != 0)
      return HB_UDP_EMAC;
  }
  memset(m, 0, sizeof(*m));
  m->kind = kind;
  m->flags = (uint8_t)(flags & HB_UDP_F_ANSWER);
  memcpy(m->node, buf + 8, ID_NODE_SIZE);
  m->nonce = get64(buf + 36);
  m->seq = get64(buf + 44);
  m->a = (int64_t)get64(buf + 52);
  m->b = (int64_t)get64(buf + 60);
  return 0;
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
