/*
 * Driver for the TLS multi-node check of tests/integration/test_security.c:
 * runs against a two-node cluster whose nodes carry the custom resources n1 and
 * n2, with every gRPC channel on mutual TLS (RAYC_TLS_* set) and the token from
 * RAYC_TOKEN_FILE. Exercises each kind of channel: driver -> GCS and raylets
 * (leases, spillback), driver -> workers (task pushes), GCS -> raylet (actor
 * placement) and workers (actor life), store -> store (object transfers),
 * worker -> GCS. Prints "secure: ok" and exits 0, or says what failed and
 * exits 1. With $SECURE_HOLD set to a path, it prints "secure: holding" once
 * its workers and actor are up and waits (at most 60 s) for that file to exist
 * before it leaves, so the test can look at them.
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

enum { BIG = 6 << 20 };

static rayc_task_opts on_node(const char *res, rayc_resource *r)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  r->name = res;
  r->amount = 1;
  o.resources = r;
  o.nresources = 1;
  return o;
}

/* The id of the node a task needing res runs on. */
static void node_of(const char *res, char *out)
{
  rayc_resource r;
  rayc_task_opts o = on_node(res, &r);
  int64_t ms = 0;
  rayc_arg a = RAYC_ARG_VAL(&ms, sizeof(ms));
  rayc_ref ref;
  rayc_buf b;
  CHECK(rayc_remote("where", &a, 1, &o, &ref) == 0, "submit where on %s", res);
  CHECK(rayc_get(&ref, 1, 60000, &b) == 0, "where on %s", res);
  snprintf(out, RAYC_NODE_ID_HEX_LEN, "%.*s", (int)b.len, (const char *)b.data);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&ref);
}

/* A BIG object made by a task on the node with res, read here (pulled across
 * nodes when this driver is on the other one). */
static void big_object_from(const char *res, int64_t seed)
{
  rayc_resource r;
  rayc_task_opts o = on_node(res, &r);
  int64_t n = BIG;
  rayc_arg a[2] = {RAYC_ARG_VAL(&n, sizeof(n)), RAYC_ARG_VAL(&seed, sizeof(seed))};
  rayc_ref ref;
  rayc_buf b;
  CHECK(rayc_remote("bytes", a, 2, &o, &ref) == 0, "submit bytes on %s", res);
  CHECK(rayc_get(&ref, 1, 60000, &b) == 0, "get the object made on %s", res);
  CHECK(b.len == BIG, "object from %s has %zu bytes", res, b.len);
  const unsigned char *p = b.data;
  for (size_t i = 0; i < b.len; i += 4093)
    CHECK(p[i] == (unsigned char)(i + (size_t)seed), "object from %s: byte %zu wrong", res, i);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&ref);
}

int main(void)
{
  CHECK(rayc_init(NULL) == 0, "rayc_init");
  char n1[RAYC_NODE_ID_HEX_LEN], n2[RAYC_NODE_ID_HEX_LEN], here[RAYC_NODE_ID_HEX_LEN];
  node_of("n1", n1);
  node_of("n2", n2);
  CHECK(strcmp(n1, n2) != 0, "n1 and n2 ran on the same node %s", n1);
  CHECK(rayc_node_id(here) == 0, "rayc_node_id");
  big_object_from("n1", 3);
  big_object_from("n2", 5);

  rayc_resource r = {.name = "n2", .amount = 1};
  rayc_actor_opts ao;
  rayc_actor_opts_init(&ao);
  ao.resources = &r;
  ao.num_resources = 1;
  rayc_actor act;
  CHECK(rayc_actor_create("TCounter", NULL, 0, &ao, &act) == 0, "create an actor on n2");
  int64_t by = 5;
  rayc_arg a = RAYC_ARG_VAL(&by, sizeof(by));
  rayc_ref ref;
  rayc_buf b;
  CHECK(rayc_actor_call(&act, "incr", &a, 1, NULL, &ref) == 0, "call the actor");
  CHECK(rayc_get(&ref, 1, 60000, &b) == 0, "the actor's reply");
  int64_t v = 0;
  memcpy(&v, b.data, b.len == sizeof(v) ? sizeof(v) : 0);
  CHECK(v == 5, "the actor returned %lld", (long long)v);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&ref);
  const char *hold = getenv("SECURE_HOLD");
  if (hold && *hold) {
    printf("secure: holding\n");
    fflush(stdout);
    for (int i = 0; i < 600 && access(hold, F_OK) != 0; i++)
      usleep(100 * 1000);
  }
  rayc_shutdown();
  printf("secure: ok (driver on %.8s, nodes %.8s and %.8s)\n", here, n1, n2);
  return 0;
}
