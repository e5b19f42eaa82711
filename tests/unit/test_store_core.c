/*
 * Unit tests of the store's object logic (object-store/store_core.c) without sockets: the
 * create/seal/get/release/delete/abort rules, per-client references, disconnect cleanup, and the
 * seal hook.
 */
#include <check.h>
#include <string.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/status.h"
#include "object-store/store_core.h"

enum { CAP = 1 << 20, C1 = 1, C2 = 2 };

static int sealed_calls;

static void on_sealed(void *ctx, const store_obj_t *o)
{
  (void)o;
  ck_assert_ptr_eq(ctx, &sealed_calls);
  sealed_calls++;
}

static void make_id(uint8_t *id, int n)
{
  memset(id, 0, ID_OBJECT_SIZE);
  id[0] = (uint8_t)n;
  id[27] = 0x5a;
}

/* Creates and seals id of size bytes for client; returns its record. */
static store_obj_t *put(store_core_t *c, const uint8_t *id, uint64_t size, uint64_t client)
{
  store_obj_t *o;
  ck_assert_int_eq(store_core_create(c, id, size, 0, NULL, 0, client, &o), 0);
  ck_assert_int_eq(store_core_seal(c, id, client), 0);
  return o;
}

START_TEST(test_lifecycle)
{
  store_core_t c;
  uint8_t id[ID_OBJECT_SIZE];
  store_obj_t *o;
  store_core_init(&c, CAP, on_sealed, &sealed_calls);
  sealed_calls = 0;
  make_id(id, 1);
  ck_assert_int_eq(store_core_create(&c, id, 100, 28, "own", 3, C1, &o), 0);
  ck_assert_uint_eq(o->refs, 1);
  ck_assert_mem_eq(o->owner, "own", 3);
  ck_assert_int_eq(store_core_contains(&c, id), 0);
  ck_assert_ptr_null(store_core_get(&c, id, C2)); /* unsealed: invisible */
  ck_assert_int_eq(store_core_seal(&c, id, C2), RAYC_EINVALID_ARGUMENT); /* not the creator */
  ck_assert_int_eq(store_core_release_ref(&c, id, C1), RAYC_EINVALID_ARGUMENT); /* unsealed */
  ck_assert_int_eq(store_core_seal(&c, id, C1), 0);
  ck_assert_int_eq(sealed_calls, 1);
  ck_assert_int_eq(store_core_seal(&c, id, C1), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_abort(&c, id, C1), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_contains(&c, id), 1);
  ck_assert_ptr_eq(store_core_get(&c, id, C2), o);
  ck_assert_uint_eq(store_obj_refs_of(o, C2), 1);
  ck_assert_int_eq(store_core_release_ref(&c, id, C1), 0);
  ck_assert_int_eq(store_core_release_ref(&c, id, C1), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_release_ref(&c, id, C2), 0);
  ck_assert_uint_eq(o->refs, 0);
  ck_assert_uint_eq(store_core_num_objects(&c), 1); /* unreferenced objects stay until deleted */
  ck_assert_uint_eq(store_core_used(&c), 128);
  store_core_delete(&c, id);
  ck_assert_uint_eq(store_core_num_objects(&c), 0);
  ck_assert_uint_eq(store_core_used(&c), 0);
  ck_assert_int_eq(store_core_take_freed(&c), 1);
  ck_assert_int_eq(store_core_take_freed(&c), 0);
  ck_assert_int_eq(store_core_release_ref(&c, id, C1), RAYC_ENOT_FOUND);
  store_core_release(&c);
}
END_TEST

START_TEST(test_create_errors)
{
  store_core_t c;
  uint8_t id[ID_OBJECT_SIZE], id2[ID_OBJECT_SIZE];
  store_obj_t *o;
  store_core_init(&c, CAP, NULL, NULL);
  make_id(id, 1);
  make_id(id2, 2);
  put(&c, id, 10, C1);
  ck_assert_int_eq(store_core_create(&c, id, 10, 0, NULL, 0, C2, &o), RAYC_EALREADY_EXISTS);
  ck_assert_ptr_nonnull(strstr(store_core_error(&c), "already exists"));
  ck_assert_int_eq(store_core_create(&c, id2, UINT64_MAX, 1, NULL, 0, C1, &o), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_create(&c, id2, CAP + 1, 0, NULL, 0, C1, &o), RAYC_EOUT_OF_MEMORY);
  ck_assert_ptr_nonnull(strstr(store_core_error(&c), "1048577"));
  ck_assert_int_eq(store_core_can_ever_fit(&c, CAP - 64, 64), 1);
  ck_assert_int_eq(store_core_can_ever_fit(&c, CAP, 1), 0);
  ck_assert_int_eq(store_core_create(&c, id2, CAP - 63, 0, NULL, 0, C1, &o), RAYC_EOUT_OF_MEMORY);
  ck_assert_ptr_nonnull(strstr(store_core_error(&c), "64 used"));
  ck_assert_int_eq(store_core_seal(&c, id2, C1), RAYC_ENOT_FOUND);
  ck_assert_int_eq(store_core_abort(&c, id2, C1), RAYC_ENOT_FOUND);
  store_core_release(&c);
}
END_TEST

START_TEST(test_delete_while_referenced)
{
  store_core_t c;
  uint8_t id[ID_OBJECT_SIZE];
  store_core_init(&c, CAP, NULL, NULL);
  make_id(id, 3);
  put(&c, id, 1000, C1);
  ck_assert_ptr_nonnull(store_core_get(&c, id, C2));
  ck_assert_ptr_nonnull(store_core_get(&c, id, C2));
  store_core_delete(&c, id);
  ck_assert_int_eq(store_core_contains(&c, id), 0);    /* pending deletion: invisible */
  ck_assert_ptr_null(store_core_get(&c, id, C2));
  ck_assert_uint_eq(store_core_used(&c), 1024);       /* but still allocated */
  ck_assert_int_eq(store_core_release_ref(&c, id, C1), 0);
  ck_assert_int_eq(store_core_release_ref(&c, id, C2), 0);
  ck_assert_uint_eq(store_core_used(&c), 1024);
  ck_assert_int_eq(store_core_release_ref(&c, id, C2), 0); /* the last reference frees it */
  ck_assert_uint_eq(store_core_used(&c), 0);
  ck_assert_uint_eq(store_core_num_objects(&c), 0);
  store_core_delete(&c, id); /* absent: ignored */
  store_core_release(&c);
}
END_TEST

START_TEST(test_drop_client)
{
  store_core_t c;
  uint8_t a[ID_OBJECT_SIZE], b[ID_OBJECT_SIZE], d[ID_OBJECT_SIZE];
  store_obj_t *o;
  store_core_init(&c, CAP, NULL, NULL);
  make_id(a, 1);
  make_id(b, 2);
  make_id(d, 3);
  put(&c, a, 64, C1);                          /* sealed, C1 holds a reference */
  ck_assert_int_eq(store_core_create(&c, b, 64, 0, NULL, 0, C1, &o), 0); /* unsealed */
  put(&c, d, 64, C2);
  ck_assert_int_eq(store_core_release_ref(&c, d, C2), 0);
  ck_assert_ptr_nonnull(store_core_get(&c, d, C1));
  store_core_delete(&c, d);                    /* pending: C1 holds it */
  ck_assert_uint_eq(store_core_used(&c), 192);
  store_core_drop_client(&c, C1);
  ck_assert_ptr_null(store_table_find(&c.table, b)); /* aborted */
  ck_assert_ptr_null(store_table_find(&c.table, d)); /* freed with its last reference */
  o = store_table_find(&c.table, a);
  ck_assert_ptr_nonnull(o);                          /* kept, unreferenced */
  ck_assert_uint_eq(o->refs, 0);
  ck_assert_uint_eq(store_core_used(&c), 64);
  store_core_drop_client(&c, C2);
  ck_assert_uint_eq(store_core_used(&c), 64);
  store_core_release(&c);
}
END_TEST

START_TEST(test_abort_and_reuse)
{
  store_core_t c;
  uint8_t id[ID_OBJECT_SIZE];
  store_obj_t *o;
  store_core_init(&c, CAP, on_sealed, &sealed_calls);
  sealed_calls = 0;
  make_id(id, 9);
  ck_assert_int_eq(store_core_create(&c, id, CAP, 0, NULL, 0, C1, &o), 0);
  ck_assert_int_eq(store_core_abort(&c, id, C2), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_abort(&c, id, C1), 0);
  ck_assert_uint_eq(store_core_used(&c), 0);
  ck_assert_int_eq(store_core_create(&c, id, CAP, 0, NULL, 0, C2, &o), 0); /* the id is free again */
  store_core_delete(&c, id);                                             /* creator still holds it */
  ck_assert_int_eq(store_core_seal(&c, id, C2), 0);
  ck_assert_int_eq(sealed_calls, 0); /* sealed while pending deletion: nobody is woken */
  ck_assert_int_eq(store_core_release_ref(&c, id, C2), 0);
  ck_assert_uint_eq(store_core_num_objects(&c), 0);
  store_core_release(&c);
}
END_TEST

int main(void)
{
  log_init("test_store_core", LOG_WARN);
  Suite *s = suite_create("store_core");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_lifecycle);
  tcase_add_test(tc, test_create_errors);
  tcase_add_test(tc, test_delete_while_referenced);
  tcase_add_test(tc, test_drop_client);
  tcase_add_test(tc, test_abort_and_reuse);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
