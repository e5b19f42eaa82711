/*
 * Multi-host cluster test: runs tests/netns/cluster_multinode.sh, which builds three namespace
 * hosts, starts a real head and two nodes in them, and checks spillback, custom resources, SPREAD,
 * node affinity, and a node SIGKILLed mid-workload (marked dead in time, its tasks retried). The
 * script needs root and `ip netns`; without them it reports the test as skipped.
 */
#include "itest_script.h"

START_TEST(test_three_hosts)
{
  it_script("netns/cluster_multinode.sh", "", NETNS_NEEDS);
}
END_TEST

int main(void)
{
  return it_script_main("multinode", test_three_hosts, 600);
}
