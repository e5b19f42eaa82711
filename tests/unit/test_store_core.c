/*
 * Unit tests of the store's object logic (object-store/store_core.c, store_evict.c) without
 * sockets or files: the create/seal/get/release/delete/abort rules, per-client references,
 * disconnect cleanup, the seal hook, eviction order (LRU of droppable copies), and the
 * bookkeeping of spilling and restoring (fused files, deletion while I/O runs). A randomized run
 * checks the invariants (byte counts, lists, allocator) after every step against a recount.
 */
#include <check.h>
#include <stdlib.h>
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
  ck_assert_int_eq(store_core_create(c, id, size, 0, NULL, 0, client, 0, &o), 0);
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
  ck_assert_int_eq(store_core_create(&c, id, 100, 28, "own", 3, C1, 0, &o), 0);
  ck_assert_uint_eq(o->refs, 1);
  ck_assert_mem_eq(o->owner, "own", 3);
  ck_assert_int_eq(store_core_contains(&c, id), 0);
  ck_assert_ptr_null(store_core_get(&c, id, C2));                               /* unsealed: invisible */
  ck_assert_int_eq(store_core_seal(&c, id, C2), RAYC_EINVALID_ARGUMENT);        /* not the creator */
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
  ck_assert_int_eq(store_core_create(&c, id, 10, 0, NULL, 0, C2, 0, &o), RAYC_EALREADY_EXISTS);
  ck_assert_ptr_nonnull(strstr(store_core_error(&c), "already exists"));
  ck_assert_int_eq(store_core_create(&c, id2, UINT64_MAX, 1, NULL, 0, C1, 0, &o), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_create(&c, id2, CAP + 1, 0, NULL, 0, C1, 0, &o), RAYC_EOUT_OF_MEMORY);
  ck_assert_ptr_nonnull(strstr(store_core_error(&c), "1048577"));
  ck_assert_int_eq(store_core_can_ever_fit(&c, CAP - 64, 64), 1);
  ck_assert_int_eq(store_core_can_ever_fit(&c, CAP, 1), 0);
  ck_assert_int_eq(store_core_create(&c, id2, CAP - 63, 0, NULL, 0, C1, 0, &o), RAYC_EOUT_OF_MEMORY);
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
  ck_assert_int_eq(store_core_contains(&c, id), 0); /* pending deletion: invisible */
  ck_assert_ptr_null(store_core_get(&c, id, C2));
  ck_assert_uint_eq(store_core_used(&c), 1024); /* but still allocated */
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
  put(&c, a, 64, C1);                                                       /* sealed, C1 holds a reference */
  ck_assert_int_eq(store_core_create(&c, b, 64, 0, NULL, 0, C1, 0, &o), 0); /* unsealed */
  put(&c, d, 64, C2);
  ck_assert_int_eq(store_core_release_ref(&c, d, C2), 0);
  ck_assert_ptr_nonnull(store_core_get(&c, d, C1));
  store_core_delete(&c, d); /* pending: C1 holds it */
  ck_assert_uint_eq(store_core_used(&c), 192);
  store_core_drop_client(&c, C1);
  ck_assert_ptr_null(store_table_find(&c.table, b)); /* aborted */
  ck_assert_ptr_null(store_table_find(&c.table, d)); /* freed with its last reference */
  o = store_table_find(&c.table, a);
  ck_assert_ptr_nonnull(o); /* kept, unreferenced */
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
  ck_assert_int_eq(store_core_create(&c, id, CAP, 0, NULL, 0, C1, 0, &o), 0);
  ck_assert_int_eq(store_core_abort(&c, id, C2), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_core_abort(&c, id, C1), 0);
  ck_assert_uint_eq(store_core_used(&c), 0);
  ck_assert_int_eq(store_core_create(&c, id, CAP, 0, NULL, 0, C2, 0, &o), 0); /* the id is free again */
  store_core_delete(&c, id);                                                  /* creator still holds it */
  ck_assert_int_eq(store_core_seal(&c, id, C2), 0);
  ck_assert_int_eq(sealed_calls, 0); /* sealed while pending deletion: nobody is woken */
  ck_assert_int_eq(store_core_release_ref(&c, id, C2), 0);
  ck_assert_uint_eq(store_core_num_objects(&c), 0);
  store_core_release(&c);
}
END_TEST

/* ---- invariants ---- */

/* Recounts everything c->st and the lists claim from the table and compares. */
static void check_invariants(store_core_t *c)
{
  store_core_stats_t st = {0};
  uint64_t used = 0, nev = 0, nsp = 0;
  for (hmap_iter_t it = hmap_iter(&c->table.map); hmap_next(&it);) {
    const store_obj_t *o = it.value;
    uint64_t size = store_obj_size(o);
    if (store_obj_state_in_memory(o->state)) {
      st.num_in_memory++;
      *(o->secondary ? &st.bytes_secondary : &st.bytes_primary) += size;
      used += store_alloc_round(size);
    }
    if (o->spill_file) {
      st.num_on_disk++;
      st.bytes_on_disk += size;
    }
    st.num_spilled_only += o->state == STORE_OBJ_SPILLED;
    if (o->state == STORE_OBJ_SEALED && !o->secondary && !o->spill_file)
      st.bytes_unspilled_primary += size;
    if (o->state == STORE_OBJ_SPILLING)
      st.bytes_spilling += size;
    int want = o->state == STORE_OBJ_SEALED && !o->refs && !o->delete_pending
                   ? (o->secondary || o->spill_file ? STORE_LIST_EVICTABLE : STORE_LIST_SPILLABLE)
                   : STORE_LIST_NONE;
    ck_assert_int_eq(o->list, want);
    nev += o->list == STORE_LIST_EVICTABLE;
    nsp += o->list == STORE_LIST_SPILLABLE;
  }
  ck_assert_uint_eq(st.num_in_memory, c->st.num_in_memory);
  ck_assert_uint_eq(st.bytes_primary, c->st.bytes_primary);
  ck_assert_uint_eq(st.bytes_secondary, c->st.bytes_secondary);
  ck_assert_uint_eq(st.num_on_disk, c->st.num_on_disk);
  ck_assert_uint_eq(st.bytes_on_disk, c->st.bytes_on_disk);
  ck_assert_uint_eq(st.num_spilled_only, c->st.num_spilled_only);
  ck_assert_uint_eq(st.bytes_unspilled_primary, c->st.bytes_unspilled_primary);
  ck_assert_uint_eq(st.bytes_spilling, c->st.bytes_spilling);
  ck_assert_uint_eq(used, store_core_used(c));
  ck_assert_uint_eq(nev, c->evictable.count);
  ck_assert_uint_eq(nsp, c->spillable.count);
  ck_assert_int_eq(store_alloc_check(c->alloc, NULL), 0);
}

/* ---- eviction ---- */

static store_obj_t *put_flags(store_core_t *c, const uint8_t *id, uint64_t size, unsigned flags)
{
  store_obj_t *o;
  ck_assert_int_eq(store_core_create(c, id, size, 0, NULL, 0, C1, flags, &o), 0);
  ck_assert_int_eq(store_core_seal(c, id, C1), 0);
  ck_assert_int_eq(store_core_release_ref(c, id, C1), 0);
  return o;
}

START_TEST(test_evicts_secondary_copies_lru)
{
  store_core_t c;
  uint8_t a[ID_OBJECT_SIZE], b[ID_OBJECT_SIZE], d[ID_OBJECT_SIZE], p[ID_OBJECT_SIZE], q[ID_OBJECT_SIZE];
  store_obj_t *o;
  store_core_init(&c, 4 * 1024, NULL, NULL);
  make_id(a, 1), make_id(b, 2), make_id(d, 3), make_id(p, 4), make_id(q, 5);
  put_flags(&c, a, 1024, STORE_CREATE_SECONDARY);
  put_flags(&c, b, 1024, STORE_CREATE_SECONDARY);
  put_flags(&c, d, 1024, STORE_CREATE_SECONDARY);
  ck_assert_uint_eq(c.evictable.count, 3);
  ck_assert_ptr_nonnull(store_core_get(&c, a, C2)); /* a used last: now b is least recently used */
  ck_assert_int_eq(store_core_release_ref(&c, a, C2), 0);
  put_flags(&c, p, 1024, 0);                                                  /* fits in the last free KiB */
  ck_assert_int_eq(store_core_create(&c, q, 1024, 0, NULL, 0, C1, 0, &o), 0); /* evicts b */
  ck_assert_ptr_null(store_table_find(&c.table, b));
  ck_assert_ptr_nonnull(store_table_find(&c.table, a));
  ck_assert_ptr_nonnull(store_table_find(&c.table, d));
  ck_assert_uint_eq(c.st.evicted_objects, 1);
  check_invariants(&c);
  ck_assert_ptr_nonnull(store_core_get(&c, d, C2)); /* referenced: not evictable */
  uint8_t r[ID_OBJECT_SIZE];
  make_id(r, 6);
  ck_assert_int_eq(store_core_create(&c, r, 1024, 0, NULL, 0, C1, 0, &o), 0); /* evicts a, not d */
  ck_assert_ptr_null(store_table_find(&c.table, a));
  ck_assert_ptr_nonnull(store_table_find(&c.table, d));
  uint8_t t[ID_OBJECT_SIZE];
  make_id(t, 7); /* d is referenced and the rest are primaries without disk copies: no room */
  ck_assert_int_eq(store_core_create(&c, t, 1024, 0, NULL, 0, C1, 0, &o), RAYC_EOUT_OF_MEMORY);
  ck_assert_ptr_nonnull(strstr(store_core_error(&c), "1024 bytes"));
  check_invariants(&c);
  store_core_release(&c);
}
END_TEST

/* A large create evicts as many small copies as it needs, oldest first, and nothing when even all
 * of them would not be enough. */
START_TEST(test_evicts_enough_for_a_large_create)
{
  store_core_t c;
  uint8_t id[ID_OBJECT_SIZE];
  store_obj_t *o;
  store_core_init(&c, 8 * 1024, NULL, NULL);
  for (int i = 0; i < 8; i++) {
    make_id(id, 10 + i);
    put_flags(&c, id, 1024, i < 4 ? STORE_CREATE_SECONDARY : 0);
  }
  make_id(id, 40);
  ck_assert_int_eq(store_core_create(&c, id, 5 * 1024, 0, NULL, 0, C1, 0, &o), RAYC_EOUT_OF_MEMORY);
  ck_assert_uint_eq(c.st.evicted_objects, 0); /* 4 KiB evictable cannot make 5 KiB */
  ck_assert_int_eq(store_core_create(&c, id, 3 * 1024, 0, NULL, 0, C1, 0, &o), 0);
  ck_assert_uint_eq(c.st.evicted_objects, 3);
  make_id(id, 13);
  ck_assert_ptr_nonnull(store_table_find(&c.table, id)); /* the most recent secondary survives */
  check_invariants(&c);
  store_core_release(&c);
}
END_TEST

/* ---- spilling bookkeeping ---- */

static int files_unused;
static store_spill_file_t *last_unused;

static void on_file_unused(void *ctx, store_spill_file_t *f)
{
  (void)ctx;
  files_unused++;
  last_unused = f;
  store_spill_file_destroy(f);
}

START_TEST(test_spill_evict_restore)
{
  store_core_t c;
  uint8_t id[4][ID_OBJECT_SIZE], x[ID_OBJECT_SIZE];
  store_obj_t *objs[8], *o;
  store_core_init(&c, 4 * 1024, NULL, NULL);
  c.on_file_unused = on_file_unused;
  files_unused = 0;
  for (int i = 0; i < 4; i++) {
    make_id(id[i], 20 + i);
    put_flags(&c, id[i], 1000, 0);
  }
  ck_assert_uint_eq(c.spillable.count, 4);
  make_id(x, 30);
  ck_assert_int_eq(store_core_create(&c, x, 1000, 0, NULL, 0, C1, 0, &o), RAYC_EOUT_OF_MEMORY);
  /* Fuse the three least recently used into one file. */
  size_t n = store_core_spill_pick(&c, 3000, 8, objs);
  ck_assert_uint_eq(n, 3);
  ck_assert_ptr_eq(objs[0], store_table_find(&c.table, id[0]));
  ck_assert_int_eq(objs[0]->state, STORE_OBJ_SPILLING);
  ck_assert_int_eq(store_core_contains(&c, id[0]), 1); /* still readable while it spills */
  ck_assert_uint_eq(c.st.bytes_spilling, 3000);
  check_invariants(&c);
  store_spill_file_t *f = store_spill_file_create("/nonexistent/f1");
  for (size_t i = 0; i < n; i++)
    store_core_spill_done(&c, objs[i], f, i * 1064);
  ck_assert_uint_eq(f->nobjs, 3);
  ck_assert_uint_eq(c.evictable.count, 3);
  ck_assert_uint_eq(c.st.spilled_objects, 3);
  check_invariants(&c);
  /* Now the create can evict a spilled copy: its memory goes, the record stays SPILLED. */
  ck_assert_int_eq(store_core_create(&c, x, 1000, 0, NULL, 0, C1, 0, &o), 0);
  store_obj_t *a = store_table_find(&c.table, id[0]);
  ck_assert_int_eq(a->state, STORE_OBJ_SPILLED);
  ck_assert_int_eq(store_core_contains(&c, id[0]), 0);
  ck_assert_int_eq(store_core_present(&c, id[0]), 1); /* a get would restore it */
  ck_assert_ptr_null(store_core_get(&c, id[0], C2));
  ck_assert_uint_eq(c.st.num_spilled_only, 1);
  check_invariants(&c);
  /* Restoring needs room: evicts the next spilled copy. */
  ck_assert_int_eq(store_core_restore_begin(&c, a), 0);
  ck_assert_int_eq(a->state, STORE_OBJ_RESTORING);
  ck_assert_int_eq(store_table_find(&c.table, id[1])->state, STORE_OBJ_SPILLED);
  store_core_restore_done(&c, a, 0);
  ck_assert_int_eq(a->state, STORE_OBJ_SEALED);
  ck_assert_ptr_eq(a->spill_file, f); /* keeps its disk copy */
  ck_assert_uint_eq(c.st.restored_objects, 1);
  check_invariants(&c);
  /* Deleting every object of the file hands it back exactly once. */
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(files_unused, 0);
    store_core_delete(&c, id[i]);
  }
  ck_assert_int_eq(files_unused, 1);
  ck_assert_ptr_eq(last_unused, f);
  check_invariants(&c);
  store_core_release(&c);
}
END_TEST

START_TEST(test_delete_during_io)
{
  store_core_t c;
  uint8_t a[ID_OBJECT_SIZE], b[ID_OBJECT_SIZE];
  store_obj_t *objs[2];
  store_core_init(&c, 64 * 1024, NULL, NULL);
  c.on_file_unused = on_file_unused;
  files_unused = 0;
  make_id(a, 50);
  make_id(b, 51);
  put_flags(&c, a, 100, 0);
  put_flags(&c, b, 100, 0);
  ck_assert_uint_eq(store_core_spill_pick(&c, 1, 2, objs), 1); /* at least one, even over the limit */
  ck_assert_uint_eq(store_core_spill_pick(&c, 1, 2, objs + 1), 1);
  store_core_delete(&c, a); /* spilling: the I/O thread reads its memory, so it must stay */
  ck_assert_ptr_nonnull(store_table_find(&c.table, a));
  ck_assert_int_eq(store_core_contains(&c, a), 0);
  store_spill_file_t *f = store_spill_file_create("/nonexistent/f2");
  store_core_spill_done(&c, objs[0], f, 0);
  ck_assert_ptr_null(store_table_find(&c.table, a)); /* freed when the spill ended */
  ck_assert_int_eq(files_unused, 1);                 /* its file had no other object */
  store_core_spill_done(&c, objs[1], NULL, 0);       /* a failed spill: b is as before */
  store_obj_t *o = store_table_find(&c.table, b);
  ck_assert_int_eq(o->state, STORE_OBJ_SEALED);
  ck_assert_int_eq(o->list, STORE_LIST_SPILLABLE);
  check_invariants(&c);
  /* Spill b for real, drop its memory, then delete it while it is being restored. */
  ck_assert_uint_eq(store_core_spill_pick(&c, 1 << 20, 2, objs), 1);
  f = store_spill_file_create("/nonexistent/f3");
  store_core_spill_done(&c, o, f, 0);
  ck_assert_uint_eq(store_core_evict(&c, 64 * 1024), 1);
  ck_assert_int_eq(o->state, STORE_OBJ_SPILLED);
  ck_assert_int_eq(store_core_restore_begin(&c, o), 0);
  store_core_delete(&c, b);
  ck_assert_ptr_nonnull(store_table_find(&c.table, b));
  store_core_restore_done(&c, o, RAYC_EIO);
  ck_assert_ptr_null(store_table_find(&c.table, b));
  ck_assert_int_eq(files_unused, 2);
  ck_assert_uint_eq(store_core_used(&c), 0);
  check_invariants(&c);
  store_core_release(&c);
}
END_TEST

START_TEST(test_restore_failure_keeps_disk_copy)
{
  store_core_t c;
  uint8_t a[ID_OBJECT_SIZE];
  store_obj_t *objs[1];
  store_core_init(&c, 64 * 1024, NULL, NULL);
  make_id(a, 60);
  store_obj_t *o = put_flags(&c, a, 5000, 0);
  ck_assert_uint_eq(store_core_spill_pick(&c, 1 << 20, 1, objs), 1);
  store_core_spill_done(&c, o, store_spill_file_create("/nonexistent/f4"), 0);
  ck_assert_uint_eq(store_core_evict(&c, 64 * 1024), 1);
  ck_assert_int_eq(store_core_restore_begin(&c, o), 0);
  ck_assert_uint_eq(store_core_used(&c), 5056);
  store_core_restore_done(&c, o, RAYC_EIO);
  ck_assert_int_eq(o->state, STORE_OBJ_SPILLED);
  ck_assert_int_eq(o->restore_err, RAYC_EIO);
  ck_assert_uint_eq(store_core_used(&c), 0);
  ck_assert_int_eq(store_core_restore_begin(&c, o), 0); /* may be tried again */
  ck_assert_int_eq(o->restore_err, 0);
  store_core_restore_done(&c, o, 0);
  ck_assert_int_eq(store_core_contains(&c, a), 1);
  ck_assert_int_eq(store_core_restore_begin(&c, o), RAYC_EINVALID_ARGUMENT); /* not spilled */
  check_invariants(&c);
  store_core_release(&c); /* the file record goes with it (no hook: destroyed) */
}
END_TEST

/* Random operations, invariants checked after each one. */
START_TEST(test_random_invariants)
{
  enum { NID = 48, STEPS = 20000 };
  store_core_t c;
  store_core_init(&c, 64 * 1024, NULL, NULL);
  c.on_file_unused = on_file_unused;
  srand(777);
  for (int step = 0; step < STEPS; step++) {
    uint8_t id[ID_OBJECT_SIZE];
    make_id(id, rand() % NID);
    store_obj_t *o = store_table_find(&c.table, id), *objs[4];
    uint64_t client = 1 + (uint64_t)(rand() % 3);
    switch (rand() % 9) {
      case 0:
        store_core_create(&c, id, (uint64_t)(rand() % 6000), (uint64_t)(rand() % 100), NULL, 0, client,
                          rand() % 2 ? STORE_CREATE_SECONDARY : 0, &o);
        break;
      case 1:
        if (o && o->state == STORE_OBJ_CREATED)
          store_core_seal(&c, id, o->creator);
        break;
      case 2:
        store_core_get(&c, id, client);
        break;
      case 3:
        store_core_release_ref(&c, id, client);
        break;
      case 4:
        store_core_delete(&c, id);
        break;
      case 5: {
        size_t n = store_core_spill_pick(&c, (uint64_t)(rand() % 8000), 4, objs);
        store_spill_file_t *f = rand() % 4 ? store_spill_file_create("/nonexistent/r") : NULL;
        for (size_t i = 0; i < n; i++)
          store_core_spill_done(&c, objs[i], f, i);
        if (f && n == 0)
          store_spill_file_destroy(f);
        break;
      }
      case 6:
        if (o && o->state == STORE_OBJ_SPILLED && store_core_restore_begin(&c, o) == 0)
          store_core_restore_done(&c, o, rand() % 5 ? 0 : RAYC_EIO);
        break;
      case 7:
        store_core_evict(&c, (uint64_t)(rand() % 20000));
        break;
      case 8:
        if (rand() % 10 == 0)
          store_core_drop_client(&c, client);
        break;
    }
    check_invariants(&c);
  }
  for (int i = 1; i <= 3; i++)
    store_core_drop_client(&c, (uint64_t)i);
  for (int i = 0; i < NID; i++) {
    uint8_t id[ID_OBJECT_SIZE];
    make_id(id, i);
    store_core_delete(&c, id);
  }
  ck_assert_uint_eq(store_core_num_objects(&c), 0);
  ck_assert_uint_eq(store_core_used(&c), 0);
  check_invariants(&c);
  store_core_release(&c);
}
END_TEST

int main(void)
{
  log_init("test_store_core", LOG_WARN);
  Suite *s = suite_create("store_core");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(
      tc,
      120); /* the random-invariants check recounts the table at every one of 20,000 steps: seconds on a loaded machine */
  tcase_add_test(tc, test_lifecycle);
  tcase_add_test(tc, test_create_errors);
  tcase_add_test(tc, test_delete_while_referenced);
  tcase_add_test(tc, test_drop_client);
  tcase_add_test(tc, test_abort_and_reuse);
  tcase_add_test(tc, test_evicts_secondary_copies_lru);
  tcase_add_test(tc, test_evicts_enough_for_a_large_create);
  tcase_add_test(tc, test_spill_evict_restore);
  tcase_add_test(tc, test_delete_during_io);
  tcase_add_test(tc, test_restore_failure_keeps_disk_copy);
  tcase_add_test(tc, test_random_invariants);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
