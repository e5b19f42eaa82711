/*
 * librayc's boundary: a program that defines functions with the names of librayc's internals
 * (xmalloc, log_init, hmap_put: common names a user's program may well have) links librayc alone
 * and runs tasks; the library's own internals are hidden, so neither side interposes on the other.
 * Also checks that librayc keeps no unjustified mutable globals, and the version API. Linked with librayc and check only (no libcommon).
 */
#include "itest.h"

#include <stdint.h>

/* The program's own functions, deliberately with the internal names and other signatures. Each
 * counts its calls: librayc calling one of them would be the interposition this test guards. */
static int own_calls;

void *xmalloc(size_t n);
void *xmalloc(size_t n)
{
  own_calls++;
  return calloc(1, n + 1);
}

int log_init(const char *who);
int log_init(const char *who)
{
  own_calls++;
  return who ? (int)strlen(who) : -1;
}

int hmap_put(int a, int b);
int hmap_put(int a, int b)
{
  own_calls++;
  return a * 100 + b;
}

START_TEST(own_symbols_and_tasks)
{
  /* The program's definitions are the ones it calls... */
  char *p = xmalloc(8);
  free(p);
  ck_assert_int_eq(log_init("prog"), 4);
  ck_assert_int_eq(hmap_put(3, 4), 304);
  ck_assert_int_eq(own_calls, 3);
  /* ...and librayc (which logs, allocates and hashes constantly) runs tasks without calling them. */
  ck_assert_int_eq(it_start("libtest_tasks.so", "--num-cpus 2"), 0);
  it_connect();
  rayc_ref refs[20];
  for (int64_t i = 0; i < 20; i++) {
    int64_t ab[2] = {i, 1000};
    rayc_arg args[2] = {RAYC_ARG_VAL(&ab[0], 8), RAYC_ARG_VAL(&ab[1], 8)};
    ck_assert_int_eq(rayc_remote("add", args, 2, NULL, &refs[i]), 0);
  }
  for (int64_t i = 0; i < 20; i++) {
    int rc;
    ck_assert_int_eq(it_get_i64(&refs[i], &rc), i + 1000);
    ck_assert_int_eq(rc, 0);
    rayc_ref_release(&refs[i]);
  }
  rayc_shutdown();
  ck_assert_int_eq(own_calls, 3);
  ck_assert_int_eq(it_stop(), 0);
}
END_TEST

/* `nm -D` of librayc: every defined dynamic symbol is rayc_* (the public API). */
START_TEST(exports_only_api)
{
  it_find_build();
  char cmd[1400], line[512];
  snprintf(cmd, sizeof(cmd), "nm -D --defined-only %s/lib/librayc.so", it_build);
  FILE *f = popen(cmd, "r");
  ck_assert_ptr_nonnull(f);
  int total = 0, api = 0;
  while (fgets(line, sizeof(line), f)) {
    char addr[64], type[8], name[400];
    if (sscanf(line, "%63s %7s %399s", addr, type, name) != 3)
      continue;
    total++;
    if (strncmp(name, "rayc_", 5) == 0)
      api++;
    else
      ck_abort_msg("librayc exports %s", name);
  }
  ck_assert_int_eq(pclose(f), 0);
  ck_assert_int_gt(api, 30);
  ck_assert_int_eq(api, total);
}
END_TEST

/* librayc keeps no mutable file-scope state but what is justified here: every object in a writable
 * data section of librayc.so (objdump -t: .data, .bss, their thread-local and relocated kinds) must
 * be on this list, with the reason it is one per process or per thread. */
static const char *const justified_globals[] = {
    "cw_proc",           /* worker/cw_proc.h: the runtime context (a handle-less API; constructors) */
    "log_cfg",           /* common/log.c: the process's log sink, set once at start-up */
    "cfg_program",       /* common/cfg.c: the program whose settings section applies, set once */
    "reg",               /* common/metrics.c: the process's metrics registry */
    "res_names",         /* common/res.c: resource names interned once per process, append-only */
    "rule_cache",        /* common/rpc_valid.c: each protobuf field's validation rules, fill-once, lock-free */
    "client_err",        /* object-store/store_client.c: per thread (__thread), the last error */
    "tl_actor",          /* worker/cw_actor_host.c: per thread: the actor whose methods this thread runs */
    "tl_exit_requested", /* worker/cw_actor_host.c: per thread: its method called rayc_actor_exit */
    "quiet_once",        /* common/rpc_absl.c: abseil's deadlock detector turned off once per process */
    "cancels_in_flight", /* worker/cw_submit.c: CancelTask calls this process sent, unanswered (an exiting worker waits) */
    "id_block",      /* common/ids.c: per thread (__thread), random bytes drawn for ids (one getrandom per ~12 ids) */
    "id_block_left", /* common/ids.c: per thread, how many of them are unused */
    "id_fork_once",  /* common/ids.c: the fork handler that empties a child's block, installed once */
    "small_reads_done.0", /* common/rpc_server.c: gRPC's read experiment set once per process, before its first init */
    "completed.0",        /* the C runtime's (crtstuff: __do_global_dtors_aux ran) */
};

static int globals_justified(const char *name)
{
  if (strncmp(name, "__", 2) == 0) /* the toolchain's and the sanitizers' own */
    return 1;
  for (size_t i = 0; i < sizeof(justified_globals) / sizeof(justified_globals[0]); i++)
    if (strcmp(name, justified_globals[i]) == 0)
      return 1;
  return 0;
}

static int globals_writable_section(const char *sec)
{
  static const char *const secs[] = {".data", ".bss", ".tdata", ".tbss", ".data.rel", ".data.rel.local"};
  for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
    if (strcmp(sec, secs[i]) == 0)
      return 1;
  return 0;
}

START_TEST(no_unjustified_globals)
{
  it_find_build();
  char cmd[1400], line[1024];
  snprintf(cmd, sizeof(cmd), "objdump -t %s/lib/librayc.so", it_build);
  FILE *f = popen(cmd, "r");
  ck_assert_ptr_nonnull(f);
  int seen = 0, bad = 0, asan = 0;
  while (fgets(line, sizeof(line), f)) {
    asan |= strstr(line, "__asan_") != NULL;
    /* "addr flags... section\tsize name": the section is the word before the tab. */
    char *tab = strchr(line, '\t'), *sp;
    if (!tab || !(sp = memrchr(line, ' ', (size_t)(tab - line))))
      continue;
    char sec[64], size[32], name[512];
    snprintf(sec, sizeof(sec), "%.*s", (int)(tab - sp - 1), sp + 1);
    if (!globals_writable_section(sec) || sscanf(tab + 1, "%31s %511s", size, name) != 2)
      continue;
    seen++;
    if (!globals_justified(name)) {
      fprintf(stderr, "librayc: writable %s object %s has no justification\n", sec, name);
      bad++;
    }
  }
  ck_assert_int_eq(pclose(f), 0);
  ck_assert_int_gt(seen, 0); /* cw_proc at least: the parse found the sections */
  /* AddressSanitizer moves every global, const tables too, into writable sections to pad them:
   * only an uninstrumented build tells mutable from const. */
  if (!asan)
    ck_assert_int_eq(bad, 0);
}
END_TEST

START_TEST(version)
{
  int number = -1;
  const char *v = rayc_version(&number);
  ck_assert_str_eq(v, RAYC_VERSION_STRING);
  ck_assert_int_eq(number, RAYC_VERSION_NUMBER);
  char want[32];
  snprintf(want, sizeof(want), "%d.%d.%d", RAYC_VERSION_MAJOR, RAYC_VERSION_MINOR, RAYC_VERSION_PATCH);
  ck_assert_str_eq(v, want);
  ck_assert_ptr_eq(rayc_version(NULL), v);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("boundary");
  TCase *tc = tcase_create("boundary");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, own_symbols_and_tasks);
  tcase_add_test(tc, exports_only_api);
  tcase_add_test(tc, no_unjustified_globals);
  tcase_add_test(tc, version);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
