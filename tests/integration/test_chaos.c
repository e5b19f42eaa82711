/*
 * The short chaos suite: runs tests/netns/chaos.sh (3 namespace hosts, the GCS on Redis, a driver
 * checking DAG results, actor state, placement groups and spilled objects while a seeded killer
 * SIGKILLs workers, raylets, stores, nodes and the GCS and pauses daemons) for 30 s and at least 30
 * kills, with a new seed each run (printed; CHAOS_SEED=N reruns one). `make chaos` is the long
 * version. Skipped without root and `ip netns`.
 */
#include "itest_script.h"

START_TEST(test_chaos_short)
{
  char args[128];
  snprintf(args, sizeof(args), "'%s' 30 30", getenv("CHAOS_SEED") ? getenv("CHAOS_SEED") : "");
  it_script("netns/chaos.sh", args, NETNS_NEEDS); /* on failure its output names the seed */
}
END_TEST

int main(void)
{
  return it_script_main("chaos", test_chaos_short, 600);
}
