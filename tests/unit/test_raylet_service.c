/* The raylet's gRPC table covers NodeManagerService exactly: every method once, nothing else. */
#include "raylet/raylet.h"

#include "common/pb.h"

#include <check.h>

START_TEST(table_matches_service)
{
  size_t n = 0;
  const rpc_method_t *m = raylet_service_methods(&n);
  ck_assert_int_eq(rpc_methods_check(m, n, &rayc__node_manager_service__descriptor), 0);
  ck_assert_uint_eq(n, rayc__node_manager_service__descriptor.n_methods);
  for (size_t i = 0; i < n; i++)
    ck_assert_ptr_eq(m[i].service, &rayc__node_manager_service__descriptor);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("raylet_service");
  TCase *tc = tcase_create("table");
  tcase_add_test(tc, table_matches_service);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
