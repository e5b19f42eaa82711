/* Unit tests for common/ids.c: hex encoding, randomness and the ObjectID <-> TaskID relation;
 * and common/hmap.c's id maps (hmap_init_ids). */
#include "common/hmap.h"
#include "common/ids.h"
#include "common/status.h"

#include <check.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(test_hex_round_trip)
{
  uint8_t id[ID_MAX_SIZE], back[ID_MAX_SIZE];
  char hex[2 * ID_MAX_SIZE + 1];
  for (size_t len = 1; len <= ID_MAX_SIZE; len++) {
    id_random(id, len);
    ck_assert_ptr_eq(id_hex(id, len, hex), hex);
    ck_assert_uint_eq(strlen(hex), 2 * len);
    for (size_t i = 0; i < 2 * len; i++)
      ck_assert(strchr("0123456789abcdef", hex[i]) != NULL); /* lowercase */
    memset(back, 0, sizeof(back));
    ck_assert_int_eq(id_from_hex(hex, back, len), 0);
    ck_assert_mem_eq(back, id, len);
  }
  uint8_t known[4] = {0x00, 0x1f, 0xa0, 0xff};
  ck_assert_str_eq(id_hex(known, 4, hex), "001fa0ff");
  ck_assert_int_eq(id_from_hex("001FA0FF", back, 4), 0); /* upper case is accepted on input */
  ck_assert_mem_eq(back, known, 4);
}
END_TEST

START_TEST(test_bad_hex)
{
  uint8_t id[4];
  ck_assert_int_eq(id_from_hex("", id, 4), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(id_from_hex("0011223", id, 4), RAYC_EINVALID_ARGUMENT);   /* short */
  ck_assert_int_eq(id_from_hex("001122334", id, 4), RAYC_EINVALID_ARGUMENT); /* long */
  ck_assert_int_eq(id_from_hex("0011223g", id, 4), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(id_from_hex("00 11223", id, 4), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(id_from_hex("-0112233", id, 4), RAYC_EINVALID_ARGUMENT);
}
END_TEST

START_TEST(test_short)
{
  uint8_t id[ID_NODE_SIZE];
  char full[2 * ID_NODE_SIZE + 1], s[9];
  id_random(id, sizeof(id));
  id_hex(id, sizeof(id), full);
  full[8] = '\0';
  ck_assert_str_eq(id_short(id, sizeof(id), s), full);
}
END_TEST

START_TEST(test_object_task_relation)
{
  id_job_t job = id_job_from_int(7);
  ck_assert_mem_eq(job.b, "\x00\x00\x00\x07", 4);
  id_task_t t = id_task_random(job);
  ck_assert_mem_eq(t.b + ID_TASK_SIZE - ID_JOB_SIZE, job.b, ID_JOB_SIZE); /* task names its job */
  static const uint32_t idx[] = {1, 2, 255, 256, 0x12345678, ID_PUT_INDEX_FLAG | 3};
  for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
    id_object_t o = id_object_for_task(t, idx[i]);
    id_task_t back = id_object_task(&o);
    ck_assert_mem_eq(back.b, t.b, ID_TASK_SIZE);
    ck_assert_uint_eq(id_object_index(&o), idx[i]);
  }
  id_object_t o = id_object_for_task(t, 0x01020304);
  ck_assert_mem_eq(o.b + ID_TASK_SIZE, "\x04\x03\x02\x01", 4); /* little-endian index */
  id_object_t put = id_object_for_task(t, ID_PUT_INDEX_FLAG | 1);
  ck_assert(id_object_index(&put) & ID_PUT_INDEX_FLAG);
}
END_TEST

START_TEST(test_random_and_nil)
{
  id_node_t a = id_node_random(), b = id_node_random();
  ck_assert(memcmp(a.b, b.b, ID_NODE_SIZE) != 0);
  id_worker_t w1 = id_worker_random(), w2 = id_worker_random();
  ck_assert(memcmp(w1.b, w2.b, ID_WORKER_SIZE) != 0);
  id_task_t t1 = id_task_random(id_job_from_int(1)), t2 = id_task_random(id_job_from_int(1));
  ck_assert(memcmp(t1.b, t2.b, ID_TASK_SIZE) != 0);
  ck_assert(!id_is_nil(a.b, ID_NODE_SIZE));
  uint8_t zero[ID_MAX_SIZE] = {0};
  ck_assert(id_is_nil(zero, sizeof(zero)));
  zero[ID_MAX_SIZE - 1] = 1;
  ck_assert(!id_is_nil(zero, sizeof(zero)));
  ck_assert(id_is_nil(zero, 0));
}
END_TEST

/* Ids come from a per-thread block of random bytes: many in a row are all different, and a
 * forked child (the zygote forks workers) never hands out the ids its parent will. */
START_TEST(test_random_block_and_fork)
{
  enum { N = 200 };
  static id_task_t ts[N];
  for (int i = 0; i < N; i++)
    ts[i] = id_task_random(id_job_from_int(1));
  for (int i = 0; i < N; i++)
    for (int k = i + 1; k < N; k++)
      ck_assert_msg(memcmp(ts[i].b, ts[k].b, ID_TASK_SIZE) != 0, "ids %d and %d are equal", i, k);
  id_task_t first = id_task_random(id_job_from_int(1)); /* the block is partly used now */
  (void)first;
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    id_task_t c = id_task_random(id_job_from_int(1));
    _exit(write(fds[1], c.b, ID_TASK_SIZE) == ID_TASK_SIZE ? 0 : 1);
  }
  id_task_t p = id_task_random(id_job_from_int(1)), c;
  ck_assert_int_eq(read(fds[0], c.b, ID_TASK_SIZE), ID_TASK_SIZE);
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ck_assert_msg(memcmp(p.b, c.b, ID_TASK_SIZE) != 0, "the forked child made its parent's next id");
  close(fds[0]);
  close(fds[1]);
}
END_TEST

/* An id map (hashed 8 bytes at a time) holds what it is given: object ids of one task (differing
 * only in the index), of random tasks, and keys of every length up to 40 bytes (the tail that is
 * not a whole word counts: keys differing only there are distinct); and the buckets spread ids
 * that differ in one byte. */
START_TEST(test_hmap_ids)
{
  hmap_t m;
  hmap_init_ids(&m);
  enum { N = 20000 };
  static id_object_t ids[N];
  id_task_t t = id_task_random(id_job_from_int(7));
  for (uint32_t i = 0; i < N; i++) {
    ids[i] = i % 2 ? id_object_for_task(t, i) : id_object_for_task(id_task_random(id_job_from_int(7)), 1);
    ck_assert_ptr_null(hmap_put(&m, ids[i].b, ID_OBJECT_SIZE, &ids[i]));
  }
  ck_assert_uint_eq(m.count, N);
  for (uint32_t i = 0; i < N; i++)
    ck_assert_ptr_eq(hmap_get(&m, ids[i].b, ID_OBJECT_SIZE), &ids[i]);
  for (uint32_t i = 0; i < N; i += 3)
    ck_assert_ptr_eq(hmap_del(&m, ids[i].b, ID_OBJECT_SIZE), &ids[i]);
  for (uint32_t i = 0; i < N; i++)
    ck_assert_ptr_eq(hmap_get(&m, ids[i].b, ID_OBJECT_SIZE), i % 3 ? &ids[i] : NULL);
  size_t seen = 0;
  for (hmap_iter_t it = hmap_iter(&m); hmap_next(&it);)
    seen++;
  ck_assert_uint_eq(seen, m.count);
  hmap_release(&m);

  uint8_t key[40] = {0};
  static int vals[41 * 256];
  hmap_init_ids(&m);
  for (size_t len = 1; len <= sizeof(key); len++)
    for (int b = 0; b < 256; b++) {
      key[len - 1] = (uint8_t)b; /* the last byte of each length */
      ck_assert_ptr_null(hmap_put(&m, key, len, &vals[len * 256 + (size_t)b]));
      key[len - 1] = 0;
    }
  for (size_t len = 1; len <= sizeof(key); len++)
    for (int b = 0; b < 256; b++) {
      key[len - 1] = (uint8_t)b;
      ck_assert_ptr_eq(hmap_get(&m, key, len), &vals[len * 256 + (size_t)b]);
      key[len - 1] = 0;
    }
  hmap_release(&m);

  uint64_t low[64] = {0}; /* one byte changed: the low bits (the bucket) still vary */
  id_object_t o = ids[1];
  for (int b = 0; b < 256; b++) {
    o.b[ID_OBJECT_SIZE - 1] = (uint8_t)b;
    low[hmap_hash_words(o.b, ID_OBJECT_SIZE) & 63]++;
  }
  for (int i = 0; i < 64; i++)
    ck_assert_uint_lt(low[i], 20);
}
END_TEST


static Suite *ids_suite(void)
{
  Suite *s = suite_create("ids");
  TCase *tc = tcase_create("ids");
  tcase_add_test(tc, test_hex_round_trip);
  tcase_add_test(tc, test_bad_hex);
  tcase_add_test(tc, test_short);
  tcase_add_test(tc, test_object_task_relation);
  tcase_add_test(tc, test_random_and_nil);
  tcase_add_test(tc, test_random_block_and_fork);
  tcase_add_test(tc, test_hmap_ids);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(ids_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
