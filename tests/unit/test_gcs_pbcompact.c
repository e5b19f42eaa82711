/*
 * Compact protobuf copies (gcs/gcs_pbcompact.c): a copy in one heap block reads back exactly as the
 * original (same packed bytes), is freed by free() alone (ASan/LeakSanitizer check the rest), takes
 * less heap than protobuf-c's block-per-part copy, survives messages with many repeated entries
 * (protobuf-c's own scratch allocations during unpack), and bytes that do not parse give NULL.
 */
#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb.h"
#include "common/util.h"
#include "gcs/gcs_store.h"
#include "proto/gcs.pb-c.h"

/* A NodeInfo as a raylet registers it, with nres resources and two labels. Free with node_free. */
static Rayc__NodeInfo *node_make(size_t nres)
{
  Rayc__NodeInfo *n = xmalloc(sizeof(*n));
  rayc__node_info__init(n);
  n->node_id.len = 28;
  n->node_id.data = xmalloc(28);
  memset(n->node_id.data, 7, 28);
  n->ip = xstrdup("127.0.0.1");
  n->raylet_socket = xstrdup("/tmp/rayc/session_x/sockets/raylet");
  n->store_socket = xstrdup("/tmp/rayc/session_x/sockets/plasma_store");
  n->session_dir = xstrdup("/tmp/rayc/session_x");
  n->hostname = xstrdup("host-1");
  n->raylet_port = 40001;
  n->n_resources_total = nres;
  n->resources_total = xcalloc(nres, sizeof(*n->resources_total));
  for (size_t i = 0; i < nres; i++) {
    n->resources_total[i] = xmalloc(sizeof(Rayc__ResourceEntry));
    rayc__resource_entry__init(n->resources_total[i]);
    n->resources_total[i]->name = xasprintf("res_%zu", i);
    n->resources_total[i]->amount = (double)i + 0.5;
  }
  n->n_labels = 2;
  n->labels = xcalloc(2, sizeof(*n->labels));
  for (int i = 0; i < 2; i++) {
    n->labels[i] = xmalloc(sizeof(Rayc__Label));
    rayc__label__init(n->labels[i]);
    n->labels[i]->key = xasprintf("k%d", i);
    n->labels[i]->value = xasprintf("v%d", i);
  }
  return n;
}

static void node_free(Rayc__NodeInfo *n)
{
  free(n->node_id.data);
  free(n->ip);
  free(n->raylet_socket);
  free(n->store_socket);
  free(n->session_dir);
  free(n->hostname);
  for (size_t i = 0; i < n->n_resources_total; i++) {
    free(n->resources_total[i]->name);
    free(n->resources_total[i]);
  }
  free(n->resources_total);
  for (size_t i = 0; i < n->n_labels; i++) {
    free(n->labels[i]->key);
    free(n->labels[i]->value);
    free(n->labels[i]);
  }
  free(n->labels);
  free(n);
}

/* 1 when a and b pack to the same bytes. */
static int same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
  size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
  if (la != lb)
    return 0;
  uint8_t *pa = xmalloc(la + 1), *pb = xmalloc(lb + 1);
  protobuf_c_message_pack(a, pa);
  protobuf_c_message_pack(b, pb);
  int same = memcmp(pa, pb, la) == 0;
  free(pa);
  free(pb);
  return same;
}

START_TEST(test_compact_same_message)
{
  for (size_t nres = 0; nres <= 200; nres += nres < 8 ? 1 : 48) { /* > 16 members: unpack's scratch slabs */
    Rayc__NodeInfo *n = node_make(nres);
    Rayc__NodeInfo *c = (Rayc__NodeInfo *)gcs_pb_dup_compact(&n->base);
    ck_assert_ptr_nonnull(c);
    ck_assert(same_packed(&n->base, &c->base));
    ck_assert_str_eq(c->session_dir, "/tmp/rayc/session_x");
    ck_assert_uint_eq(c->n_resources_total, nres);
    if (nres)
      ck_assert_str_eq(c->resources_total[nres - 1]->name, n->resources_total[nres - 1]->name);
    ck_assert_str_eq(c->labels[1]->value, "v1");
    /* Nested: a PubMessage carrying the node, as the NODE channel keeps it. */
    Rayc__PubMessage m = RAYC__PUB_MESSAGE__INIT;
    m.channel = RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE;
    m.node = n;
    Rayc__PubMessage *mc = (Rayc__PubMessage *)gcs_pb_dup_compact(&m.base);
    ck_assert(same_packed(&m.base, &mc->base));
    ck_assert_ptr_nonnull(mc->node);
    ck_assert_str_eq(mc->node->ip, "127.0.0.1");
    free(mc);
    free(c); /* the whole copy: LeakSanitizer reports anything left */
    node_free(n);
  }
}
END_TEST

#define COPIES 500 /* many, so that freed scratch in malloc's per-thread caches weighs little */

START_TEST(test_compact_smaller)
{
  Rayc__NodeInfo *n = node_make(5);
  static ProtobufCMessage *plain[COPIES], *compact[COPIES];
  struct mallinfo2 m0 = mallinfo2();
  for (int i = 0; i < COPIES; i++)
    plain[i] = gcs_pb_dup(&n->base);
  struct mallinfo2 m1 = mallinfo2();
  for (int i = 0; i < COPIES; i++)
    compact[i] = gcs_pb_dup_compact(&n->base);
  struct mallinfo2 m2 = mallinfo2();
  size_t plain_bytes = (m1.uordblks - m0.uordblks) / COPIES, compact_bytes = (m2.uordblks - m1.uordblks) / COPIES;
  fprintf(stderr, "NodeInfo copy: %zu B in protobuf-c's blocks, %zu B compact\n", plain_bytes, compact_bytes);
#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator does not keep glibc's counts */
  ck_assert_uint_lt(compact_bytes, plain_bytes);
#endif
  for (int i = 0; i < COPIES; i++) {
    pb_free(plain[i]);
    free(compact[i]);
  }
  node_free(n);
}
END_TEST

START_TEST(test_compact_garbage)
{
  const uint8_t bad[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01}; /* a length past the end */
  ck_assert_ptr_null(gcs_pb_unpack_compact(&rayc__node_info__descriptor, sizeof(bad), bad));
  Rayc__NodeInfo *e = (Rayc__NodeInfo *)gcs_pb_unpack_compact(&rayc__node_info__descriptor, 0, bad);
  ck_assert_ptr_nonnull(e); /* no bytes: every field default */
  ck_assert_str_eq(e->ip, "");
  free(e);
}
END_TEST

int main(void)
{
  Suite *su = suite_create("gcs_pbcompact");
  TCase *tc = tcase_create("compact");
  tcase_add_test(tc, test_compact_same_message);
  tcase_add_test(tc, test_compact_smaller);
  tcase_add_test(tc, test_compact_garbage);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
