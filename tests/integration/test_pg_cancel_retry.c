/*
 * A placement group removed while its node is unreachable: runs tests/netns/pg_cancel_retry.sh
 * (the GCS's cancel fails while the node is cut off; once the link returns the retried cancel gives
 * the bundle's resource back). Skipped without root and `ip netns`.
 */
#include "itest_script.h"

START_TEST(test_pg_cancel_retry)
{
  it_script("netns/pg_cancel_retry.sh", "", NETNS_NEEDS);
}
END_TEST

int main(void)
{
  return it_script_main("pg_cancel_retry", test_pg_cancel_retry, 300);
}
