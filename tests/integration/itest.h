/*
 * Shared scaffolding for integration tests: find the build, start a real head node with the rayc
 * CLI in a temp dir (before check forks: no gRPC there), stop it, and check that nothing was left
 * behind and no sanitizer complained. it_start exports RAYC_ADDRESS and RAYC_TOKEN_FILE (the
 * head's <temp-dir>/cluster_token), so drivers and rayc commands the tests run find the cluster. Header-only so each test binary stays one source file.
 */
#ifndef RAYC_ITEST_H
#define RAYC_ITEST_H

#include "object-store/store_client.h"
#include "rayc.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char it_build[1024];
static char it_temp[512];
static char it_address[128];
static char it_code_path[1200];

/* Monotonic seconds, for a test's deadlines (never asserted as a speed). */
static inline double it_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void it_sleep_ms(int ms)
{
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline int it_run(const char *cmd)
{
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static inline void it_find_build(void)
{
  const char *b = getenv("RAYC_BUILD");
  if (b) {
    snprintf(it_build, sizeof(it_build), "%s", b);
    return;
  }
  char exe[1024];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  *strrchr(exe, '/') = '\0';
  *strrchr(exe, '/') = '\0';
  snprintf(it_build, sizeof(it_build), "%s", exe);
}

/* Counts live processes (not this one) whose command line contains needle. */
static inline int it_count_procs(const char *needle)
{
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
      continue;
    char path[300], buf[4096];
    snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (size_t i = 0; i < len; i++)
      if (buf[i] == '\0')
        buf[i] = ' ';
    buf[len] = '\0';
    if (len && strstr(buf, needle))
      n++;
  }
  closedir(d);
  return n;
}

/* Starts a head node with extra `rayc start` flags; code path = libname in the build's lib/. */
static inline int it_start(const char *libname, const char *flags)
{
  it_find_build();
  snprintf(it_temp, sizeof(it_temp), "/tmp/rayc-itest-XXXXXX");
  if (!mkdtemp(it_temp))
    return -1;
  snprintf(it_code_path, sizeof(it_code_path), "%s/lib/%s", it_build, libname);
  char cmd[4096], path[700];
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc start --head --port 0 --temp-dir %s %s > %s/start.out 2>&1", it_build,
           it_temp, flags ? flags : "", it_temp);
  if (it_run(cmd) != 0) {
    snprintf(cmd, sizeof(cmd), "cat %s/start.out", it_temp);
    it_run(cmd);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/session_latest/address", it_temp);
  FILE *f = fopen(path, "r");
  if (!f || !fgets(it_address, sizeof(it_address), f))
    return -1;
  fclose(f);
  it_address[strcspn(it_address, "\n")] = '\0';
  setenv("RAYC_ADDRESS", it_address, 1);
  setenv("RAYC_CODE_PATH", it_code_path, 1);
  snprintf(path, sizeof(path), "%s/cluster_token", it_temp); /* the head's token, for drivers */
  setenv("RAYC_TOKEN_FILE", path, 1);
  return 0;
}

/* Stops the node; returns the number of problems (stop failed, processes left, sanitizer
 * reports), and removes the temp dir when there were none. */
static inline int it_stop(void)
{
  char cmd[4096];
  int problems = 0;
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc stop --temp-dir %s > /dev/null", it_build, it_temp);
  if (it_run(cmd) != 0)
    problems++, printf("rayc stop failed\n");
  int left = it_count_procs(it_temp);
  if (left)
    problems++, printf("%d processes of the session left after rayc stop\n", left);
  snprintf(cmd, sizeof(cmd), "grep -l -E 'Sanitizer|runtime error' -r %s --include='*.out'", it_temp);
  if (it_run(cmd) == 0)
    problems++, printf("sanitizer reports in the files above\n");
  if (!problems) {
    snprintf(cmd, sizeof(cmd), "rm -rf %s", it_temp);
    it_run(cmd);
  }
  return problems;
}

static inline void it_connect(void)
{
  rayc_config cfg = {.address = it_address, .code_path = it_code_path};
  int rc = rayc_init(&cfg);
  ck_assert_msg(rc == 0, "rayc_init: %s", rayc_last_error());
}

/* rayc_get of one int64 result; *rc gets the status. */
static inline int64_t it_get_i64(const rayc_ref *r, int *rc)
{
  rayc_buf b;
  int64_t v = -1;
  *rc = rayc_get(r, 1, 60000, &b);
  if (*rc == 0) {
    if (b.len == sizeof(v))
      memcpy(&v, b.data, sizeof(v));
    rayc_buf_release(&b, 1);
  }
  return v;
}

/* The fields of /proc/<pid>/stat after the command name, from the state on ("S 1 ...") into buf;
 * NULL when pid is gone. */
static inline const char *it_proc_stat(long pid, char *buf, size_t len)
{
  char path[64];
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' ? p + 2 : NULL;
}

/* /proc/<pid>/cmdline with spaces between the arguments ("" when it is gone). */
static inline void it_cmdline(long pid, char *out, size_t len)
{
  char path[64];
  snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(out, 1, len - 1, f) : 0;
  if (f)
    fclose(f);
  for (size_t i = 0; i < n; i++)
    out[i] = out[i] ? out[i] : ' ';
  out[n] = '\0';
}

/* pid's parent (0 when pid is gone). */
static inline long it_parent_of(long pid)
{
  char buf[1024];
  long ppid = 0;
  const char *p = it_proc_stat(pid, buf, sizeof(buf));
  if (p)
    sscanf(p, "%*c %ld", &ppid);
  return ppid;
}

/* Bytes in use in the head node's store, asked of the store itself. */
static inline uint64_t it_store_used(void)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/session_latest/sockets/store", it_temp);
  store_client_t *c = NULL;
  ck_assert_int_eq(store_client_connect(path, &c), 0);
  store_stats_t st;
  ck_assert_int_eq(store_client_stats(c, &st), 0);
  store_client_destroy(c);
  return st.bytes_used;
}

/* Runs the suite, stops the cluster, and returns main's exit status. */
static inline int it_finish(Suite *s)
{
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  failed += it_stop();
  return failed ? 1 : 0;
}

#endif
