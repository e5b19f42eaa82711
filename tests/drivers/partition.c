/*
 * Driver of the partition test (tests/netns/partition.sh). Creates a TCounter actor that needs the
 * custom resource "pin" (hosts 2 and 3 have one each), with unlimited restarts and call retries,
 * its constructor appending a line to $CTOR_LOG (one per generation); prints READY, then calls
 * incr every 50 ms until $PARTITION_STOP exists. Every answer must be the previous + 1 or 1 (a new
 * generation starts from 0). Prints "PASS partition: N calls, G generations seen".
 */
#include <rayc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond, ...)                    \
  do {                                      \
    if (!(cond)) {                          \
      printf("FAIL: " __VA_ARGS__);         \
      printf(" [%s]\n", rayc_last_error()); \
      exit(1);                              \
    }                                       \
  } while (0)

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *stop = getenv("PARTITION_STOP"), *log = getenv("CTOR_LOG");
  CHECK(stop && log, "PARTITION_STOP and CTOR_LOG must be set");
  CHECK(rayc_init(NULL) == 0, "rayc_init");
  rayc_resource pin = {"pin", 1};
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_restarts = -1;
  o.max_task_retries = -1;
  o.resources = &pin;
  o.num_resources = 1;
  rayc_arg ctor = RAYC_ARG_VAL(log, strlen(log));
  rayc_actor a;
  CHECK(rayc_actor_create("TCounter", &ctor, 1, &o, &a) == 0, "create the actor");
  int64_t last = 0, calls = 0, generations = 1;
  int ready = 0;
  while (access(stop, F_OK) != 0) {
    int64_t by = 1;
    rayc_arg arg = RAYC_ARG_VAL(&by, sizeof(by));
    rayc_ref r;
    CHECK(rayc_actor_call(&a, "incr", &arg, 1, NULL, &r) == 0, "call %lld", (long long)calls);
    rayc_buf b;
    CHECK(rayc_get(&r, 1, 120000, &b) == 0 && b.len == 8, "result of call %lld", (long long)calls);
    int64_t v;
    memcpy(&v, b.data, 8);
    rayc_buf_release(&b, 1);
    rayc_ref_release(&r);
    CHECK(v == last + 1 || v == 1, "call %lld answered %lld after %lld", (long long)calls, (long long)v,
          (long long)last);
    generations += v == 1 && last != 0;
    last = v;
    calls++;
    if (!ready) {
      printf("READY\n");
      ready = 1;
    }
    usleep(50000);
  }
  printf("PASS partition: %lld calls, %lld generations seen\n", (long long)calls, (long long)generations);
  rayc_shutdown();
  return 0;
}
