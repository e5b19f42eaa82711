/*
 * The `rayc up` test (`make test-system`): runs tests/system/rayc_up.sh, which boots three
 * containers running real systemd and sshd on namespace hosts and drives `rayc up`, a no-op second
 * `up`, a one-host config change, `rayc up --status`, per-host errors (an unreachable host,
 * refused authentication) and `rayc down` against them over OpenSSH, with the package ($RAYC_DEB,
 * from `make deb`). Needs root, network namespaces, systemd-nspawn and OpenSSH; without them it
 * reports the test as skipped.
 */
#include "../integration/itest_script.h"

START_TEST(test_rayc_up)
{
  const char *deb = getenv("RAYC_DEB");
  if (!deb || !*deb) {
    printf("SKIPPED: RAYC_DEB names no package (run through `make test-system`)\n");
    return;
  }
  it_script("system/rayc_up.sh", deb, "root, network namespaces, systemd-nspawn and OpenSSH");
}
END_TEST

int main(void)
{
  return it_script_main("rayc_up", test_rayc_up, 1200);
}
