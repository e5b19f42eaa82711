/*
 * Integration tests of borrowing (refs inside objects, task arguments and task results; Ray's
 * ownership protocol) against a real head node: an object that contains a store-sized object is
 * read by a task after its handle is gone, and the store returns to its baseline once every
 * holder let go; an actor keeps a ref passed inside an argument past the driver's release, then
 * drops it or is killed; tasks and actors return values that contain refs to objects they made;
 * a borrower's get after the owner died fails with OWNER_DIED; an object holding 10,000 refs is
 * read repeatedly by an actor and every count returns to zero; malformed borrowing requests are
 * refused without harm. Task functions: tests/tasks/test_borrow_lib.c.
 */
#include "itest.h"

#include "common/pb.h"
#include "common/rpc.h"
#include "common/token.h"
#include "proto/core_worker.pb-c.h"
#include "proto/gcs_actor.pb-c.h"

#include <signal.h>
#include <time.h>

enum { WAIT_MS = 15000 };

static rayc_ref submit(const char *fn, const rayc_arg *args, size_t n, const rayc_task_opts *o)
{
  rayc_ref r;
  int rc = rayc_remote(fn, args, n, o, &r);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  return r;
}

static rayc_ref call(const rayc_actor *a, const char *method, const rayc_arg *args, size_t n)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, method, args, n, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call %s: %s", method, rayc_last_error());
  return r;
}

/* Gets r, expecting nv int64s; releases r. */
static void get_i64s(rayc_ref *r, int64_t *v, size_t nv)
{
  rayc_buf b;
  int rc = rayc_get(r, 1, 60000, &b);
  ck_assert_msg(rc == 0, "get: %s (%s)", rayc_err_name(rc), rayc_last_error());
  ck_assert_uint_eq(b.len, nv * sizeof(int64_t));
  memcpy(v, b.data, b.len);
  rayc_buf_release(&b, 1);
  rayc_ref_release(r);
}

static int64_t call_i64(const rayc_actor *a, const char *method, const rayc_arg *args, size_t n)
{
  rayc_ref r = call(a, method, args, n);
  int64_t v;
  get_i64s(&r, &v, 1);
  return v;
}

static rayc_actor keeper(void)
{
  rayc_actor a;
  int rc = rayc_actor_create("TKeeper", NULL, 0, NULL, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create: %s", rayc_last_error());
  return a;
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rayc_ref_counts counts(void)
{
  rayc_ref_counts c;
  ck_assert_int_eq(rayc_ref_counts_get(&c), 0);
  return c;
}

/* Waits until the store is back at base and this driver owns, borrows and lends nothing. */
static void expect_all_freed(uint64_t base)
{
  int64_t end = mono_ms() + WAIT_MS;
  uint64_t used;
  rayc_ref_counts c;
  while ((used = it_store_used()) != base || (c = counts()).owned || c.borrowed || c.borrowers) {
    if (mono_ms() > end) {
      c = counts();
      ck_abort_msg("not freed after %d ms: store %llu bytes (baseline %llu); driver owns %zu, borrows %zu, lends to "
                   "%zu",
                   WAIT_MS, (unsigned long long)used, (unsigned long long)base, c.owned, c.borrowed, c.borrowers);
    }
    usleep(20000);
  }
}

/* Waits until the actor's stats() are all zero. */
static void expect_actor_clean(const rayc_actor *a)
{
  int64_t end = mono_ms() + WAIT_MS, v[3];
  for (;;) {
    rayc_ref r = call(a, "stats", NULL, 0);
    get_i64s(&r, v, 3);
    if (v[0] == 0 && v[1] == 0 && v[2] == 0)
      return;
    ck_assert_msg(mono_ms() < end, "the actor still owns %lld, borrows %lld, lends to %lld", (long long)v[0],
                  (long long)v[1], (long long)v[2]);
    usleep(20000);
  }
}

static void fill(uint8_t *p, size_t n, int seed)
{
  for (size_t k = 0; k < n; k++)
    p[k] = (uint8_t)(k * 7 + (size_t)seed);
}

static int64_t sum_of(const void *p, size_t n)
{
  int64_t s = 0;
  for (size_t k = 0; k < n; k++)
    s += ((const uint8_t *)p)[k];
  return s;
}

/* (i) inner (1 MiB, in the store) inside outer; the inner handle goes at once; a task reads both. */
START_TEST(test_object_inside_object)
{
  it_connect();
  uint64_t base = it_store_used();
  size_t n = 1 << 20;
  uint8_t *data = malloc(n);
  fill(data, n, 3);
  int64_t inner_sum = sum_of(data, n), outer_sum = sum_of("outer", 5);
  rayc_ref inner, outer;
  ck_assert_int_eq(rayc_put(data, n, &inner), 0);
  free(data);
  ck_assert_int_eq(rayc_put_with_refs("outer", 5, &inner, 1, &outer), 0);
  rayc_ref_release(&inner); /* outer holds it */
  ck_assert_uint_gt(it_store_used(), base);

  /* outer inside a value argument: the task borrows outer, gets it, borrows inner, gets that */
  rayc_arg a = RAYC_ARG_VAL_REFS("x", 1, &outer, 1);
  rayc_ref r = submit("borrow_deep", &a, 1, NULL);
  int64_t v[2];
  get_i64s(&r, v, 2);
  ck_assert_int_eq(v[1], 2);
  ck_assert_int_eq(v[0], outer_sum + inner_sum);

  /* outer as a ref argument: its value travels with the refs it contains */
  rayc_arg b = RAYC_ARG_REF(&outer);
  r = submit("borrow_deep", &b, 1, NULL);
  get_i64s(&r, v, 2);
  ck_assert_int_eq(v[1], 1);
  ck_assert_int_eq(v[0], inner_sum);

  /* the owner's own get shows the refs too */
  rayc_buf buf;
  ck_assert_int_eq(rayc_get(&outer, 1, 10000, &buf), 0);
  ck_assert_uint_eq(buf.nrefs, 1);
  ck_assert_mem_eq(buf.refs[0].id, inner.id, RAYC_OBJECT_ID_SIZE);
  ck_assert_mem_eq(buf.data, "outer", 5);
  rayc_buf_release(&buf, 1);

  /* a ref this process does not hold cannot go into an object */
  rayc_ref bogus, tmp;
  memset(&bogus, 0x5a, sizeof(bogus));
  ck_assert_int_eq(rayc_put_with_refs("x", 1, &bogus, 1, &tmp), RAYC_ENOT_FOUND);

  rayc_ref_release(&outer);
  expect_all_freed(base);
  rayc_shutdown();
}
END_TEST

/* (ii) an actor keeps a ref it got inside an argument, past the driver's release. */
START_TEST(test_actor_keeps_borrowed_ref)
{
  it_connect();
  uint64_t base = it_store_used();
  size_t n = 1 << 20;
  uint8_t *data = malloc(n);
  fill(data, n, 11);
  int64_t want = sum_of(data, n);
  rayc_actor k = keeper();
  rayc_ref x;
  ck_assert_int_eq(rayc_put(data, n, &x), 0);
  rayc_arg a = RAYC_ARG_VAL_REFS("k", 1, &x, 1);
  ck_assert_int_eq(call_i64(&k, "keep", &a, 1), 1);
  rayc_ref_release(&x); /* the actor borrows it: it stays */
  usleep(300000);
  ck_assert_uint_gt(it_store_used(), base);
  rayc_ref r = call(&k, "read", NULL, 0);
  int64_t v[2];
  get_i64s(&r, v, 2);
  ck_assert_int_eq(v[1], 1);
  ck_assert_int_eq(v[0], want);
  ck_assert_int_eq(call_i64(&k, "drop", NULL, 0), 1);
  expect_all_freed(base); /* the actor told the owner it let go */

  /* kept again, then the actor is killed: its borrowing ends with it */
  ck_assert_int_eq(rayc_put(data, n, &x), 0);
  ck_assert_int_eq(call_i64(&k, "keep", &a, 1), 1);
  rayc_ref_release(&x);
  usleep(300000);
  ck_assert_uint_gt(it_store_used(), base);
  ck_assert_uint_eq(counts().borrowers, 1);
  ck_assert_int_eq(rayc_actor_kill(&k, 1), 0);
  expect_all_freed(base);

  /* and an actor whose worker is SIGKILLed: the owner notices the borrower died */
  rayc_actor k2 = keeper();
  int64_t pid = call_i64(&k2, "pid", NULL, 0);
  ck_assert_int_eq(rayc_put(data, n, &x), 0);
  ck_assert_int_eq(call_i64(&k2, "keep", &a, 1), 1);
  rayc_ref_release(&x);
  ck_assert_uint_eq(counts().borrowers, 1);
  ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
  expect_all_freed(base);
  free(data);
  rayc_shutdown();
}
END_TEST

static void check_made(const rayc_buf *b, size_t n, size_t size)
{
  ck_assert_uint_eq(b->nrefs, n);
  ck_assert_uint_eq(b->len, n * 8);
  for (size_t i = 0; i < n; i++) {
    rayc_buf x;
    int rc = rayc_get(&b->refs[i], 1, 30000, &x);
    ck_assert_msg(rc == 0, "contained ref %zu: %s (%s)", i, rayc_err_name(rc), rayc_last_error());
    ck_assert_uint_eq(x.len, size);
    int64_t v;
    memcpy(&v, x.data, 8);
    ck_assert_int_eq(v, (int64_t)i);
    if (size > 100)
      ck_assert_uint_eq(((const uint8_t *)x.data)[100], (uint8_t)(i + 100));
    rayc_buf_release(&x, 1);
  }
}

/* (iii) tasks and actors return values that contain refs to objects they created. */
START_TEST(test_results_contain_refs)
{
  it_connect();
  uint64_t base = it_store_used();
  int64_t args[2][2] = {{5, 150000}, {3, 8}}; /* in the store; inline */
  for (int t = 0; t < 2; t++) {
    rayc_arg a[2] = {RAYC_ARG_VAL(&args[t][0], 8), RAYC_ARG_VAL(&args[t][1], 8)};
    rayc_ref r = submit("borrow_make", a, 2, NULL);
    rayc_buf b;
    int rc = rayc_get(&r, 1, 60000, &b);
    ck_assert_msg(rc == 0, "get: %s", rayc_last_error());
    rayc_ref_release(&r); /* the buffer still holds what it contains */
    check_made(&b, (size_t)args[t][0], (size_t)args[t][1]);
    /* keep one past the buffer */
    rayc_ref kept = b.refs[1];
    rayc_ref_retain(&kept);
    rayc_buf_release(&b, 1);
    rayc_buf x;
    ck_assert_int_eq(rayc_get(&kept, 1, 30000, &x), 0);
    ck_assert_uint_eq(x.len, (size_t)args[t][1]);
    rayc_buf_release(&x, 1);
    rayc_ref_release(&kept);
  }

  /* made by an actor, whose counts we can see */
  rayc_actor k = keeper();
  rayc_arg a[2] = {RAYC_ARG_VAL(&args[0][0], 8), RAYC_ARG_VAL(&args[0][1], 8)};
  rayc_ref r = call(&k, "make", a, 2);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, 60000, &b), 0);
  check_made(&b, (size_t)args[0][0], (size_t)args[0][1]);
  /* the result passed on inside an argument, then read by a task: a borrower of a borrower */
  rayc_arg d = RAYC_ARG_VAL_REFS("d", 1, &r, 1);
  rayc_ref dr = submit("borrow_deep", &d, 1, NULL);
  int64_t v[2];
  get_i64s(&dr, v, 2);
  ck_assert_int_eq(v[1], 1 + args[0][0]);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
  expect_actor_clean(&k);
  expect_all_freed(base);
  rayc_shutdown();
}
END_TEST

/* A borrowed ref whose object is still being made: its owner answers when it is ready. */
START_TEST(test_borrowed_pending)
{
  it_connect();
  int64_t ms = 1500;
  rayc_arg a = RAYC_ARG_VAL(&ms, 8);
  rayc_ref r = submit("borrow_child", &a, 1, NULL);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, 60000, &b), 0);
  ck_assert_uint_eq(b.nrefs, 1);
  rayc_ref child = b.refs[0];
  rayc_ref_retain(&child);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
  int ready = -1;
  ck_assert_int_eq(rayc_wait(&child, 1, 1, 100, &ready), 0); /* still sleeping */
  ck_assert_int_eq(ready, 0);
  rayc_buf x;
  ck_assert_int_eq(rayc_get(&child, 1, 50, &x), RAYC_ETIMEOUT);
  int64_t t0 = mono_ms();
  ck_assert_int_eq(rayc_wait(&child, 1, 1, 30000, &ready), 1);
  ck_assert_int_eq(ready, 1);
  int rc;
  ck_assert_int_eq(it_get_i64(&child, &rc), 1500);
  ck_assert_msg(rc == 0, "get: %s", rayc_last_error());
  ck_assert_int_lt(mono_ms() - t0, 20000);
  rayc_ref_release(&child);
  expect_all_freed(it_store_used());
  rayc_shutdown();
}
END_TEST

/* (iv) owner death: borrowers' gets fail with OWNER_DIED, saying so. */
START_TEST(test_owner_died)
{
  it_connect();
  rayc_actor k = keeper();
  /* a task's worker owns an object the actor borrows; the worker is killed */
  int64_t size = 64;
  rayc_arg a[2] = {RAYC_ARG_VAL(&k, sizeof(k)), RAYC_ARG_VAL(&size, 8)};
  rayc_ref r = submit("borrow_lend", a, 2, NULL);
  int64_t pid;
  get_i64s(&r, &pid, 1);
  ck_assert_int_gt(pid, 0);
  rayc_ref r2 = call(&k, "read", NULL, 0); /* the owner is alive: it reads */
  int64_t v[2];
  get_i64s(&r2, v, 2);
  ck_assert_int_eq(v[0], 2016); /* 0 + 1 + ... + 63 */
  ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
  for (int i = 0; i < 500 && kill((pid_t)pid, 0) == 0; i++)
    usleep(10000);
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_returns = 2;
  rayc_ref rr[2];
  ck_assert_int_eq(rayc_actor_call(&k, "read_code", NULL, 0, &o, rr), 0);
  int64_t code;
  get_i64s(&rr[0], &code, 1);
  rayc_buf msg;
  ck_assert_int_eq(rayc_get(&rr[1], 1, 10000, &msg), 0);
  char text[1024];
  snprintf(text, sizeof(text), "%.*s", (int)msg.len, (const char *)msg.data);
  rayc_buf_release(&msg, 1);
  rayc_ref_release(&rr[1]);
  ck_assert_msg(code == RAYC_EOWNER_DIED, "the actor's get gave %lld (%s): %s", (long long)code,
                rayc_err_name((int)code), text);
  ck_assert_msg(strstr(text, "owner died") && strstr(text, "worker"), "message: %s", text);

  /* the driver borrows from an actor that is then killed */
  int64_t args2[2] = {2, 8};
  rayc_arg m[2] = {RAYC_ARG_VAL(&args2[0], 8), RAYC_ARG_VAL(&args2[1], 8)};
  r = call(&k, "make", m, 2);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, 60000, &b), 0);
  ck_assert_uint_eq(b.nrefs, 2);
  rayc_ref kept = b.refs[0];
  rayc_ref_retain(&kept);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
  ck_assert_int_eq(rayc_actor_kill(&k, 1), 0);
  int rc = 0;
  rayc_buf x;
  for (int i = 0; i < 200 && (rc = rayc_get(&kept, 1, 5000, &x)) == 0; i++) { /* until the kill lands */
    rayc_buf_release(&x, 1);
    usleep(20000);
  }
  ck_assert_msg(rc == RAYC_EOWNER_DIED, "get after the owner died: %s (%s)", rayc_err_name(rc), rayc_last_error());
  ck_assert_msg(strstr(rayc_last_error(), "owner died"), "detail: %s", rayc_last_error());
  int ready = 0;
  ck_assert_int_eq(rayc_wait(&kept, 1, 1, 1000, &ready), 1); /* a dead owner's ref counts as available */
  rayc_ref_release(&kept);
  rayc_shutdown();
}
END_TEST

/* (v) one object holding 10,000 refs, read repeatedly by an actor in another process. */
START_TEST(test_10k_refs)
{
  it_connect();
  uint64_t base = it_store_used();
  enum { N = 10000, GETS = 20 };
  rayc_ref *refs = malloc(N * sizeof(*refs));
  for (int64_t i = 0; i < N; i++)
    ck_assert_int_eq(rayc_put(&i, 8, &refs[i]), 0);
  rayc_ref outer;
  int64_t n = N;
  ck_assert_int_eq(rayc_put_with_refs(&n, 8, refs, N, &outer), 0);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&refs[i]);
  ck_assert_uint_eq(counts().owned, N + 1);

  rayc_buf b;
  ck_assert_int_eq(rayc_get(&outer, 1, 10000, &b), 0);
  ck_assert_uint_eq(b.nrefs, N);
  for (int i = 0; i < N; i++)
    ck_assert(memcmp(b.refs[i].id, refs[i].id, RAYC_OBJECT_ID_SIZE) == 0);
  rayc_buf_release(&b, 1);
  free(refs);

  rayc_actor k = keeper();
  rayc_arg a = RAYC_ARG_VAL_REFS("o", 1, &outer, 1);
  ck_assert_int_eq(call_i64(&k, "keep", &a, 1), 1);
  int64_t gets = GETS, t0 = mono_ms();
  rayc_arg g = RAYC_ARG_VAL(&gets, 8);
  ck_assert_int_eq(call_i64(&k, "get_n", &g, 1), (int64_t)GETS * N);
  int64_t ms = mono_ms() - t0;
  printf("borrow: %d gets of an object holding %d refs by an actor in %lld ms (%.0f/s)\n", GETS, N, (long long)ms,
         GETS * 1000.0 / (double)(ms ? ms : 1));
  ck_assert_uint_eq(counts().borrowers, N + 1); /* the actor borrows them all */
  ck_assert_int_eq(call_i64(&k, "drop", NULL, 0), 1);
  rayc_ref_release(&outer);
  expect_all_freed(base);
  expect_actor_clean(&k);
  rayc_shutdown();
}
END_TEST

/* ---- malformed requests ---- */

static char *token(void)
{
  char *t = NULL, *err = NULL;
  ck_assert_msg(token_read_file(getenv("RAYC_TOKEN_FILE"), &t, &err) == 0, "token: %s", err ? err : "");
  return t;
}

static int try_call(rpc_client_t *c, const char *target, const char *method, const ProtobufCMessage *req)
{
  ProtobufCMessage *resp = NULL;
  int rc = rpc_call_sync(rpc_channel_get(c, target), &rayc__core_worker_service__descriptor, method, req, 10000, &resp,
                         NULL);
  pb_free(resp);
  return rc;
}

/* Bad requests to one process's CoreWorkerService: refused, and nothing changes. */
static void poke(rpc_client_t *c, const char *target, const Rayc__Address *who)
{
  uint8_t wrong[28] = {0}, ids[60] = {0};
  ProtobufCBinaryData me = who->worker_id;
  Rayc__AddBorrowerRequest add = RAYC__ADD_BORROWER_REQUEST__INIT;
  add.owner_worker_id = pb_bytes(wrong, 28);
  add.object_ids = pb_bytes(ids, 28);
  add.borrower = (Rayc__Address *)who;
  ck_assert_int_eq(try_call(c, target, "AddBorrower", &add.base), RAYC_ENOT_FOUND); /* not that owner */
  add.owner_worker_id = me;
  add.object_ids = pb_bytes(ids, 27);
  ck_assert_int_eq(try_call(c, target, "AddBorrower", &add.base), RAYC_EINVALID_ARGUMENT);
  add.object_ids = pb_bytes(ids, 0);
  ck_assert_int_eq(try_call(c, target, "AddBorrower", &add.base), RAYC_EINVALID_ARGUMENT);
  Rayc__Address bad = RAYC__ADDRESS__INIT;
  bad.worker_id = pb_bytes(wrong, 5);
  add.object_ids = pb_bytes(ids, 28);
  add.borrower = &bad;
  ck_assert_int_eq(try_call(c, target, "AddBorrower", &add.base), RAYC_EINVALID_ARGUMENT);
  add.borrower = NULL;
  ck_assert_int_eq(try_call(c, target, "AddBorrower", &add.base), RAYC_EINVALID_ARGUMENT);

  Rayc__RemoveBorrowerRequest rm = RAYC__REMOVE_BORROWER_REQUEST__INIT;
  rm.owner_worker_id = me;
  rm.borrower_worker_id = pb_bytes(wrong, 28);
  rm.object_ids = pb_bytes(ids, 56);
  uint32_t counts1[1] = {7};
  rm.counts = counts1;
  rm.n_counts = 1; /* two ids, one count */
  ck_assert_int_eq(try_call(c, target, "RemoveBorrower", &rm.base), RAYC_EINVALID_ARGUMENT);
  rm.n_counts = 0;
  rm.borrower_worker_id = pb_bytes(wrong, 3);
  ck_assert_int_eq(try_call(c, target, "RemoveBorrower", &rm.base), RAYC_EINVALID_ARGUMENT);
  rm.borrower_worker_id = pb_bytes(wrong, 28); /* an unknown borrower: nothing to do */
  ck_assert_int_eq(try_call(c, target, "RemoveBorrower", &rm.base), 0);

  Rayc__GetObjectStatusRequest st = RAYC__GET_OBJECT_STATUS_REQUEST__INIT;
  st.owner_worker_id = me;
  st.object_ids = pb_bytes(ids, 29);
  ck_assert_int_eq(try_call(c, target, "GetObjectStatus", &st.base), RAYC_EINVALID_ARGUMENT);
  st.owner_worker_id = pb_bytes(wrong, 28);
  st.object_ids = pb_bytes(ids, 28);
  ck_assert_int_eq(try_call(c, target, "GetObjectStatus", &st.base), RAYC_ENOT_FOUND);
  st.owner_worker_id = me; /* an object it does not own: an answer saying so */
  ProtobufCMessage *resp = NULL;
  ck_assert_int_eq(rpc_call_sync(rpc_channel_get(c, target), &rayc__core_worker_service__descriptor, "GetObjectStatus",
                                 &st.base, 10000, &resp, NULL),
                   0);
  Rayc__GetObjectStatusReply *rep = (Rayc__GetObjectStatusReply *)resp;
  ck_assert_uint_eq(rep->n_objects, 1);
  ck_assert_ptr_nonnull(rep->objects[0]->error);
  ck_assert_int_eq(rep->objects[0]->error->code, RAYC_EOBJECT_LOST);
  pb_free(resp);
}

START_TEST(test_malformed_requests)
{
  it_connect();
  rayc_actor k = keeper();
  ck_assert_int_eq(call_i64(&k, "drop", NULL, 0), 0); /* alive */
  char *t = token();
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = t});
  Rayc__ListActorsRequest lreq = RAYC__LIST_ACTORS_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  ck_assert_int_eq(rpc_call_sync(rpc_channel_get(c, it_address), &rayc__actor_info_gcs_service__descriptor,
                                 "ListActors", &lreq.base, 10000, &resp, NULL),
                   0);
  Rayc__ListActorsReply *actors = (Rayc__ListActorsReply *)resp;
  const Rayc__ActorInfo *info = NULL;
  for (size_t i = 0; i < actors->n_actors; i++)
    if (actors->actors[i]->state == RAYC__ACTOR_STATE__ACTOR_ALIVE &&
        memcmp(actors->actors[i]->actor_id.data, k.id, RAYC_ACTOR_ID_SIZE) == 0)
      info = actors->actors[i];
  ck_assert_ptr_nonnull(info);
  char worker[128], driver[128];
  snprintf(worker, sizeof(worker), "%s:%d", info->address->ip, info->address->port);
  if (info->owner->port > 0) /* the GCS gives an owner as ip "HOST:PORT" */
    snprintf(driver, sizeof(driver), "%s:%d", info->owner->ip, info->owner->port);
  else
    snprintf(driver, sizeof(driver), "%s", info->owner->ip);
  poke(c, worker, info->address);
  poke(c, driver, info->owner);
  Rayc__PushTaskRequest push = RAYC__PUSH_TASK_REQUEST__INIT;
  ck_assert_int_eq(try_call(c, driver, "PushTask", &push.base), RAYC_EUNIMPLEMENTED); /* drivers run no tasks */
  pb_free(resp);
  rpc_client_destroy(c);
  token_free(t);
  /* both still work */
  int64_t one = 1;
  rayc_ref x;
  ck_assert_int_eq(rayc_put(&one, 8, &x), 0);
  rayc_arg a = RAYC_ARG_VAL_REFS("k", 1, &x, 1);
  ck_assert_int_eq(call_i64(&k, "keep", &a, 1), 1);
  rayc_ref_release(&x);
  rayc_ref r = call(&k, "read", NULL, 0);
  int64_t v[2];
  get_i64s(&r, v, 2);
  ck_assert_int_eq(v[0], 1);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("borrow");
  TCase *tc = tcase_create("borrow");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_object_inside_object);
  tcase_add_test(tc, test_actor_keeps_borrowed_ref);
  tcase_add_test(tc, test_results_contain_refs);
  tcase_add_test(tc, test_borrowed_pending);
  tcase_add_test(tc, test_owner_died);
  tcase_add_test(tc, test_10k_refs);
  tcase_add_test(tc, test_malformed_requests);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
