/*
 * Integration test of the walking skeleton: real daemons as separate processes, started and
 * stopped with the rayc CLI, a driver using the C API in this process, the example job as its own
 * process, and a private cluster started by rayc_init.
 *
 * The cluster is started from main() before check forks (no gRPC is used there), so each test's
 * process calls rayc_init itself: gRPC must never be used in a child forked after grpc_init.
 */
#include "common/util.h"
#include "rayc.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char build_dir[1024];
static char temp_dir[512];
static char address[128];
static char code_path[1200];

static void find_build_dir(void)
{
  const char *b = getenv("RAYC_BUILD");
  if (b) {
    snprintf(build_dir, sizeof(build_dir), "%s", b);
    return;
  }
  char exe[1024];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  *strrchr(exe, '/') = '\0'; /* tests/ */
  *strrchr(exe, '/') = '\0'; /* build dir */
  snprintf(build_dir, sizeof(build_dir), "%s", exe);
}

static int run(const char *cmd)
{
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Counts live processes whose command line mentions needle (zombies excluded). */
static int count_procs(const char *needle)
{
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
      continue;
    char path[300], buf[4096];
    snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (size_t i = 0; i < len; i++)
      if (buf[i] == '\0')
        buf[i] = ' ';
    buf[len] = '\0';
    if (len && strstr(buf, needle))
      n++;
  }
  closedir(d);
  return n;
}

static int64_t get_i64(const rayc_ref *r, int *rc)
{
  rayc_buf b;
  int64_t v = -1;
  *rc = rayc_get(r, 1, 30000, &b);
  if (*rc == 0) {
    if (b.len == sizeof(v))
      memcpy(&v, b.data, sizeof(v));
    rayc_buf_release(&b, 1);
  }
  return v;
}

static void connect_driver(void)
{
  rayc_config cfg = {.address = address, .code_path = code_path};
  int rc = rayc_init(&cfg);
  ck_assert_msg(rc == 0, "rayc_init: %s", rayc_last_error());
}

START_TEST(test_example_job_runs)
{
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "RAYC_ADDRESS=%s RAYC_CODE_PATH=%s %s/bin/example_driver > %s/example.out 2>&1",
           address, code_path, build_dir, temp_dir);
  int rc = run(cmd);
  snprintf(cmd, sizeof(cmd), "cat %s/example.out", temp_dir);
  run(cmd);
  ck_assert_int_eq(rc, 0);
  snprintf(cmd, sizeof(cmd), "grep -q 'example job: 9 checks, 0 failed' %s/example.out", temp_dir);
  ck_assert_int_eq(run(cmd), 0);
}
END_TEST

START_TEST(test_tasks_and_objects)
{
  connect_driver();
  enum { N = 1000 };
  rayc_ref refs[N];
  for (int64_t i = 0; i < N; i++) {
    rayc_arg a[2] = {RAYC_ARG_VAL(&i, 8), RAYC_ARG_VAL(&i, 8)};
    ck_assert_int_eq(rayc_remote("add", a, 2, NULL, &refs[i]), 0);
  }
  int rc;
  for (int64_t i = 0; i < N; i++) {
    ck_assert_int_eq(get_i64(&refs[i], &rc), 2 * i);
    ck_assert_int_eq(rc, 0);
    rayc_ref_release(&refs[i]);
  }
  /* a 2 MiB object goes through the store and comes back intact */
  size_t n = 2u << 20;
  uint8_t *data = xmalloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)(i ^ (i >> 8));
  rayc_ref obj;
  ck_assert_int_eq(rayc_put(data, n, &obj), 0);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&obj, 1, 5000, &b), 0);
  ck_assert_uint_eq(b.len, n);
  ck_assert(memcmp(b.data, data, n) == 0);
  ck_assert_ptr_ne(b.data, data);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&obj);
  free(data);
  rayc_shutdown();
}
END_TEST

START_TEST(test_errors_are_clear)
{
  connect_driver();
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("no_such_function", NULL, 0, NULL, &r), 0);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, 30000, &b), RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "no_such_function") && strstr(rayc_last_error(), "not registered"),
                "detail: %s", rayc_last_error());
  rayc_ref_release(&r);

  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_gpus = 1; /* the node has none */
  ck_assert_int_eq(rayc_remote("add", NULL, 0, &o, &r), 0);
  ck_assert_int_eq(rayc_get(&r, 1, 30000, &b), RAYC_EINFEASIBLE);
  ck_assert_msg(strstr(rayc_last_error(), "GPU"), "detail: %s", rayc_last_error());
  rayc_ref_release(&r);

  ck_assert_int_eq(rayc_remote(NULL, NULL, 0, NULL, &r), RAYC_EINVALID_ARGUMENT);
  rayc_shutdown();
  ck_assert_int_eq(rayc_put("x", 1, &r), RAYC_ENOT_CONNECTED);
}
END_TEST

START_TEST(test_wait_and_timeout)
{
  connect_driver();
  int64_t slow = 1500, fast = 0;
  rayc_arg a1 = RAYC_ARG_VAL(&slow, 8), a2 = RAYC_ARG_VAL(&fast, 8);
  rayc_ref refs[2];
  ck_assert_int_eq(rayc_remote("sleep_ms", &a1, 1, NULL, &refs[0]), 0);
  ck_assert_int_eq(rayc_remote("sleep_ms", &a2, 1, NULL, &refs[1]), 0);
  int ready[2];
  ck_assert_int_eq(rayc_wait(refs, 2, 1, 10000, ready), 1);
  ck_assert_int_eq(ready[0], 0);
  ck_assert_int_eq(ready[1], 1);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&refs[0], 1, 50, &b), RAYC_ETIMEOUT);
  ck_assert_int_eq(rayc_wait(refs, 2, 2, 20000, ready), 2);
  int rc;
  ck_assert_int_eq(get_i64(&refs[0], &rc), 1500);
  rayc_ref_release(&refs[0]);
  rayc_ref_release(&refs[1]);
  rayc_shutdown();
}
END_TEST

START_TEST(test_private_cluster)
{
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/private", temp_dir);
  rayc_config cfg = {.address = NULL, .code_path = code_path, .temp_dir = dir, .num_cpus = 2};
  unsetenv("RAYC_ADDRESS");
  int rc = rayc_init(&cfg);
  ck_assert_msg(rc == 0, "rayc_init: %s", rayc_last_error());
  ck_assert_int_gt(count_procs(dir), 0);
  int64_t x = 7;
  rayc_arg a = RAYC_ARG_VAL(&x, 8);
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("square", &a, 1, NULL, &r), 0);
  ck_assert_int_eq(get_i64(&r, &rc), 49);
  rayc_ref_release(&r);
  rayc_shutdown();
  ck_assert_int_eq(count_procs(dir), 0);
}
END_TEST

static int start_cluster(void)
{
  char cmd[4096], path[700];
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc start --head --port 0 --num-cpus 4 --object-store-memory 256M --temp-dir %s",
           build_dir, temp_dir);
  if (run(cmd) != 0)
    return -1;
  snprintf(path, sizeof(path), "%s/session_latest/address", temp_dir);
  FILE *f = fopen(path, "r");
  if (!f || !fgets(address, sizeof(address), f))
    return -1;
  fclose(f);
  address[strcspn(address, "\n")] = '\0';
  return 0;
}

int main(void)
{
  find_build_dir();
  snprintf(temp_dir, sizeof(temp_dir), "/tmp/rayc-itest-XXXXXX");
  if (!mkdtemp(temp_dir))
    return 2;
  snprintf(code_path, sizeof(code_path), "%s/lib/libexample_tasks.so", build_dir);
  if (start_cluster() != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("cluster");
  TCase *tc = tcase_create("skeleton");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_example_job_runs);
  tcase_add_test(tc, test_tasks_and_objects);
  tcase_add_test(tc, test_errors_are_clear);
  tcase_add_test(tc, test_wait_and_timeout);
  tcase_add_test(tc, test_private_cluster);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);

  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc stop --temp-dir %s", build_dir, temp_dir);
  int stop_rc = run(cmd);
  int left = count_procs(temp_dir);
  printf("rayc stop: exit %d, %d processes of the session left\n", stop_rc, left);
  if (stop_rc != 0 || left != 0)
    failed++;
  /* Under the sanitizers every daemon and worker reports errors and leaks into its .out file. */
  snprintf(cmd, sizeof(cmd), "grep -l -E 'Sanitizer|runtime error' -r %s --include='*.out'", temp_dir);
  if (run(cmd) == 0) {
    printf("sanitizer reports found in the files above\n");
    failed++;
  }
  snprintf(cmd, sizeof(cmd), "rm -rf %s", temp_dir);
  if (!failed)
    run(cmd);
  return failed ? 1 : 0;
}
