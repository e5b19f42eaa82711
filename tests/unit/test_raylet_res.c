/* Unit tests for the raylet's `--resources` JSON (raylet_res_parse_json in raylet/raylet_resources.c):
 * what it accepts is what the GCS accepts when the node registers, and a refused set changes
 * nothing. Regression seeds of fuzz_res_json. */
#include "raylet/raylet.h"

#include "common/rpc_valid.h"
#include "common/status.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

/* Parses json over a table holding CPU 2; returns the result, and checks a refusal left it alone. */
static int parse(const char *json, raylet_res_t *r)
{
  memset(r, 0, sizeof(*r));
  raylet_res_set(r, "CPU", 2);
  raylet_res_t before = *r;
  int rc = raylet_res_parse_json(r, json);
  if (rc != 0)
    ck_assert_msg(memcmp(r, &before, sizeof(*r)) == 0, "a refused set changed the table: %s", json);
  return rc;
}

START_TEST(test_amounts_the_gcs_refuses_are_refused)
{
  raylet_res_t r;
  /* fuzz_res_json's first find: accepted here, then every RegisterNode was refused (> 1e15) */
  ck_assert_int_eq(parse("{\"CPU\": 1e300}", &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(parse("{\"x\": 1000000000000001}", &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(parse("{\"x\": -1}", &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(parse("{\"x\": 1e15}", &r), 0);
  ck_assert(raylet_res_get(&r, "x") == RPC_VALID_AMOUNT_MAX);
}
END_TEST

START_TEST(test_shapes)
{
  raylet_res_t r;
  ck_assert_int_eq(parse("{\"GPU\": 2, \"custom\": 0.5}", &r), 0);
  ck_assert(raylet_res_get(&r, "GPU") == 2 && raylet_res_get(&r, "custom") == 0.5 && raylet_res_get(&r, "CPU") == 2);
  ck_assert_int_eq(parse("{\"CPU\": 8}", &r), 0);
  ck_assert(raylet_res_get(&r, "CPU") == 8);
  ck_assert_int_eq(parse("{}", &r), 0);
  const char *bad[] = {"[1]", "{\"\": 1}", "{\"a\": 1, \"a\": 2}", "{\"a\": \"1\"}", "{\"a\": 1", "1", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(parse(bad[i], &r) == RAYC_EINVALID_ARGUMENT, "accepted %s", bad[i]);
  char name[RES_NAME_MAX + 16];
  memset(name, 'n', sizeof(name));
  snprintf(name + RES_NAME_MAX, 16, "\": 1}");
  char json[sizeof(name) + 8] = "{\"";
  strcat(json, name);
  ck_assert_int_eq(parse(json, &r), RAYC_EINVALID_ARGUMENT); /* a name longer than the table keeps */
}
END_TEST

int main(void)
{
  Suite *s = suite_create("raylet_res");
  TCase *tc = tcase_create("res");
  tcase_add_test(tc, test_amounts_the_gcs_refuses_are_refused);
  tcase_add_test(tc, test_shapes);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
