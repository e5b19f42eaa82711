/*
 * it_connections_to: what a test reads of a process's sockets in /proc. Header-only, shared by the
 * integration tests that check which connections a daemon or worker holds.
 */
#ifndef RAYC_ITEST_PROC_H
#define RAYC_ITEST_PROC_H

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

/* The TCP connections process pid holds to port (established), read from /proc. */
static inline int it_connections_to(long pid, int port)
{
  char path[512], link[128], line[512];
  long inodes[512];
  size_t n = 0;
  snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
  DIR *d = opendir(path);
  for (struct dirent *e; d && (e = readdir(d)) && n < 512;) {
    snprintf(path, sizeof(path), "/proc/%ld/fd/%s", pid, e->d_name);
    ssize_t k = readlink(path, link, sizeof(link) - 1);
    link[k > 0 ? k : 0] = '\0';
    if (sscanf(link, "socket:[%ld]", &inodes[n]) == 1)
      n++;
  }
  if (d)
    closedir(d);
  int count = 0;
  for (int v6 = 0; v6 < 2; v6++) { /* a dual-stack socket shows in tcp6 (::ffff:127.0.0.1) */
    snprintf(path, sizeof(path), "/proc/%ld/net/tcp%s", pid, v6 ? "6" : "");
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
      unsigned rport, st;
      long inode;
      if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*d %*d %ld", &rport, &st,
                 &inode) != 3)
        continue;
      for (size_t i = 0; i < n; i++)
        count += (int)rport == port && st == 1 && inodes[i] == inode;
    }
    if (f)
      fclose(f);
  }
  return count;
}

#endif
