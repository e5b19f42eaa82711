/*
 * Test binaries that run one multi-host script of tests/netns/ (namespace hosts need root and
 * `ip netns`; without them the script exits 77 and the test says SKIPPED). Header-only, beside
 * itest.h.
 */
#ifndef RAYC_ITEST_NETNS_H
#define RAYC_ITEST_NETNS_H

#include "itest.h"

/* Runs `bash tests/netns/SCRIPT BUILD ARGS`, dropping drivers' warning lines and the shell's
 * "Killed" notes from its output (pipefail keeps the script's status), and fails the test unless
 * it exits 0 or 77 (skipped). */
static inline void it_netns_script(const char *script, const char *args)
{
  it_find_build();
  char cmd[4096];
  snprintf(cmd, sizeof(cmd),
           "bash -o pipefail -c \"bash %s/../../tests/netns/%s %s %s 2>&1 | grep -v -E ' W driver|Killed'\"", it_build,
           script, it_build, args);
  int rc = it_run(cmd);
  if (rc == 77) {
    printf("SKIPPED: multi-host test needs root and network namespaces\n");
    return;
  }
  ck_assert_msg(rc == 0, "%s exited %d (its output is above)", script, rc);
}

/* main() of such a binary: one suite holding one test, with a timeout of timeout_s seconds. */
static inline int it_netns_main(const char *suite, const TTest *test, double timeout_s)
{
  Suite *s = suite_create(suite);
  TCase *tc = tcase_create("hosts");
  tcase_set_timeout(tc, timeout_s);
  tcase_add_test(tc, test);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

#endif
