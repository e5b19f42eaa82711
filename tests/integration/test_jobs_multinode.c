/*
 * Jobs on a multi-host cluster: runs tests/netns/jobs_multinode.sh (three namespace hosts, a job
 * submitted from a second host with a working dir holding a C task library and a driver, its
 * governance record, stop, a GCS kill -9 and restart, refusals, the record chain). The script needs
 * root and `ip netns`; without them it reports the test as skipped.
 */
#include "itest.h"

START_TEST(test_jobs_three_hosts)
{
  it_find_build();
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "bash %s/../../tests/netns/jobs_multinode.sh %s 2>&1 | grep -v ' W driver'", it_build,
           it_build);
  char full[4200];
  snprintf(full, sizeof(full), "bash -o pipefail -c \"%s\"", cmd); /* the script's status survives the filter */
  int rc = it_run(full);
  if (rc == 77) {
    printf("SKIPPED: multi-host job test needs root and network namespaces\n");
    return;
  }
  ck_assert_msg(rc == 0, "jobs_multinode.sh exited %d", rc);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("jobs_multinode");
  TCase *tc = tcase_create("hosts");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, test_jobs_three_hosts);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
