/*
 * Counting this process's threads by name, for tests that check a thread pool starts and stops
 * (test_cw_copy, test_put_copy). Header-only: each test binary includes it once.
 */
#ifndef RAYC_TESTS_PROC_THREADS_H
#define RAYC_TESTS_PROC_THREADS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* The number of this process's threads whose name (/proc/self/task/N/comm) starts with prefix. */
static inline int proc_threads_named(const char *prefix)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d))) {
    char path[300], comm[32] = "";
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
    if (f && fgets(comm, sizeof(comm), f) && strncmp(comm, prefix, strlen(prefix)) == 0)
      n++;
    if (f)
      fclose(f);
  }
  if (d)
    closedir(d);
  return n;
}

#endif
