/*
 * The helper that tests/netns/store_transfer.sh runs inside its namespace hosts, shared by the
 * programs that drive that script (tests/integration/test_store_transfer.c, bench/store_bench.c):
 * each calls store_tool_main() when its first argument is "tool".
 *
 *   PROG tool wait SOCK            waits (up to 10 s) for the store, prints its object-manager port
 *   PROG tool put SOCK SIZE SEED   creates object SEED of SIZE pseudo-random bytes, prints a checksum
 *   PROG tool pull SOCK SEED SRC   pulls object SEED from SRC (ip:port) into the store, then gets it;
 *                                  prints "<checksum> <seconds the pull took>"
 *   PROG tool delete SOCK SEED     deletes object SEED
 *
 * Exit status 0 on success, 1 on failure, 2 on bad usage. Header-only (static functions): include
 * it in exactly one file of a program, which links store_client.
 */
#ifndef RAYC_TESTS_STORE_TOOL_H
#define RAYC_TESTS_STORE_TOOL_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_client.h"

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

static int store_tool_main(int argc, char **argv)
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

#endif
