/* Unit tests for common/res.c: interning, the set operations the raylet and the GCS's placement
 * use (fit, take, give back, compare), the protobuf and JSON round trips, and the limits. */
#include "common/res.h"

#include "common/status.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static res_set_t set_of(const char *spec)
{
  res_set_t s = {0};
  ck_assert_int_eq(res_parse_json(&s, spec), 0);
  return s;
}

START_TEST(test_intern)
{
  res_id_t cpu = res_intern("CPU"), gpu = res_intern("GPU");
  ck_assert_uint_ne(cpu, gpu);
  ck_assert_uint_eq(res_intern("CPU"), cpu);
  ck_assert_str_eq(res_name(cpu), "CPU");
  res_id_t id = 12345;
  ck_assert_int_eq(res_lookup("GPU", &id), 0);
  ck_assert_uint_eq(id, gpu);
  ck_assert_int_eq(res_lookup("never-interned-name", &id), -1);
  /* Looking a name up by get or del does not intern it. */
  res_set_t s = set_of("{\"CPU\": 2}");
  ck_assert(res_get_name(&s, "also-never-interned") == 0);
  res_del_name(&s, "also-never-interned");
  ck_assert_int_eq(res_lookup("also-never-interned", &id), -1);
  ck_assert_uint_eq(s.n, 1);
}
END_TEST

START_TEST(test_fit_take_give)
{
  res_set_t node = set_of("{\"CPU\": 4, \"GPU\": 1, \"memory\": 1000}");
  res_set_t two_cpu = set_of("{\"CPU\": 2}");
  res_set_t gpu2 = set_of("{\"GPU\": 2}");
  res_set_t custom = set_of("{\"CPU\": 1, \"accel\": 1}");
  res_set_t zero = set_of("{\"accel2\": 0}");
  ck_assert(res_fits(&node, &two_cpu));
  ck_assert(!res_fits(&node, &gpu2));
  ck_assert(!res_fits(&node, &custom)); /* a name the node lacks */
  ck_assert(res_fits(&node, &zero));    /* zero amounts always fit */
  ck_assert(res_fits_n(&node, &two_cpu, 2));
  ck_assert(!res_fits_n(&node, &two_cpu, 3));
  res_set_t before = node;
  res_sub(&node, &two_cpu);
  res_sub(&node, &two_cpu);
  ck_assert(res_get_name(&node, "CPU") == 0);
  ck_assert(!res_fits(&node, &two_cpu));
  ck_assert(!res_equal(&node, &before));
  res_add(&node, &two_cpu);
  res_add(&node, &two_cpu);
  ck_assert(res_equal(&node, &before));
  /* Fractions add up within the tolerance. */
  res_set_t tenth = set_of("{\"CPU\": 0.1}");
  res_set_t one = set_of("{\"CPU\": 1}"), acc = {0};
  for (int i = 0; i < 10; i++)
    res_add(&acc, &tenth);
  ck_assert(res_fits(&acc, &one));
  ck_assert(res_equal(&acc, &one));
}
END_TEST

START_TEST(test_put_del_limits)
{
  res_set_t s = {0};
  char name[RES_NAME_MAX];
  for (int i = 0; i < RES_MAX; i++) {
    snprintf(name, sizeof(name), "custom_%d", i);
    ck_assert_int_eq(res_put_name(&s, name, i), 0);
  }
  ck_assert_int_eq(res_put_name(&s, "one_too_many", 1), -1);
  ck_assert_uint_eq(s.n, RES_MAX);
  ck_assert_int_eq(res_put_name(&s, "custom_7", 70), 0); /* an existing name still updates */
  ck_assert(res_get_name(&s, "custom_7") == 70);
  res_del_name(&s, "custom_0");
  ck_assert_uint_eq(s.n, RES_MAX - 1);
  ck_assert(res_get_name(&s, "custom_0") == 0);
  ck_assert(res_get_name(&s, "custom_127") == 127); /* the last moved into the hole */
  ck_assert_int_eq(res_put_name(&s, "one_too_many", 1), 0);
  /* A set copies with `=`: the copy is independent. */
  res_set_t c = s;
  res_put_name(&c, "custom_5", 0);
  ck_assert(res_get_name(&s, "custom_5") == 5);
}
END_TEST

START_TEST(test_json)
{
  res_set_t s = set_of("{\"CPU\": 8, \"my_res\": 2.5}");
  ck_assert(res_get_name(&s, "my_res") == 2.5);
  static const char *const bad[] = {
      "[1, 2]", "{\"CPU\": -1}", "{\"CPU\": \"4\"}", "{\"\": 1}", "not json", "{\"CPU\": 1, \"CPU\": 2}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    res_set_t t = s;
    ck_assert_int_eq(res_parse_json(&t, bad[i]), RAYC_EINVALID_ARGUMENT);
    ck_assert(res_equal(&t, &s)); /* a refused input changes nothing */
  }
  char longname[RES_NAME_MAX + 20], json[RES_NAME_MAX + 64];
  memset(longname, 'x', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  snprintf(json, sizeof(json), "{\"%s\": 1}", longname);
  ck_assert_int_eq(res_parse_json(&s, json), RAYC_EINVALID_ARGUMENT);
  char buf[128];
  ck_assert_int_eq(res_format(&s, buf, sizeof(buf)), (int)strlen("CPU=8,my_res=2.5"));
  ck_assert_str_eq(buf, "CPU=8,my_res=2.5");
  char small[6];
  ck_assert_int_eq(res_format(&s, small, sizeof(small)), (int)strlen("CPU=8,my_res=2.5"));
  ck_assert_str_eq(small, "CPU=8"); /* cut to fit, still terminated */
}
END_TEST

START_TEST(test_pb_round_trip)
{
  res_set_t s = set_of("{\"CPU\": 3, \"GPU\": 1, \"CPU_group_0_abc\": 1}");
  size_t n = 0;
  Rayc__ResourceEntry **e = res_to_pb(&s, &n);
  ck_assert_uint_eq(n, 3);
  res_set_t back;
  ck_assert_int_eq(res_from_pb(&back, e, n), 0);
  ck_assert(res_equal(&back, &s));
  free(e[1]->name);
  e[1]->name = NULL; /* entries without a name are skipped */
  ck_assert_int_eq(res_from_pb(&back, e, n), 0);
  ck_assert_uint_eq(back.n, 2);
  res_pb_free(e, n);
}
END_TEST

static void *intern_many(void *arg)
{
  char name[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(name, sizeof(name), "t%d", i);
    res_id_t id = res_intern(name);
    if (strcmp(res_name(id), name) != 0)
      return arg;
  }
  return NULL;
}

START_TEST(test_intern_threads)
{
  pthread_t th[4];
  static int failed_marker;
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, intern_many, &failed_marker), 0);
  for (int i = 0; i < 4; i++) {
    void *r = &failed_marker;
    pthread_join(th[i], &r);
    ck_assert_ptr_null(r);
  }
  res_id_t a, b;
  ck_assert_int_eq(res_lookup("t1999", &a), 0);
  b = res_intern("t1999");
  ck_assert_uint_eq(a, b);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("res");
  TCase *tc = tcase_create("res");
  tcase_add_test(tc, test_intern);
  tcase_add_test(tc, test_fit_take_give);
  tcase_add_test(tc, test_put_del_limits);
  tcase_add_test(tc, test_json);
  tcase_add_test(tc, test_pb_round_trip);
  tcase_add_test(tc, test_intern_threads);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
