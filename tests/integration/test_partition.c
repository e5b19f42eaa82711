/*
 * A network partition: runs tests/netns/partition.sh (the host running an actor is cut off with
 * `ip link set down`: declared dead, the actor restarted elsewhere while calls go on; when the link
 * returns the cut-off raylet learns it was declared dead, ends its workers and registers again; the actor's
 * constructor ran once per generation). Skipped without root and `ip netns`.
 */
#include "itest_script.h"

START_TEST(test_partition)
{
  it_script("netns/partition.sh", "", NETNS_NEEDS);
}
END_TEST

int main(void)
{
  return it_script_main("partition", test_partition, 600);
}
