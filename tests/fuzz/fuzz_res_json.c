/*
 * libFuzzer harness: the raylet's `--resources` JSON (raylet_res_parse_json in
 * raylet/raylet_resources.c, jansson underneath), as `rayc start --resources '{"GPU": 2}'` hands it
 * over. An accepted set must be one the GCS accepts when the raylet registers with it (the bounds of
 * common/rpc_valid.c: names 1..95 bytes, amounts finite and 0..1e15, at most RES_MAX entries): a
 * parse that accepts what registration then refuses leaves a node that can never join. A refused
 * set must leave the table as it was.
 */
#include "raylet/raylet.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *json = malloc(size + 1);
  memcpy(json, data, size);
  json[size] = '\0';
  static raylet_res_t r, before;
  memset(&r, 0, sizeof(r));
  raylet_res_set(&r, "CPU", 2);
  raylet_res_set(&r, "memory", 1e9);
  before = r;
  if (raylet_res_parse_json(&r, json) == 0) {
    for (int i = 0; i < r.n; i++) {
      size_t len = strnlen(r.name[i], RES_NAME_MAX);
      if (len == 0 || len >= RES_NAME_MAX || !isfinite(r.amount[i]) || r.amount[i] < 0 || r.amount[i] > 1e15)
        abort(); /* accepted here, refused by the GCS */
    }
  } else if (memcmp(&r, &before, sizeof(r)) != 0) {
    abort(); /* a refused set changed the table */
  }
  free(json);
  return 0;
}
