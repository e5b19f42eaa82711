/*
 * The short chaos suite: runs tests/netns/chaos.sh (3 namespace hosts, the GCS on Redis, a driver
 * checking DAG results, actor state, placement groups and spilled objects while a seeded killer
 * SIGKILLs workers, raylets, stores, nodes and the GCS and pauses daemons) for 30 s and at least 30
 * kills, with a new seed each run (printed; CHAOS_SEED=N reruns one). `make chaos` is the long
 * version. Skipped without root and `ip netns`.
 */
#include "itest.h"

START_TEST(test_chaos_short)
{
  it_find_build();
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "bash %s/../../tests/netns/chaos.sh %s '%s' 30 30 2>&1 | grep -v -E ' W driver|Killed'",
           it_build, it_build, getenv("CHAOS_SEED") ? getenv("CHAOS_SEED") : "");
  /* pipefail so the script's status survives the filter */
  char full[4200];
  snprintf(full, sizeof(full), "bash -o pipefail -c \"%s\"", cmd);
  int rc = it_run(full);
  if (rc == 77) {
    printf("SKIPPED: multi-host test needs root and network namespaces\n");
    return;
  }
  ck_assert_msg(rc == 0, "chaos.sh exited %d (its output above names the seed)", rc);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("chaos");
  TCase *tc = tcase_create("hosts");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_chaos_short);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
