/*
 * Node-to-node transfer of a 1 GiB object between two hosts made of network namespaces, each with
 * its own /dev/shm: drives tests/netns/store_transfer.sh (which uses tests/netns/netns.sh) and
 * checks that the pulled copy's checksum matches the original's. Without root or network
 * namespaces the test says SKIP and why, and passes.
 *
 * This binary is also the script's tool, run inside the hosts:
 *   test_store_transfer tool wait SOCK            waits for the store, prints its object-manager port
 *   test_store_transfer tool put SOCK SIZE SEED   creates object SEED of SIZE bytes, prints its checksum
 *   test_store_transfer tool pull SOCK SEED SRC   pulls object SEED from SRC (ip:port), prints
 *                                                 "<checksum> <seconds of the pull>"
 *   test_store_transfer tool delete SOCK SEED     deletes object SEED
 * The script is found at $RAYC_SRC/tests/netns/, else three directories above this binary
 * (build/<flavor>/tests/).
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

#include "common/ids.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_client.h"

/* ---- the tool ---- */

static void tool_id(uint8_t *id, const char *seed)
{
  memset(id, 0x7a, ID_OBJECT_SIZE);
  uint32_t n = (uint32_t)strtoul(seed, NULL, 10);
  memcpy(id, &n, sizeof(n));
}

/* A checksum fast enough for a gigabyte: two interleaved multiply-add chains over 8-byte words. */
static uint64_t tool_checksum(const uint8_t *p, uint64_t len)
{
  uint64_t a = 1469598103934665603ULL, b = 0x9E3779B97F4A7C15ULL, w0, w1;
  uint64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    memcpy(&w0, p + i, 8);
    memcpy(&w1, p + i + 8, 8);
    a = (a ^ w0) * 0x100000001B3ULL;
    b = (b ^ w1) * 0xC2B2AE3D27D4EB4FULL;
  }
  for (; i < len; i++)
    a = (a ^ p[i]) * 0x100000001B3ULL;
  return a ^ (b >> 1) ^ len;
}

static int tool_connect(const char *sock, store_client_t **c, int wait_ms)
{
  int rc = store_client_connect(sock, c);
  for (int k = 0; rc < 0 && k < wait_ms / 20; k++) {
    usleep(20000);
    rc = store_client_connect(sock, c);
  }
  if (rc < 0)
    fprintf(stderr, "tool: cannot connect to %s: %s\n", sock, store_client_last_error());
  return rc;
}

static int tool_put(store_client_t *c, uint64_t size, const char *seed)
{
  uint8_t id[ID_OBJECT_SIZE], *buf;
  tool_id(id, seed);
  int rc = store_client_create(c, id, size, 0, NULL, 0, 10000, &buf);
  if (rc < 0) {
    fprintf(stderr, "tool: create: %s\n", store_client_last_error());
    return 1;
  }
  uint64_t x = strtoull(seed, NULL, 10) * 0x9E3779B97F4A7C15ULL + 1;
  for (uint64_t i = 0; i + 8 <= size; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    memcpy(buf + i, &x, 8);
  }
  for (uint64_t i = size & ~7ULL; i < size; i++)
    buf[i] = (uint8_t)i;
  printf("%016" PRIx64 "\n", tool_checksum(buf, size));
  rc = store_client_seal(c, id);
  if (rc == 0)
    rc = store_client_release(c, id);
  return rc ? 1 : 0;
}

static int tool_pull(store_client_t *c, const char *seed, const char *src)
{
  uint8_t id[ID_OBJECT_SIZE];
  store_object_t o;
  tool_id(id, seed);
  int64_t t0 = now_us();
  int rc = store_client_pull(c, id, &src, 1, 120000);
  double secs = (double)(now_us() - t0) / 1e6;
  if (rc < 0) {
    fprintf(stderr, "tool: pull: %s: %s\n", rayc_strerror(rc), store_client_last_error());
    return 1;
  }
  if (store_client_get(c, id, 1, 0, &o) != 0 || !o.found) {
    fprintf(stderr, "tool: the pulled object is not in the store\n");
    return 1;
  }
  printf("%016" PRIx64 " %.4f\n", tool_checksum(o.data, o.data_size), secs);
  return store_client_release(c, id) ? 1 : 0;
}

static int tool_main(int argc, char **argv)
{
  store_client_t *c = NULL;
  int rc = 2;
  if (argc < 4 || tool_connect(argv[3], &c, strcmp(argv[2], "wait") == 0 ? 10000 : 0) < 0)
    return 2;
  if (strcmp(argv[2], "wait") == 0) {
    store_stats_t st;
    rc = store_client_stats(c, &st) == 0 && printf("%d\n", st.object_manager_port) > 0 ? 0 : 1;
  } else if (strcmp(argv[2], "put") == 0 && argc == 6) {
    rc = tool_put(c, strtoull(argv[4], NULL, 10), argv[5]);
  } else if (strcmp(argv[2], "pull") == 0 && argc == 6) {
    rc = tool_pull(c, argv[4], argv[5]);
  } else if (strcmp(argv[2], "delete") == 0 && argc == 5) {
    uint8_t id[ID_OBJECT_SIZE];
    tool_id(id, argv[4]);
    rc = store_client_delete(c, id, 1) ? 1 : 0;
  }
  store_client_destroy(c);
  return rc;
}

/* ---- the test ---- */

static char g_self[PATH_MAX];

/* The source tree's root (new string). */
static char *src_root(void)
{
  const char *s = getenv("RAYC_SRC");
  if (s && s[0])
    return xstrdup(s);
  char buf[PATH_MAX];
  snprintf(buf, sizeof(buf), "%s", g_self);
  for (int i = 0; i < 4; i++) /* <root>/build/<flavor>/tests/<binary> */
    snprintf(buf, sizeof(buf), "%s", dirname(buf));
  return xstrdup(buf);
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
    return tool_main(argc, argv);
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
