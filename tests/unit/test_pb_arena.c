/* Unit tests for common/pb_arena.c: messages unpacked into an arena read back exactly as with
 * protobuf-c's own allocator, across several blocks, and a malformed one fails cleanly. */
#include "common/pb.h"
#include "common/util.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NRET = 60, DATA = 3000 };

/* A reply with NRET returns (ids, DATA bytes of data, an error on every 7th) and an error text,
 * packed; free(). */
static uint8_t *packed_reply(size_t *len)
{
  Rayc__PushTaskReply rep = RAYC__PUSH_TASK_REPLY__INIT;
  Rayc__ReturnObject ro[NRET], *rp[NRET];
  Rayc__ErrorInfo err = RAYC__ERROR_INFO__INIT;
  static uint8_t ids[NRET][28], data[DATA];
  err.message = (char *)"it failed";
  err.function_name = (char *)"f";
  for (size_t i = 0; i < DATA; i++)
    data[i] = (uint8_t)(i * 13);
  for (int i = 0; i < NRET; i++) {
    rayc__return_object__init(&ro[i]);
    memset(ids[i], i + 1, sizeof(ids[i]));
    ro[i].object_id = pb_bytes(ids[i], sizeof(ids[i]));
    ro[i].data = pb_bytes(data, (size_t)(i * 50 % DATA));
    ro[i].error = i % 7 == 0 ? &err : NULL;
    rp[i] = &ro[i];
  }
  rep.returns = rp;
  rep.n_returns = NRET;
  rep.push_error_message = (char *)"no error";
  *len = rayc__push_task_reply__get_packed_size(&rep);
  uint8_t *buf = xmalloc(*len);
  ck_assert_uint_eq(rayc__push_task_reply__pack(&rep, buf), *len);
  return buf;
}

START_TEST(test_unpack_reads_back)
{
  size_t len;
  uint8_t *buf = packed_reply(&len);
  pb_arena_t arena;
  pb_arena_init(&arena, 0); /* the smallest first block: the reply spans several */
  for (int round = 0; round < 3; round++) {
    Rayc__PushTaskReply *r = rayc__push_task_reply__unpack(&arena.alloc, len, buf);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->n_returns, NRET);
    ck_assert_str_eq(r->push_error_message, "no error");
    for (int i = 0; i < NRET; i++) {
      const Rayc__ReturnObject *o = r->returns[i];
      ck_assert_uint_eq(o->object_id.len, 28);
      ck_assert_int_eq(o->object_id.data[27], i + 1);
      ck_assert_uint_eq(o->data.len, (size_t)(i * 50 % DATA));
      for (size_t k = 0; k < o->data.len; k++)
        ck_assert_int_eq(o->data.data[k], (uint8_t)(k * 13));
      ck_assert_int_eq(o->error != NULL, i % 7 == 0);
      if (o->error)
        ck_assert_str_eq(o->error->message, "it failed");
    }
  }
  ck_assert_ptr_nonnull(arena.blocks); /* ~90 KB a round, from a first block of 4 KB: several */
  pb_arena_release(&arena);
  ck_assert_ptr_null(arena.blocks);
  free(buf);
}
END_TEST

START_TEST(test_malformed_fails)
{
  size_t len;
  uint8_t *buf = packed_reply(&len);
  pb_arena_t arena;
  pb_arena_init(&arena, 4 * len);
  ck_assert_ptr_null(rayc__push_task_reply__unpack(&arena.alloc, len / 2, buf)); /* cut in a field */
  uint8_t junk[64];
  memset(junk, 0xff, sizeof(junk));
  ck_assert_ptr_null(rayc__push_task_reply__unpack(&arena.alloc, sizeof(junk), junk));
  pb_arena_release(&arena); /* what the failed unpacks took goes here */
  pb_arena_release(&arena); /* twice: nothing left */
  free(buf);
}
END_TEST

START_TEST(test_sizes_aligned)
{
  pb_arena_t arena;
  pb_arena_init(&arena, 0);
  void *prev = NULL;
  for (size_t n = 0; n < 9000; n += 37) {
    void *p = arena.alloc.alloc(arena.alloc.allocator_data, n % 5 == 0 ? 0 : n);
    ck_assert_ptr_nonnull(p); /* a zero-size request too: protobuf-c takes NULL as out of memory */
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    ck_assert_ptr_ne(p, prev);
    memset(p, 0xab, n % 5 == 0 ? 0 : n);
    arena.alloc.free(arena.alloc.allocator_data, p);
    prev = p;
  }
  pb_arena_release(&arena);
}
END_TEST

static Suite *arena_suite(void)
{
  Suite *s = suite_create("pb_arena");
  TCase *tc = tcase_create("arena");
  tcase_add_test(tc, test_unpack_reads_back);
  tcase_add_test(tc, test_malformed_fails);
  tcase_add_test(tc, test_sizes_aligned);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(arena_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
