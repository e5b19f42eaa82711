/*
 * libFuzzer harness: the YAML settings parser (common/cfg.c, libyaml underneath), as every daemon
 * runs it on --config FILE. The input is the file (in a memfd); the table has a setting of every
 * type, and the program's own section is "raylet", so sections, unknown keys, JSON-as-string
 * mappings and bad values are all reached. Loading must return 0 or an error with a message, and
 * release everything (ASan reports leaks).
 */
#include "common/cfg.h"
#include "common/status.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_conf {
  int i;
  int64_t big;
  double d;
  int b;
  char *s, *json;
} fuzz_conf_t;

static const cfg_entry_t table[] = {
    {"num", CFG_INT, offsetof(fuzz_conf_t, i), "1", "an int"},
    {"memory", CFG_INT64, offsetof(fuzz_conf_t, big), "0", "an int64 with suffixes"},
    {"ratio", CFG_DOUBLE, offsetof(fuzz_conf_t, d), "0.5", "a double"},
    {"flag", CFG_BOOL, offsetof(fuzz_conf_t, b), "false", "a bool"},
    {"name", CFG_STRING, offsetof(fuzz_conf_t, s), "x", "a string"},
    {"resources", CFG_STRING, offsetof(fuzz_conf_t, json), NULL, "a mapping stored as JSON"},
};

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (memfd < 0) {
    memfd = memfd_create("fuzz_cfg", MFD_CLOEXEC);
    cfg_set_program("raylet");
    unsetenv("RAYC_CONFIG");
  }
  if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
    abort();
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
  char *argv[] = {(char *)"fuzz", (char *)"--config", path, NULL};
  fuzz_conf_t conf = {0};
  char *err = NULL;
  int rc = cfg_load(table, sizeof(table) / sizeof(table[0]), &conf, 3, argv, NULL, &err);
  if (rc != 0 && rc != RAYC_EINVALID_ARGUMENT)
    abort();
  if ((rc != 0) != (err != NULL))
    abort(); /* an error always comes with its message, and only then */
  free(err);
  cfg_release(table, sizeof(table) / sizeof(table[0]), &conf);
  return 0;
}
