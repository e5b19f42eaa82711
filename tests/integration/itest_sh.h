/*
 * it_sh: runs a shell command line for a test, with stderr folded into stdout. Header-only, shared
 * by the integration tests that drive the rayc CLI.
 */
#ifndef RAYC_ITEST_SH_H
#define RAYC_ITEST_SH_H

#include "common/util.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Returns the command's exit status (128 + signal when killed) and, when out is not NULL, its
 * output (new; free()). */
static inline int it_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int it_sh(char **out, const char *fmt, ...)
{
  va_list ap;
  char *cmd = NULL;
  va_start(ap, fmt);
  ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
  va_end(ap);
  char *full = xasprintf("(%s) 2>&1", cmd);
  FILE *p = popen(full, "r");
  ck_assert_ptr_nonnull(p);
  size_t len = 0, cap = 4096;
  char *buf = xmalloc(cap);
  for (size_t n; (n = fread(buf + len, 1, cap - len - 1, p)) > 0;) {
    len += n;
    if (cap - len < 1024)
      buf = xrealloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int st = pclose(p);
  if (out)
    *out = buf;
  else
    free(buf);
  free(full);
  free(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs cmd every 100 ms, at most tries times, until its output contains needle; returns whether
 * it did, and in *out the last output (new; free()). */
static inline int it_sh_until(char **out, const char *needle, int tries, const char *cmd)
{
  *out = NULL;
  for (int i = 0; i < tries; i++) {
    if (i > 0)
      usleep(100 * 1000);
    free(*out);
    it_sh(out, "%s", cmd);
    if (strstr(*out, needle))
      return 1;
  }
  return 0;
}

/* The value of `series` (exactly as exposed, labels included) in a Prometheus text page; 0 when
 * absent. */
static inline double it_metric_value(const char *page, const char *series)
{
  double v = 0;
  size_t n = strlen(series);
  for (const char *p = page; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      v = strtod(p + n + 1, NULL);
  return v;
}

#endif
