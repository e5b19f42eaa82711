/*
 * Unit tests of the core worker's reference counting, in process (no daemons): when an owned
 * object is freed, what a containing object, a pending task's argument and a pending result hold,
 * and that the core worker's method tables match their services.
 */
#include "worker/cw.h"

#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"

#include <check.h>
#include <string.h>

static cw_t *cw;

static void setup(void)
{
  cw = cw_create(0);
}

static void teardown(void)
{
  cw_destroy(cw);
  cw = NULL;
}

/* A new owned inline object with one local ref, its id in *ref. */
static cw_object_t *obj_inline(rayc_ref *ref, const char *text)
{
  id_object_t id = id_object_for_task(id_task_random(cw->job), 1);
  cw_object_t *o = cw_obj_new(cw, &id);
  o->local_refs = 1;
  cw_obj_set_inline(cw, o, text, strlen(text));
  memcpy(ref->id, id.b, ID_OBJECT_SIZE);
  return o;
}

static int present(const rayc_ref *ref)
{
  return cw_obj_get(cw, (const id_object_t *)ref->id) != NULL;
}

START_TEST(freed_at_last_local_ref)
{
  rayc_ref r;
  pthread_mutex_lock(&cw->mu);
  cw_object_t *o = obj_inline(&r, "x");
  o->local_refs++; /* a second holder */
  cw_obj_unref(cw, o);
  ck_assert(present(&r));
  cw_obj_unref(cw, o);
  ck_assert(!present(&r));
  pthread_mutex_unlock(&cw->mu);
}
END_TEST

START_TEST(pending_object_outlives_its_refs)
{
  pthread_mutex_lock(&cw->mu);
  id_object_t id = id_object_for_task(id_task_random(cw->job), 1);
  cw_object_t *o = cw_obj_new(cw, &id);
  o->local_refs = 1;
  cw_obj_unref(cw, o);
  ck_assert_ptr_eq(cw_obj_get(cw, &id), o); /* its task has not finished: the result has a home */
  cw_obj_set_inline(cw, o, "done", 4);      /* the result arrives: nothing holds it, so it goes */
  ck_assert_ptr_null(cw_obj_get(cw, &id));
  pthread_mutex_unlock(&cw->mu);
}
END_TEST

START_TEST(container_keeps_what_it_contains)
{
  rayc_ref inner, outer;
  pthread_mutex_lock(&cw->mu);
  cw_object_t *in = obj_inline(&inner, "inner");
  cw_object_t *out = obj_inline(&outer, "outer");
  cw_nested_t *v = NULL;
  ck_assert_int_eq(cw_nested_from_refs(cw, &inner, 1, CW_HOLD_CONTAINED, &v, "test"), 0);
  cw_obj_x(out)->nested = v;
  out->x->nnested = 1;
  ck_assert_int_eq(in->contained, 1);
  cw_obj_unref(cw, in); /* the driver drops its handle: the container still holds it */
  ck_assert(present(&inner));
  cw_obj_unref(cw, out); /* the container goes, and takes the contained with it */
  ck_assert(!present(&outer));
  ck_assert(!present(&inner));
  pthread_mutex_unlock(&cw->mu);
}
END_TEST

START_TEST(submitted_argument_held_until_dropped)
{
  rayc_ref r;
  pthread_mutex_lock(&cw->mu);
  cw_object_t *o = obj_inline(&r, "arg");
  cw_nested_t *v = NULL;
  ck_assert_int_eq(cw_nested_from_refs(cw, &r, 1, CW_HOLD_SUBMITTED, &v, "test"), 0);
  cw_obj_unref(cw, o);
  ck_assert(present(&r)); /* a pending task takes it */
  ck_assert_int_eq(o->submitted_refs, 1);
  cw_nested_drop(cw, v, 1, CW_HOLD_SUBMITTED); /* the task finished */
  ck_assert(!present(&r));
  pthread_mutex_unlock(&cw->mu);
}
END_TEST

START_TEST(unknown_ref_takes_nothing)
{
  rayc_ref refs[2];
  pthread_mutex_lock(&cw->mu);
  cw_object_t *o = obj_inline(&refs[0], "known");
  id_object_t gone = id_object_for_task(id_task_random(cw->job), 1);
  memcpy(refs[1].id, gone.b, ID_OBJECT_SIZE);
  cw_nested_t *v = NULL;
  ck_assert_int_eq(cw_nested_from_refs(cw, refs, 2, CW_HOLD_CONTAINED, &v, "test"), RAYC_ENOT_FOUND);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(o->contained, 0); /* nothing was taken on the known one either */
  cw_obj_unref(cw, o);
  ck_assert(!present(&refs[0]));
  pthread_mutex_unlock(&cw->mu);
}
END_TEST

START_TEST(method_tables_match_services)
{
  for (int driver = 0; driver <= 1; driver++) {
    size_t n = 0;
    const rpc_method_t *m = cw_service_methods(driver, &n);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(rpc_methods_check(m, n, &rayc__core_worker_service__descriptor), 0);
    if (!driver) /* a driver hosts no actor: it serves only WaitOwnerExit of ActorWorkerService */
      ck_assert_int_eq(rpc_methods_check(m, n, &rayc__actor_worker_service__descriptor), 0);
    for (size_t i = 0; i < n; i++)
      ck_assert(m[i].service == &rayc__core_worker_service__descriptor ||
                m[i].service == &rayc__actor_worker_service__descriptor);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("cw_refs");
  TCase *tc = tcase_create("refs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, freed_at_last_local_ref);
  tcase_add_test(tc, pending_object_outlives_its_refs);
  tcase_add_test(tc, container_keeps_what_it_contains);
  tcase_add_test(tc, submitted_argument_held_until_dropped);
  tcase_add_test(tc, unknown_ref_takes_nothing);
  tcase_add_test(tc, method_tables_match_services);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
