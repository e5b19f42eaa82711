/*
 * libFuzzer harness: the working-dir unpacker (common/pkg.c over libarchive), which every node
 * runs on packages a job submitter uploaded. The input is the archive. Whatever it holds (path
 * traversal, absolute paths, links, devices, huge or sparse files), unpacking either succeeds
 * inside the target directory or refuses and leaves nothing: after each run the only entry the
 * scratch directory may hold is the target itself (on success), and nothing else.
 */
#include "common/pkg.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64], target[96];

/* Entries of base other than "." and ".."; the name of one that is not allowed goes to *bad. */
static int base_entries(const char *allowed, const char **bad)
{
  static char name[256];
  DIR *d = opendir(base);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    n++;
    if (!allowed || strcmp(e->d_name, allowed) != 0) {
      snprintf(name, sizeof(name), "%s", e->d_name);
      *bad = name;
    }
  }
  if (d)
    closedir(d);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!base[0]) {
    snprintf(base, sizeof(base), "/tmp/rayc-fuzz-pkg.XXXXXX");
    if (!mkdtemp(base))
      abort();
    snprintf(target, sizeof(target), "%s/wd", base);
  }
  unpack_limits_t lim = {.max_total = 1 << 20, .max_file = 256 << 10, .max_entries = 200};
  char *err = NULL;
  int rc = pkg_unpack(data, size, target, &lim, &err);
  const char *bad = NULL;
  base_entries(rc == 0 ? "wd" : NULL, &bad);
  if (bad) {
    fprintf(stderr, "pkg_unpack (rc %d) left '%s' in %s\n", rc, bad, base);
    abort();
  }
  if ((rc != 0) != (err != NULL))
    abort();
  free(err);
  if (rc == 0)
    pkg_remove_tree(target);
  return 0;
}
