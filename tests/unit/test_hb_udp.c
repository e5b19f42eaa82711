/*
 * Unit tests of the heartbeat datagram format (common/hb_udp.c): requests and replies travel
 * intact with and without a token, a datagram made with another token or none is refused where a
 * token is held, any changed byte is refused (the MAC covers the whole body and a reply's view),
 * wrong sizes, magic, versions, kinds, flags and view lengths are refused, version 1 still
 * travels (without views), a reply's view unpacks only when it is a well-formed delta, and the
 * committed fuzz seeds (made by a separate HMAC and protobuf encoder, Python's) decode: the format
 * is what hb_udp.h documents.
 */
#include "common/hb_udp.h"
#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hb_udp_msg_t sample(uint8_t kind)
{
  hb_udp_msg_t m = {.version = HB_UDP_VERSION,
                    .kind = kind,
                    .nonce = 0x1122334455667788ull,
                    .seq = 7,
                    .a = 1796489244720,
                    .b = -5};
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

/* A packed delta: one node upserted (CPU 1 of 2 free; none when id is NULL), one removed; into buf,
 * its length returned. */
static size_t sample_view(uint8_t *buf, size_t cap, const uint8_t *id, size_t id_len, int delta)
{
  Rayc__ClusterView v = RAYC__CLUSTER_VIEW__INIT;
  Rayc__NodeResourceView n = RAYC__NODE_RESOURCE_VIEW__INIT, *nodes[1] = {&n};
  Rayc__ResourceEntry total = RAYC__RESOURCE_ENTRY__INIT, avail = RAYC__RESOURCE_ENTRY__INIT;
  Rayc__ResourceEntry *tp[1] = {&total}, *ap[1] = {&avail};
  uint8_t gone[ID_NODE_SIZE];
  memset(gone, 0xee, sizeof(gone));
  ProtobufCBinaryData removed[1] = {pb_bytes(gone, sizeof(gone))};
  total.name = avail.name = (char *)"CPU";
  total.amount = 2, avail.amount = 1;
  n.node_id = pb_bytes(id, id_len);
  n.ip = (char *)"10.0.0.9";
  n.raylet_port = 4100;
  n.resources_total = tp, n.n_resources_total = 1;
  n.resources_available = ap, n.n_resources_available = 1;
  v.version = 1796489244731, v.epoch = 1796489244720, v.base_version = 1796489244725;
  v.delta = delta;
  v.nodes = nodes, v.n_nodes = id ? 1 : 0;
  v.removed = removed, v.n_removed = 1;
  size_t len = protobuf_c_message_get_packed_size(&v.base);
  ck_assert_uint_le(len, cap);
  return protobuf_c_message_pack(&v.base, buf);
}

START_TEST(view_round_trip)
{
  uint8_t id[ID_NODE_SIZE], view[HB_UDP_VIEW_MAX], buf[HB_UDP_DGRAM_MAX];
  memset(id, 0x42, sizeof(id));
  const char *tokens[] = {"secret", NULL};
  for (int t = 0; t < 2; t++) {
    hb_udp_msg_t m = sample(HB_UDP_REPLY), out;
    m.flags = HB_UDP_F_VIEW | HB_UDP_F_VIEW_MORE;
    m.view = view;
    m.view_len = sample_view(view, sizeof(view), id, sizeof(id), 1);
    size_t len = hb_udp_encode(&m, tokens[t], buf);
    ck_assert_uint_eq(len, HB_UDP_BODY + m.view_len + (tokens[t] ? HB_UDP_MAC_LEN : 0));
    ck_assert_int_eq(hb_udp_decode(buf, len, tokens[t], &out), 0);
    ck_assert_int_eq(out.flags, m.flags);
    ck_assert_uint_eq(out.view_len, m.view_len);
    ck_assert_ptr_eq(out.view, buf + HB_UDP_BODY);
    ck_assert_int_eq(memcmp(out.view, view, m.view_len), 0);
    char why[200];
    Rayc__ClusterView *v = hb_udp_view_unpack(&out, why, sizeof(why));
    ck_assert_msg(v != NULL, "%s", why);
    ck_assert(v->delta && v->version == 1796489244731 && v->base_version == 1796489244725);
    ck_assert_uint_eq(v->n_nodes, 1);
    ck_assert_int_eq(memcmp(v->nodes[0]->node_id.data, id, ID_NODE_SIZE), 0);
    ck_assert(v->nodes[0]->resources_available[0]->amount == 1);
    ck_assert_uint_eq(v->n_removed, 1);
    pb_free(v);
  }
  /* the view may already sit where it goes (the GCS packs it there) */
  hb_udp_msg_t m = sample(HB_UDP_REPLY), out;
  m.flags = HB_UDP_F_VIEW;
  m.view = buf + HB_UDP_BODY;
  m.view_len = sample_view(buf + HB_UDP_BODY, HB_UDP_VIEW_MAX, id, sizeof(id), 1);
  size_t len = hb_udp_encode(&m, "secret", buf);
  ck_assert_int_eq(hb_udp_decode(buf, len, "secret", &out), 0);
  ck_assert_uint_eq(out.view_len, m.view_len);
}
END_TEST

/* Version 1 (a raylet or GCS of session 11) still travels, and never with a view. */
START_TEST(version1_travels_without_views)
{
  uint8_t buf[HB_UDP_DGRAM_MAX], view[8] = {8, 1};
  for (uint8_t kind = HB_UDP_REQUEST; kind <= HB_UDP_REPLY; kind++) {
    hb_udp_msg_t m = sample(kind), out;
    m.version = HB_UDP_VERSION1;
    size_t len = hb_udp_encode(&m, "secret", buf);
    ck_assert_uint_eq(len, HB_UDP_MAX);
    ck_assert_int_eq(buf[2], 1);
    ck_assert_int_eq(hb_udp_decode(buf, len, "secret", &out), 0);
    ck_assert_int_eq(memcmp(&m, &out, sizeof(m)), 0);
  }
  hb_udp_msg_t m = sample(HB_UDP_REPLY), out;
  m.version = HB_UDP_VERSION1;
  m.flags = HB_UDP_F_VIEW;
  m.view = view;
  m.view_len = 2;
  ck_assert_uint_eq(hb_udp_encode(&m, NULL, buf), 0);
  m.version = HB_UDP_VERSION;
  size_t len = hb_udp_encode(&m, NULL, buf);
  ck_assert_uint_eq(len, HB_UDP_BODY + 2);
  buf[2] = HB_UDP_VERSION1; /* a view in version 1 */
  ck_assert_int_eq(hb_udp_decode(buf, len, NULL, &out), HB_UDP_EFORMAT);
  buf[4] = 0, buf[6] = 0; /* no view flag, but a length byte left */
  buf[7] = 1;
  ck_assert_int_eq(hb_udp_decode(buf, HB_UDP_BODY, NULL, &out), HB_UDP_EFORMAT);
}
END_TEST

/* A view's length, flags and size must agree; a request carries none; nothing past the maximum. */
START_TEST(view_lengths_are_checked)
{
  uint8_t buf[HB_UDP_DGRAM_MAX + 64], view[HB_UDP_VIEW_MAX + 1];
  memset(view, 0, sizeof(view));
  hb_udp_msg_t m = sample(HB_UDP_REPLY), out;
  m.flags = HB_UDP_F_VIEW;
  m.view = view;
  m.view_len = HB_UDP_VIEW_MAX + 1;
  ck_assert_uint_eq(hb_udp_encode(&m, "secret", buf), 0); /* too long to go unfragmented */
  m.view_len = HB_UDP_VIEW_MAX;
  ck_assert_uint_eq(hb_udp_encode(&m, "secret", buf), HB_UDP_DGRAM_MAX);
  ck_assert_int_eq(hb_udp_decode(buf, HB_UDP_DGRAM_MAX, "secret", &out), 0);
  ck_assert_int_eq(hb_udp_decode(buf, HB_UDP_DGRAM_MAX + 1, "secret", &out), HB_UDP_ESIZE);
  m.view_len = 10;
  size_t len = hb_udp_encode(&m, "secret", buf);
  ck_assert_int_eq(hb_udp_decode(buf, len - 1, "secret", &out), HB_UDP_ESIZE); /* shorter than it says */
  ck_assert_int_eq(hb_udp_decode(buf, len + 1, "secret", &out), HB_UDP_ESIZE);
  len = hb_udp_encode(&m, NULL, buf);
  buf[6] = 200; /* says more than came */
  ck_assert_int_eq(hb_udp_decode(buf, len, NULL, &out), HB_UDP_ESIZE);
  buf[6] = 10, buf[4] = 0; /* a view without its flag */
  ck_assert_int_eq(hb_udp_decode(buf, len, NULL, &out), HB_UDP_EFORMAT);
  buf[4] = HB_UDP_F_VIEW_MORE; /* more of a view without one */
  ck_assert_int_eq(hb_udp_decode(buf, len, NULL, &out), HB_UDP_EFORMAT);
  buf[4] = HB_UDP_F_VIEW, buf[3] = HB_UDP_REQUEST; /* a request with a view */
  ck_assert_int_eq(hb_udp_decode(buf, len, NULL, &out), HB_UDP_EFORMAT);
  m.flags = HB_UDP_F_VIEW, m.view_len = 0; /* the flag without a view */
  ck_assert_uint_eq(hb_udp_encode(&m, NULL, buf), 0);
  m.flags = 0, m.view_len = 3;
  ck_assert_uint_eq(hb_udp_encode(&m, NULL, buf), 0);
}
END_TEST

/* What a reply's view may be: a delta that passes the request rules, ids of their size. */
START_TEST(view_unpack_refuses_bad_views)
{
  uint8_t id[ID_NODE_SIZE], view[HB_UDP_VIEW_MAX];
  memset(id, 7, sizeof(id));
  hb_udp_msg_t m = sample(HB_UDP_REPLY);
  m.flags = HB_UDP_F_VIEW;
  m.view = view;
  char why[200];
  m.view_len = sample_view(view, sizeof(view), id, sizeof(id), 1);
  Rayc__ClusterView *v = hb_udp_view_unpack(&m, why, sizeof(why));
  ck_assert_ptr_nonnull(v);
  pb_free(v);
  m.view_len = sample_view(view, sizeof(view), NULL, 0, 1); /* removals only: a node left */
  v = hb_udp_view_unpack(&m, why, sizeof(why));
  ck_assert_msg(v != NULL, "%s", why);
  ck_assert_uint_eq(v->n_nodes, 0);
  ck_assert_uint_eq(v->n_removed, 1);
  pb_free(v);
  m.view_len = sample_view(view, sizeof(view), id, sizeof(id), 0);
  ck_assert_ptr_null(hb_udp_view_unpack(&m, why, sizeof(why)));
  ck_assert_ptr_nonnull(strstr(why, "delta"));
  m.view_len = sample_view(view, sizeof(view), id, 5, 1);
  ck_assert_ptr_null(hb_udp_view_unpack(&m, why, sizeof(why)));
  m.view_len = sample_view(view, sizeof(view), id, 0, 1);
  ck_assert_ptr_null(hb_udp_view_unpack(&m, why, sizeof(why)));
  memset(view, 0xff, 40); /* not protobuf */
  m.view_len = 40;
  ck_assert_ptr_null(hb_udp_view_unpack(&m, why, sizeof(why)));
  m.view_len = sample_view(view, sizeof(view), id, sizeof(id), 1);
  size_t cut = m.view_len - ID_NODE_SIZE - 2; /* the removed id's field, re-made 3 bytes long */
  ck_assert_int_eq(view[cut], (6 << 3) | 2);
  view[cut + 1] = 3;
  m.view_len = cut + 5;
  ck_assert_ptr_null(hb_udp_view_unpack(&m, why, sizeof(why)));
  ck_assert_ptr_nonnull(strstr(why, "removed"));
  m.view_len = 0;
  ck_assert_ptr_null(hb_udp_view_unpack(&m, why, sizeof(why)));
}
END_TEST

START_TEST(every_byte_is_covered)
{
  hb_udp_msg_t m = sample(HB_UDP_REPLY), out;
  uint8_t buf[HB_UDP_DGRAM_MAX], view[HB_UDP_VIEW_MAX], id[ID_NODE_SIZE] = {1};
  m.flags |= HB_UDP_F_VIEW;
  m.view = view;
  m.view_len = sample_view(view, sizeof(view), id, sizeof(id), 1);
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
  const size_t at[] = {0, 1, 2, 3, 5, 6, 7}; /* 6, 7: a request's view length, 0 */
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
  /* version 1 (session 11's) first, then version 2: a reply with a view and HB_UDP_F_VIEW_MORE */
  const char *names[] = {"request_mac",    "reply_mac",         "request_plain",
                         "reply_plain_grpc", "request_v2_mac", "reply_v2_view_mac"};
  for (int i = 0; i < 6; i++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_hb_udp/%s", dir, names[i]);
    FILE *f = fopen(path, "rb");
    if (!f) /* run from elsewhere than the source tree */
      return;
    uint8_t buf[HB_UDP_DGRAM_MAX + 1];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    hb_udp_msg_t m, want = sample(i % 2 ? HB_UDP_REPLY : HB_UDP_REQUEST);
    ck_assert_int_eq(hb_udp_decode(buf, len, strstr(names[i], "mac") ? "fuzz-token" : NULL, &m), 0);
    ck_assert_int_eq(m.version, i < 4 ? HB_UDP_VERSION1 : HB_UDP_VERSION);
    ck_assert_int_eq(m.kind, want.kind);
    ck_assert_int_eq(memcmp(m.node, want.node, ID_NODE_SIZE), 0);
    ck_assert(m.nonce == want.nonce && m.seq == want.seq && m.a == want.a);
    ck_assert_int_eq(m.b, 1796489244725);
    if (i == 5) {
      char why[200];
      ck_assert_int_eq(m.flags, HB_UDP_F_VIEW | HB_UDP_F_VIEW_MORE);
      Rayc__ClusterView *v = hb_udp_view_unpack(&m, why, sizeof(why));
      ck_assert_msg(v != NULL, "%s", why);
      ck_assert(v->version == 1796489244730 && v->epoch == 1796489244720 && v->base_version == 1796489244725);
      ck_assert_uint_eq(v->n_nodes, 1);
      ck_assert_str_eq(v->nodes[0]->ip, "127.0.0.1");
      ck_assert_int_eq(v->nodes[0]->raylet_port, 40001);
      ck_assert_str_eq(v->nodes[0]->resources_total[0]->name, "CPU");
      ck_assert_uint_eq(v->n_removed, 1);
      ck_assert_int_eq(v->removed[0].data[0], 200);
      pb_free(v);
    }
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
  tcase_add_test(tc, view_round_trip);
  tcase_add_test(tc, version1_travels_without_views);
  tcase_add_test(tc, view_lengths_are_checked);
  tcase_add_test(tc, view_unpack_refuses_bad_views);
  tcase_add_test(tc, seeds_decode);
  tcase_add_test(tc, gcs_address_split);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
