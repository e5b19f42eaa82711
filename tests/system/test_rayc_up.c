/*
 * The `rayc up` test (`make test-system`): runs tests/system/rayc_up.sh, which boots three
 * containers running real systemd and sshd on namespace hosts and drives `rayc up`, a no-op second
 * `up`, a one-host config change, `rayc up --status`, per-host errors (an unreachable host,
 * refused authentication) and `rayc down` against them over OpenSSH, with the package ($RAYC_DEB,
 * from `make deb`). Needs root, network namespaces, systemd-nspawn and OpenSSH; without them it
 * reports the test as skipped.
 */
#include "../integration/itest.h"

START_TEST(test_rayc_up)
{
  it_find_build();
  const char *deb = getenv("RAYC_DEB");
  if (!deb || !*deb) {
    printf("SKIPPED: RAYC_DEB names no package (run through `make test-system`)\n");
    return;
  }
  char cmd[4096];
  snprintf(cmd, sizeof(cmd), "bash %s/../../tests/system/rayc_up.sh %s %s", it_build, it_build, deb);
  int rc = it_run(cmd);
  if (rc == 77) {
    printf("SKIPPED: the rayc up test needs root, network namespaces, systemd-nspawn and OpenSSH\n");
    return;
  }
  ck_assert_msg(rc == 0, "rayc_up.sh exited %d", rc);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("rayc_up");
  TCase *tc = tcase_create("ssh");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, test_rayc_up);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
