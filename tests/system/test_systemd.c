/*
 * The systemd test (`make test-system`): runs tests/system/systemd_cluster.sh, which boots a real
 * systemd in a container on each of two namespace hosts, installs the rayc package ($RAYC_DEB, made
 * by `make deb`) in each, brings the head and the node up by their targets, runs a driver across
 * both, kills the node's raylet and then its store with SIGKILL (systemd restarts each and the node
 * runs tasks again), and stops the targets. Needs root, network namespaces and systemd-nspawn;
 * without them it reports the test as skipped.
 */
#include "../integration/itest_script.h"

START_TEST(test_systemd_cluster)
{
  const char *deb = getenv("RAYC_DEB");
  if (!deb || !*deb) {
    printf("SKIPPED: RAYC_DEB names no package (run through `make test-system`)\n");
    return;
  }
  it_script("system/systemd_cluster.sh", deb, "root, network namespaces and systemd-nspawn");
}
END_TEST

int main(void)
{
  return it_script_main("systemd", test_systemd_cluster, 900);
}
