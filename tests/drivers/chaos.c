/*
 * Driver of the chaos suite (tests/netns/chaos.sh): runs rounds of checked work on a 3-host cluster
 * while the script's killer SIGKILLs and pauses daemons and workers, until $CHAOS_STOP exists.
 * Each round:
 *   - a DAG of 2,047 tasks: add1(i) for i < 1024, then a tree of add(a, b) reducing them to one;
 *     every level-1 sum and the final sum (524,800) are checked;
 *   - 5 actors (max_restarts and max_task_retries unlimited), 10 incr calls each: every answer is
 *     the previous one + 1 (same incarnation) or 1 (a restart lost the state, which TCounter does
 *     not keep): anything else is an inconsistency;
 *   - a placement group of 2 one-CPU bundles is created, waited for and removed;
 *   - every other round, 24 objects of 6 MiB (more than a node's 96 MiB store: spilling) are put,
 *     read back and checked byte by byte.
 * Prints "PASS chaos: R rounds, T tasks, C actor calls, O objects checked" or "FAIL: ..." with the
 * first wrong result, and exits non-zero on a failure.
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

enum { LEAVES = 1024, ACTORS = 5, CALLS = 10, OBJECTS = 24, OBJECT_BYTES = 6 << 20 };

static long tasks_checked, calls_checked, objects_checked;

static int64_t get_i64(rayc_ref *r, const char *what, long i)
{
  rayc_buf b;
  int rc = rayc_get(r, 1, 300000, &b);
  CHECK(rc == 0 && b.len == 8, "%s %ld: rayc_get %d", what, i, rc);
  int64_t v;
  memcpy(&v, b.data, 8);
  rayc_buf_release(&b, 1);
  return v;
}

static rayc_task_opts task_opts(void)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.max_retries = 1000; /* workers and nodes die under the killer: retry (nearly) until it works */
  return o;
}

static void dag_round(void)
{
  static rayc_ref level[LEAVES];
  rayc_task_opts o = task_opts();
  for (int64_t i = 0; i < LEAVES; i++) {
    rayc_arg a = RAYC_ARG_VAL(&i, sizeof(i));
    CHECK(rayc_remote("add1", &a, 1, &o, &level[i]) == 0, "submit add1(%lld)", (long long)i);
  }
  int n = LEAVES, depth = 0;
  while (n > 1) {
    for (int i = 0; i < n / 2; i++) {
      rayc_arg a[2] = {RAYC_ARG_REF(&level[2 * i]), RAYC_ARG_REF(&level[2 * i + 1])};
      rayc_ref out;
      CHECK(rayc_remote("add", a, 2, &o, &out) == 0, "submit add at depth %d", depth);
      rayc_ref_release(&level[2 * i]);
      rayc_ref_release(&level[2 * i + 1]);
      level[i] = out;
    }
    n /= 2;
    depth++;
    if (depth == 1) /* level-1 sums: (2i+1) + (2i+2) */
      for (int i = 0; i < n; i++)
        CHECK(get_i64(&level[i], "level-1 sum", i) == 4 * i + 3, "level-1 sum %d is wrong", i);
  }
  int64_t total = get_i64(&level[0], "final sum", 0);
  CHECK(total == (int64_t)LEAVES * (LEAVES + 1) / 2, "the DAG's sum is %lld, not %lld", (long long)total,
        (long long)LEAVES * (LEAVES + 1) / 2);
  rayc_ref_release(&level[0]);
  tasks_checked += 2 * LEAVES - 1;
}

static void actor_round(rayc_actor *actors, int64_t *last)
{
  for (int c = 0; c < CALLS; c++)
    for (int k = 0; k < ACTORS; k++) {
      int64_t by = 1;
      rayc_arg a = RAYC_ARG_VAL(&by, sizeof(by));
      rayc_ref r;
      CHECK(rayc_actor_call(&actors[k], "incr", &a, 1, NULL, &r) == 0, "actor %d call", k);
      int64_t v = get_i64(&r, "actor call", k);
      rayc_ref_release(&r);
      CHECK(v == last[k] + 1 || v == 1, "actor %d answered %lld after %lld: neither the next value nor a restart", k,
            (long long)v, (long long)last[k]);
      last[k] = v;
      calls_checked++;
    }
}

static void pg_round(void)
{
  rayc_resource cpu = {"CPU", 1};
  rayc_bundle b[2] = {{&cpu, 1}, {&cpu, 1}};
  rayc_placement_group pg;
  CHECK(rayc_placement_group_create(b, 2, RAYC_PG_SPREAD, NULL, &pg) == 0, "placement group create");
  CHECK(rayc_placement_group_wait(&pg, 120000) == 0, "placement group ready");
  CHECK(rayc_placement_group_remove(&pg) == 0, "placement group remove");
}

static void object_round(int round)
{
  static rayc_ref refs[OBJECTS];
  char *buf = malloc(OBJECT_BYTES);
  CHECK(buf != NULL, "malloc");
  for (int i = 0; i < OBJECTS; i++) {
    memset(buf, 'a' + (i + round) % 26, OBJECT_BYTES);
    memcpy(buf, &i, sizeof(i));
    CHECK(rayc_put(buf, OBJECT_BYTES, &refs[i]) == 0, "put object %d", i);
  }
  for (int i = 0; i < OBJECTS; i++) {
    rayc_buf b;
    CHECK(rayc_get(&refs[i], 1, 300000, &b) == 0, "get object %d", i);
    const char *p = b.data;
    int id;
    memcpy(&id, p, sizeof(id));
    int ok = b.len == OBJECT_BYTES && id == i;
    for (size_t k = sizeof(id); ok && k < b.len; k += 4096)
      ok = p[k] == 'a' + (i + round) % 26;
    rayc_buf_release(&b, 1);
    CHECK(ok, "object %d came back wrong", i);
    rayc_ref_release(&refs[i]);
    objects_checked++;
  }
  free(buf);
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *stop = getenv("CHAOS_STOP");
  CHECK(stop != NULL, "CHAOS_STOP is not set");
  CHECK(rayc_init(NULL) == 0, "rayc_init");
  rayc_actor actors[ACTORS];
  int64_t last[ACTORS] = {0};
  rayc_actor_opts ao;
  rayc_actor_opts_init(&ao);
  ao.max_restarts = -1;
  ao.max_task_retries = -1;
  for (int k = 0; k < ACTORS; k++)
    CHECK(rayc_actor_create("TCounter", NULL, 0, &ao, &actors[k]) == 0, "create actor %d", k);
  printf("READY\n");
  int round = 0;
  do {
    dag_round();
    actor_round(actors, last);
    pg_round();
    if (round % 2 == 0)
      object_round(round);
    round++;
    printf("round %d: %ld tasks, %ld actor calls, %ld objects checked\n", round, tasks_checked, calls_checked,
           objects_checked);
  } while (access(stop, F_OK) != 0);
  printf("PASS chaos: %d rounds, %ld tasks, %ld actor calls, %ld objects checked\n", round, tasks_checked,
         calls_checked, objects_checked);
  rayc_shutdown();
  return 0;
}
