/*
 * The systemd test (`make test-system`): runs tests/system/systemd_cluster.sh, which boots a real
 * systemd in a container on each of two namespace hosts, installs the rayc package ($RAYC_DEB, made
 * by `make deb`) in each, brings the head and the node up by their targets, runs a driver across
 * both, kills the node's raylet and then its store with SIGKILL (systemd restarts each and the node
 * runs tasks again), and stops the targets. Needs root, network namespaces and systemd-nspawn;
 * without them it reports the test as skipped.
 */
#include "../integration/itest.h"

START_TEST(test_systemd_cluster)
{
  it_find_build();
  const char *deb = getenv("RAYC_DEB");
  if (!deb || !*deb) {
    printf("SKIPPED: RAYC_DEB names no package (run through `make test-system`)\n");
    return;
  }
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "bash %s/../../tests/system/systemd_cluster.sh %s %s", it_build, it_build, deb);
  int rc = it_run(cmd);
  if (rc == 77) {
    printf("SKIPPED: the systemd test needs root, network namespaces and systemd-nspawn\n");
    return;
  }
  ck_assert_msg(rc == 0, "systemd_cluster.sh exited %d", rc);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("systemd");
  TCase *tc = tcase_create("containers");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, test_systemd_cluster);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
