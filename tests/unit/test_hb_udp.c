/*
 * Unit tests of the heartbeat datagram format (common/hb_udp.c): requests and replies travel
 * intact with and without a token, a datagram made with another token or none is refused where a
 * token is held, any changed byte is refused (the MAC covers the whole body), wrong sizes, magic,
 * versions, kinds and flags are refused, and the committed fuzz seeds (made by a separate HMAC
 * implementation, Python's) decode: the format is what hb_udp.h documents.
 */
#include "common/hb_udp.h"
#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hb_udp_msg_t sample(uint8_t kind)
{
  hb_udp_msg_t m = {.kind = kind, .nonce = 0x1122334455667788ull, .seq = 7, .a = 1796489244720, .b = -5};
  for (int i = 0; i < ID_NODE_SIZE; i++)
    m.node[i] = (uint8_t)i;
  if (kind == HB_UDP_REPLY)
    m.flags = HB_UDP_F_UNKNOWN_NODE | HB_UDP_F_VIEW_STALE;
  return m;
}

START_TEST(round_trip)
{
  const char *tokens[] = {"secret", NULL};
  for (int t = 0; t < 2; t++)
    for (uint8_t kind = HB_UDP_REQUEST; kind <= HB_UDP_REPLY; kind++) {
      hb_udp_msg_t m = sample(kind), out;
      uint8_t buf[HB_UDP_MAX];
      size_t len = hb_udp_encode(&m, tokens[t], buf);
      ck_assert_uint_eq(len, tokens[t] ? HB_UDP_MAX : HB_UDP_BODY);
      ck_assert_int_eq(hb_udp_decode(buf, len, tokens[t], &out), 0);
      ck_assert_int_eq(memcmp(&m, &out, sizeof(m)), 0);
    }
}
END_TEST

START_TEST(token_is_checked)
{
  hb_udp_msg_t m = sample(HB_UDP_REQUEST), out;
  uint8_t buf[HB_UDP_MAX];
  size_t len = hb_udp_encode(&m, "other", buf);
  ck_assert_int_eq(hb_udp_decode(buf, len, "secret", &out), HB_UDP_EMAC);
  len = hb_udp_encode(&m, NULL, buf); /* no MAC where the receiver holds a token */
  ck_assert_int_eq(hb_udp_decode(buf, len, "secret", &out), HB_UDP_EMAC);
  len = hb_udp_encode(&m, "secret", buf); /* a receiver without a token does not check one */
  ck_assert_int_eq(hb_udp_decode(buf, len, NULL, &out), 0);
}
END_TEST

START_TEST(every_byte_is_covered)
{
  hb_udp_msg_t m = sample(HB_UDP_REPLY), out;
  uint8_t buf[HB_UDP_MAX];
  size_t len = hb_udp_encode(&m, "secret", buf);
  for (size_t i = 0; i < len; i++)
    for (int bit = 0; bit < 8; bit++) {
      buf[i] ^= (uint8_t)(1 << bit);
      ck_assert_msg(hb_udp_decode(buf, len, "secret", &out) < 0, "byte %zu bit %d flipped was accepted", i, bit);
      buf[i] ^= (uint8_t)(1 << bit);
    }
  ck_assert_int_eq(hb_udp_decode(buf, len, "secret", &out), 0);
}
END_TEST

START_TEST(malformed_is_refused)
{
  hb_udp_msg_t m = sample(HB_UDP_REQUEST), out;
  uint8_t buf[HB_UDP_MAX + 8];
  size_t len = hb_udp_encode(&m, NULL, buf);
  for (size_t n = 0; n < sizeof(buf); n++)
    if (n != HB_UDP_BODY)
      ck_assert_int_lt(hb_udp_decode(buf, n, NULL, &out), 0);
  uint8_t bad[HB_UDP_BODY];
  const size_t at[] = {0, 1, 2, 3, 5, 6, 7};
  for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
    memcpy(bad, buf, len);
    bad[at[i]] ^= 0x40;
    ck_assert_int_eq(hb_udp_decode(bad, len, NULL, &out), HB_UDP_EFORMAT);
  }
  memcpy(bad, buf, len);
  bad[4] |= HB_UDP_F_NODE_DEAD; /* answer bits in a request */
  ck_assert_int_eq(hb_udp_decode(bad, len, NULL, &out), HB_UDP_EFORMAT);
  memcpy(bad, buf, len);
  bad[4] |= HB_UDP_F_MAC; /* says a MAC follows, but none does */
  ck_assert_int_eq(hb_udp_decode(bad, len, NULL, &out), HB_UDP_ESIZE);
}
END_TEST

/* Where a raylet sends its datagrams (and a direct channel connects): --gcs-address split. */
START_TEST(gcs_address_split)
{
  char host[64];
  int port = 0;
  ck_assert_int_eq(hostport_split("127.0.0.1:6380", host, sizeof(host), &port), 0);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_int_eq(port, 6380);
  ck_assert_int_eq(hostport_split("[::1]:7", host, sizeof(host), &port), 0);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 7);
  ck_assert_int_eq(hostport_split("head.example:65535", host, sizeof(host), &port), 0);
  ck_assert_str_eq(host, "head.example");
  const char *bad[] = {"127.0.0.1", ":6380", "h:", "h:0", "h:65536", "h:12x", "[]:5", NULL};
  for (int i = 0; bad[i]; i++)
    ck_assert_msg(hostport_split(bad[i], host, sizeof(host), &port) == -1, "%s accepted", bad[i]);
  ck_assert_int_eq(hostport_split("a-rather-long-host-name:1", host, 8, &port), -1); /* no room */
}
END_TEST

START_TEST(seeds_decode)
{
  const char *dir = getenv("RAYC_SRC") ? getenv("RAYC_SRC") : ".";
  const char *names[] = {"request_mac", "reply_mac", "request_plain", "reply_plain_grpc"};
  for (int i = 0; i < 4; i++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_hb_udp/%s", dir, names[i]);
    FILE *f = fopen(path, "rb");
    if (!f) /* run from elsewhere than the source tree */
      return;
    uint8_t buf[HB_UDP_MAX + 1];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    hb_udp_msg_t m, want = sample(i % 2 ? HB_UDP_REPLY : HB_UDP_REQUEST);
    ck_assert_int_eq(hb_udp_decode(buf, len, len == HB_UDP_MAX ? "fuzz-token" : NULL, &m), 0);
    ck_assert_int_eq(m.kind, want.kind);
    ck_assert_int_eq(memcmp(m.node, want.node, ID_NODE_SIZE), 0);
    ck_assert(m.nonce == want.nonce && m.seq == want.seq && m.a == want.a);
    ck_assert_int_eq(m.b, 1796489244725);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("hb_udp");
  TCase *tc = tcase_create("hb_udp");
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, token_is_checked);
  tcase_add_test(tc, every_byte_is_covered);
  tcase_add_test(tc, malformed_is_refused);
  tcase_add_test(tc, seeds_decode);
  tcase_add_test(tc, gcs_address_split);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
