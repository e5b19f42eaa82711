/*
 * A C driver calling a Python function by name: rayc_remote("pyname:NAME", ...) with
 * opts.language = RAYC_LANG_PYTHON and bytes arguments; prints the result's bytes. Used by
 * tests/python/test_cross_language.py.
 *
 *   py_call NAME ARG...      (RAYC_ADDRESS and RAYC_TOKEN_FILE name the cluster)
 */
#include "rayc.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
  if (argc < 2 || argc > 10) {
    fprintf(stderr, "usage: py_call NAME ARG...\n");
    return 2;
  }
  if (rayc_init(NULL) != 0) {
    fprintf(stderr, "rayc_init: %s\n", rayc_last_error());
    return 1;
  }
  char fn[256];
  snprintf(fn, sizeof(fn), "pyname:%s", argv[1]);
  rayc_arg args[8];
  for (int i = 2; i < argc; i++)
    args[i - 2] = RAYC_ARG_VAL(argv[i], strlen(argv[i]));
  rayc_task_opts opts;
  rayc_task_opts_init(&opts);
  opts.language = RAYC_LANG_PYTHON;
  rayc_ref ref;
  rayc_buf out;
  int rc = rayc_remote(fn, args, (size_t)(argc - 2), &opts, &ref);
  if (rc == 0)
    rc = rayc_get(&ref, 1, 60000, &out);
  if (rc != 0) {
    fprintf(stderr, "py_call: %s: %s\n", rayc_strerror(rc), rayc_last_error());
    rayc_shutdown();
    return 1;
  }
  printf("%.*s\n", (int)out.len, (const char *)out.data);
  rayc_buf_release(&out, 1);
  rayc_ref_release(&ref);
  rayc_shutdown();
  return 0;
}
