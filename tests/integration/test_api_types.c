/*
 * The API's sized output buffers and enum types, as a program meets them: every id writer fills a
 * buffer of exactly its RAYC_*_HEX_LEN (and not a byte past it), the hex it writes names the same
 * id again (parsed back, and taken as input: a node id as a NODE_AFFINITY target, an actor found
 * by name), and the typed enums (rayc_strategy, rayc_pg_strategy, rayc_language, rayc_actor_state)
 * are checked by the library, an out-of-range value being refused with a clear error. Linked with
 * librayc and check only, like a user's program.
 */
#include "itest.h"
#include "rayc_lang.h"

#include <ctype.h>
#include <stdint.h>

/* The sizes are what the ids need, and the enum fields keep the ABI of the ints they replaced. */
_Static_assert(RAYC_REF_HEX_LEN == 2 * RAYC_OBJECT_ID_SIZE + 1, "ref hex");
_Static_assert(RAYC_ACTOR_HEX_LEN == 2 * RAYC_ACTOR_ID_SIZE + 1, "actor hex");
_Static_assert(RAYC_PG_HEX_LEN == 2 * RAYC_PG_ID_SIZE + 1, "pg hex");
_Static_assert(sizeof(((rayc_task_opts *)0)->strategy) == sizeof(int), "strategy is int-sized");
_Static_assert(sizeof(((rayc_task_opts *)0)->language) == sizeof(int), "language is int-sized");
_Static_assert(sizeof(rayc_pg_strategy) == sizeof(int), "pg strategy is int-sized");

#define CANARY '#'

/* A buffer of exactly len bytes followed by one canary byte. */
typedef struct {
  char b[128];
} hexbuf_t;

static void hexbuf_init(hexbuf_t *h, size_t len)
{
  memset(h->b, CANARY, sizeof(h->b));
  ck_assert_uint_lt(len, sizeof(h->b));
}

/* The writer filled exactly len bytes: len - 1 lower-case hex digits, the NUL, canary untouched. */
static void hexbuf_check(const hexbuf_t *h, size_t len, const char *what)
{
  ck_assert_msg(h->b[len - 1] == '\0', "%s: no NUL at %zu", what, len - 1);
  ck_assert_msg(strlen(h->b) == len - 1, "%s: %zu digits, want %zu", what, strlen(h->b), len - 1);
  for (size_t i = 0; i + 1 < len; i++)
    ck_assert_msg(isxdigit((unsigned char)h->b[i]) && !isupper((unsigned char)h->b[i]), "%s: '%c' at %zu", what,
                  h->b[i], i);
  ck_assert_msg(h->b[len] == CANARY, "%s: wrote past its %zu bytes", what, len);
}

/* Parses 2n hex digits into out; 0 or -1. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1)
      return -1;
    out[i] = (uint8_t)v;
  }
  return s[2 * n] == '\0' ? 0 : -1;
}

/* rayc_node_id fills RAYC_NODE_ID_HEX_LEN; that hex, as a NODE_AFFINITY target, runs a task on
 * the node that reports the same id. */
static void check_node_id(void)
{
  hexbuf_t h;
  hexbuf_init(&h, RAYC_NODE_ID_HEX_LEN);
  ck_assert_int_eq(rayc_node_id(h.b), 0);
  hexbuf_check(&h, RAYC_NODE_ID_HEX_LEN, "rayc_node_id");
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_NODE_AFFINITY;
  o.node_affinity = h.b;
  rayc_ref r;
  ck_assert_msg(rayc_remote("where", NULL, 0, &o, &r) == 0, "%s", rayc_last_error());
  rayc_buf b;
  ck_assert_msg(rayc_get(&r, 1, 60000, &b) == 0, "%s", rayc_last_error());
  ck_assert_uint_eq(b.len, RAYC_NODE_ID_HEX_LEN - 1);
  ck_assert(memcmp(b.data, h.b, b.len) == 0);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
}

/* rayc_ref_hex fills RAYC_REF_HEX_LEN with the ref's id. */
static void check_ref_hex(void)
{
  rayc_ref r, back;
  ck_assert_int_eq(rayc_put("abc", 3, &r), 0);
  hexbuf_t h;
  hexbuf_init(&h, RAYC_REF_HEX_LEN);
  ck_assert_ptr_eq(rayc_ref_hex(&r, h.b), h.b);
  hexbuf_check(&h, RAYC_REF_HEX_LEN, "rayc_ref_hex");
  ck_assert_int_eq(unhex(h.b, back.id, RAYC_OBJECT_ID_SIZE), 0);
  ck_assert(memcmp(back.id, r.id, RAYC_OBJECT_ID_SIZE) == 0);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&back, 1, 60000, &b), 0); /* the parsed ref reads the same object */
  ck_assert_uint_eq(b.len, 3);
  ck_assert(memcmp(b.data, "abc", 3) == 0);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
}

/* rayc_actor_hex fills RAYC_ACTOR_HEX_LEN; the actor found by its name has the same hex; its
 * state comes as the enum. */
static void check_actor_hex(void)
{
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.name = "api-types-counter";
  o.language = RAYC_LANG_C;
  rayc_actor a, found, back;
  ck_assert_msg(rayc_actor_create("TCounter", NULL, 0, &o, &a) == 0, "%s", rayc_last_error());
  rayc_ref r;
  ck_assert_int_eq(rayc_actor_call(&a, "incr", NULL, 0, NULL, &r), 0);
  int rc;
  ck_assert_int_eq(it_get_i64(&r, &rc), 1);
  rayc_ref_release(&r);
  rayc_actor_state st = RAYC_ACTOR_DEAD;
  int restarts = -1;
  ck_assert_int_eq(rayc_actor_get_state(&a, &st, &restarts), 0);
  ck_assert_int_eq(st, RAYC_ACTOR_ALIVE);
  ck_assert_int_eq(restarts, 0);
  hexbuf_t h, hf;
  hexbuf_init(&h, RAYC_ACTOR_HEX_LEN);
  hexbuf_init(&hf, RAYC_ACTOR_HEX_LEN);
  ck_assert_ptr_eq(rayc_actor_hex(&a, h.b), h.b);
  hexbuf_check(&h, RAYC_ACTOR_HEX_LEN, "rayc_actor_hex");
  ck_assert_int_eq(unhex(h.b, back.id, RAYC_ACTOR_ID_SIZE), 0);
  ck_assert(memcmp(back.id, a.id, RAYC_ACTOR_ID_SIZE) == 0);
  ck_assert_int_eq(rayc_get_actor("api-types-counter", NULL, &found), 0);
  rayc_actor_hex(&found, hf.b);
  ck_assert_str_eq(hf.b, h.b);
  ck_assert_int_eq(rayc_actor_kill(&a, 1), 0);
}

/* rayc_placement_group_hex fills RAYC_PG_HEX_LEN with the group's id; the strategy is the enum
 * and a value outside it is refused. */
static void check_pg_hex(void)
{
  rayc_resource cpu = {"CPU", 1};
  rayc_bundle bundle = {&cpu, 1};
  rayc_placement_group pg, back;
  ck_assert_int_eq(rayc_placement_group_create(&bundle, 1, (rayc_pg_strategy)9, NULL, &pg), RAYC_EINVALID_ARGUMENT);
  ck_assert_msg(strstr(rayc_last_error(), "unknown placement strategy 9"), "%s", rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_create(&bundle, 1, RAYC_PG_STRICT_PACK, "api-types", &pg), 0);
  ck_assert_msg(rayc_placement_group_wait(&pg, 60000) == 0, "%s", rayc_last_error());
  hexbuf_t h;
  hexbuf_init(&h, RAYC_PG_HEX_LEN);
  ck_assert_ptr_eq(rayc_placement_group_hex(&pg, h.b), h.b);
  hexbuf_check(&h, RAYC_PG_HEX_LEN, "rayc_placement_group_hex");
  ck_assert_int_eq(unhex(h.b, back.id, RAYC_PG_ID_SIZE), 0);
  ck_assert(memcmp(back.id, pg.id, RAYC_PG_ID_SIZE) == 0);
  ck_assert_int_eq(rayc_placement_group_remove(&back), 0); /* the parsed id names the same group */
  ck_assert_int_eq(rayc_placement_group_wait(&pg, 1000), RAYC_ENOT_FOUND);
}

/* rayc_context_ids fills RAYC_TASK_ID_HEX_LEN, RAYC_JOB_ID_HEX_LEN and RAYC_WORKER_ID_HEX_LEN. */
static void check_context_ids(void)
{
  hexbuf_t t, j, w;
  hexbuf_init(&t, RAYC_TASK_ID_HEX_LEN);
  hexbuf_init(&j, RAYC_JOB_ID_HEX_LEN);
  hexbuf_init(&w, RAYC_WORKER_ID_HEX_LEN);
  ck_assert_int_eq(rayc_context_ids(t.b, j.b, w.b), 0);
  hexbuf_check(&t, RAYC_TASK_ID_HEX_LEN, "task id");
  hexbuf_check(&j, RAYC_JOB_ID_HEX_LEN, "job id");
  hexbuf_check(&w, RAYC_WORKER_ID_HEX_LEN, "worker id");
  /* A driver's own (root) task id ends with its job's id, as every task id of the job does. */
  ck_assert_str_eq(t.b + RAYC_TASK_ID_HEX_LEN - RAYC_JOB_ID_HEX_LEN, j.b);
}

/* Out-of-range enum values in the task options are refused, naming the value. */
static void check_task_enums(void)
{
  rayc_task_opts o;
  rayc_ref r;
  rayc_task_opts_init(&o);
  ck_assert_int_eq(o.strategy, RAYC_STRATEGY_DEFAULT);
  ck_assert_int_eq(o.language, RAYC_LANG_C);
  o.strategy = (rayc_strategy)-1;
  ck_assert_int_eq(rayc_remote("where", NULL, 0, &o, &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_msg(strstr(rayc_last_error(), "unknown scheduling strategy -1"), "%s", rayc_last_error());
  rayc_task_opts_init(&o);
  o.language = (rayc_language)7;
  ck_assert_int_eq(rayc_remote("where", NULL, 0, &o, &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_msg(strstr(rayc_last_error(), "unknown language 7"), "%s", rayc_last_error());
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_SPREAD;
  ck_assert_int_eq(rayc_remote("where", NULL, 0, &o, &r), 0);
  rayc_buf b;
  ck_assert_msg(rayc_get(&r, 1, 60000, &b) == 0, "%s", rayc_last_error());
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
}

START_TEST(ids_and_enums)
{
  ck_assert_int_eq(it_start("libtest_tasks.so", "--num-cpus 2"), 0);
  it_connect();
  check_node_id();
  check_ref_hex();
  check_actor_hex();
  check_pg_hex();
  check_context_ids();
  check_task_enums();
  rayc_shutdown();
  ck_assert_int_eq(it_stop(), 0);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("api_types");
  TCase *tc = tcase_create("api_types");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, ids_and_enums);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
