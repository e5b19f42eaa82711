/*
 * Multi-host cluster test: runs tests/netns/cluster_multinode.sh, which builds three namespace
 * hosts, starts a real head and two nodes in them, and checks spillback, custom resources, SPREAD,
 * node affinity, and a node SIGKILLed mid-workload (marked dead in time, its tasks retried). The
 * script needs root and `ip netns`; without them it reports the test as skipped.
 */
#include "itest.h"

START_TEST(test_three_hosts)
{
  it_find_build();
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "bash %s/../../tests/netns/cluster_multinode.sh %s 2>&1 | grep -v ' W driver'", it_build,
           it_build);
  /* pipefail so the script's status survives the filter */
  char full[4200];
  snprintf(full, sizeof(full), "bash -o pipefail -c \"%s\"", cmd);
  int rc = it_run(full);
  if (rc == 77) {
    printf("SKIPPED: multi-host test needs root and network namespaces\n");
    return;
  }
  ck_assert_msg(rc == 0, "cluster_multinode.sh exited %d", rc);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("multinode");
  TCase *tc = tcase_create("hosts");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_three_hosts);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
