/*
 * Scheduling across three namespace hosts: runs tests/netns/sched_multinode.sh (hard node affinity
 * to a node that has just joined, 80 DEFAULT tasks spread over every host by spilling queued
 * requests, 30 SPREAD tasks split 10/10/10 give or take 3). Skipped without root and `ip netns`.
 */
#include "itest_script.h"

START_TEST(test_sched_three_hosts)
{
  it_script("netns/sched_multinode.sh", "", NETNS_NEEDS);
}
END_TEST

int main(void)
{
  return it_script_main("sched_multinode", test_sched_three_hosts, 600);
}
