/*
 * Node-to-node transfer of a 1 GiB object between two hosts made of network namespaces, each with
 * its own /dev/shm: drives tests/netns/store_transfer.sh (which uses tests/netns/netns.sh) and
 * checks that the pulled copy's checksum matches the original's. Without root or network
 * namespaces the test says SKIP and why, and passes.
 *
 * This binary is also the script's tool, run inside the hosts (`test_store_transfer tool ...`,
 * tests/netns/store_tool.h). The script is found at $RAYC_SRC/tests/netns/, else three
 * directories above this binary (build/<flavor>/tests/).
 */
#include <check.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/netns/store_tool.h"

/* ---- the test ---- */

static char g_self[PATH_MAX];

/* The source tree's root (new string). */
static char *src_root(void)
{
  const char *s = getenv("RAYC_SRC");
  if (s && s[0])
    return xstrdup(s);
  char *path = xstrdup(g_self);
  for (int i = 0; i < 4; i++) {        /* <root>/build/<flavor>/tests/<binary> */
    char *up = xstrdup(dirname(path)); /* dirname may return its argument, or static memory */
    free(path);
    path = up;
  }
  return path;
}

START_TEST(test_transfer_1gib_between_namespace_hosts)
{
  const char *build = getenv("RAYC_BUILD");
  char *root = src_root();
  char *bdir = build && build[0] ? xstrdup(build) : xasprintf("%s/build/normal", root);
  char *cmd = xasprintf("bash '%s/tests/netns/store_transfer.sh' '%s' '%s' 1073741824 1 2>&1", root, bdir, g_self);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char line[1024], out[16384] = "";
  while (fgets(line, sizeof(line), p)) {
    fputs(line, stdout);
    if (strlen(out) + strlen(line) < sizeof(out))
      strcat(out, line);
  }
  int st = pclose(p);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (code == 77) {
    printf("SKIP: test_transfer_1gib_between_namespace_hosts: %s", out[0] ? out : "no network namespaces\n");
  } else {
    ck_assert_msg(code == 0, "store_transfer.sh failed (status %d):\n%s", code, out);
    ck_assert_ptr_nonnull(strstr(out, "checksum ok"));
    double secs = 0;
    const char *t = strstr(out, "transfer ");
    ck_assert(t && sscanf(t, "transfer %*s %lf", &secs) == 1);
    printf("1 GiB pulled between namespace hosts in %.3f s (%.2f GB/s)\n", secs, 1.073741824 / secs);
  }
  free(cmd);
  free(bdir);
  free(root);
}
END_TEST

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "tool") == 0)
    return store_tool_main(argc, argv);
  ssize_t n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
  if (n <= 0)
    return 1;
  g_self[n] = '\0';
  Suite *s = suite_create("store_transfer");
  TCase *tc = tcase_create("netns");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_transfer_1gib_between_namespace_hosts);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
