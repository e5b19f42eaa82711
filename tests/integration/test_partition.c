/*
 * A network partition: runs tests/netns/partition.sh (the host running an actor is cut off with
 * `ip link set down`: declared dead, the actor restarted elsewhere while calls go on; when the link
 * returns the cut-off raylet learns it was declared dead, ends its workers and registers again; the actor's
 * constructor ran once per generation). Skipped without root and `ip netns`.
 */
#include "itest.h"

START_TEST(test_partition)
{
  it_find_build();
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "bash %s/../../tests/netns/partition.sh %s 2>&1 | grep -v ' W driver'", it_build,
           it_build);
  /* pipefail so the script's status survives the filter */
  char full[4200];
  snprintf(full, sizeof(full), "bash -o pipefail -c \"%s\"", cmd);
  int rc = it_run(full);
  if (rc == 77) {
    printf("SKIPPED: multi-host test needs root and network namespaces\n");
    return;
  }
  ck_assert_msg(rc == 0, "partition.sh exited %d", rc);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("partition");
  TCase *tc = tcase_create("hosts");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_partition);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
