/*
 * Integration test of the walking skeleton: real daemons as separate processes, started and
 * stopped with the rayc CLI, a driver using the C API in this process, the example job as its own
 * process, and a private cluster started by rayc_init.
 *
 * The cluster is started from main() before check forks (no gRPC is used there), so each test's
 * process calls rayc_init itself: gRPC must never be used in a child forked after grpc_init.
 */
#include "common/util.h"
#include "itest.h"

START_TEST(test_example_job_runs)
{
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "RAYC_ADDRESS=%s RAYC_CODE_PATH=%s %s/bin/example_driver > %s/example.out 2>&1",
           it_address, it_code_path, it_build, it_temp);
  int rc = it_run(cmd);
  snprintf(cmd, sizeof(cmd), "cat %s/example.out", it_temp);
  it_run(cmd);
  ck_assert_int_eq(rc, 0);
  snprintf(cmd, sizeof(cmd), "grep -q 'example job: 9 checks, 0 failed' %s/example.out", it_temp);
  ck_assert_int_eq(it_run(cmd), 0);
}
END_TEST

START_TEST(test_tasks_and_objects)
{
  it_connect();
  enum { N = 1000 };
  rayc_ref refs[N];
  for (int64_t i = 0; i < N; i++) {
    rayc_arg a[2] = {RAYC_ARG_VAL(&i, 8), RAYC_ARG_VAL(&i, 8)};
    ck_assert_int_eq(rayc_remote("add", a, 2, NULL, &refs[i]), 0);
  }
  int rc;
  for (int64_t i = 0; i < N; i++) {
    ck_assert_int_eq(it_get_i64(&refs[i], &rc), 2 * i);
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
  it_connect();
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
  it_connect();
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
  ck_assert_int_eq(it_get_i64(&refs[0], &rc), 1500);
  rayc_ref_release(&refs[0]);
  rayc_ref_release(&refs[1]);
  rayc_shutdown();
}
END_TEST

START_TEST(test_private_cluster)
{
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/private", it_temp);
  rayc_config cfg = {.address = NULL, .code_path = it_code_path, .temp_dir = dir, .num_cpus = 2};
  unsetenv("RAYC_ADDRESS");
  int rc = rayc_init(&cfg);
  ck_assert_msg(rc == 0, "rayc_init: %s", rayc_last_error());
  ck_assert_int_gt(it_count_procs(dir), 0);
  int64_t x = 7;
  rayc_arg a = RAYC_ARG_VAL(&x, 8);
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("square", &a, 1, NULL, &r), 0);
  ck_assert_int_eq(it_get_i64(&r, &rc), 49);
  rayc_ref_release(&r);
  rayc_shutdown();
  ck_assert_int_eq(it_count_procs(dir), 0);
}
END_TEST

int main(void)
{
  /* tasks no node can run fail after 2 s here (the default waits a minute for such a node) */
  setenv("RAYC_INFEASIBLE_TIMEOUT_MS", "2000", 1);
  if (it_start("libexample_tasks.so", "--num-cpus 4 --object-store-memory 256M") != 0) {
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
  return it_finish(s);
}
