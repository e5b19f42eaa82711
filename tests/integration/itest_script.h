/*
 * Test binaries that run one script of tests/netns/ or tests/system/ (namespace hosts, containers:
 * a script that cannot run here exits 77 and the test says SKIPPED with what it needs).
 * Header-only, beside itest.h.
 */
#ifndef RAYC_ITEST_SCRIPT_H
#define RAYC_ITEST_SCRIPT_H

#include "itest.h"

#define NETNS_NEEDS "root and network namespaces (ip netns)"

/* Runs `bash tests/SCRIPT BUILD ARGS`, dropping drivers' warning lines and the shell's "Killed"
 * notes from its output (pipefail keeps the script's status), and fails the test unless it exits 0
 * or 77 (skipped: the script needs what `needs` says). */
static inline void it_script(const char *script, const char *args, const char *needs)
{
  it_find_build();
  char cmd[4096];
  snprintf(cmd, sizeof(cmd),
           "bash -o pipefail -c \"bash %s/../../tests/%s %s %s 2>&1 | grep -v -E ' W driver|Killed'\"", it_build,
           script, it_build, args);
  int rc = it_run(cmd);
  if (rc == 77) {
    printf("SKIPPED: %s needs %s\n", script, needs);
    return;
  }
  ck_assert_msg(rc == 0, "%s exited %d (its output is above)", script, rc);
}

/* main() of such a binary: one suite holding one test, with a timeout of timeout_s seconds. */
static inline int it_script_main(const char *suite, const TTest *test, double timeout_s)
{
  Suite *s = suite_create(suite);
  TCase *tc = tcase_create("script");
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
