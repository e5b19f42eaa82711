/*
 * Example driver: runs tasks from libexample_tasks.so on a rayc cluster and checks every result.
 *
 *   RAYC_ADDRESS=HOST:PORT RAYC_CODE_PATH=build/normal/lib/libexample_tasks.so example_driver
 *
 * Without RAYC_ADDRESS it starts a private local cluster and stops it at the end. Exits 0 when
 * every check passed.
 */
#include <rayc.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks, failures;

static void check(int ok, const char *what)
{
  checks++;
  if (!ok)
    failures++;
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  fflush(stdout);
}

static int64_t get_i64(const rayc_ref *r)
{
  rayc_buf b;
  int64_t v = INT64_MIN;
  if (rayc_get(r, 1, 60000, &b) != 0) {
    fprintf(stderr, "rayc_get: %s\n", rayc_last_error());
    return v;
  }
  if (b.len == sizeof(v))
    memcpy(&v, b.data, sizeof(v));
  rayc_buf_release(&b, 1);
  return v;
}

static rayc_ref call2(const char *fn, rayc_arg a, rayc_arg b)
{
  rayc_arg args[2] = {a, b};
  rayc_ref r;
  memset(&r, 0, sizeof(r));
  if (rayc_remote(fn, args, 2, NULL, &r) != 0)
    fprintf(stderr, "rayc_remote %s: %s\n", fn, rayc_last_error());
  return r;
}

static void run_small_tasks(void)
{
  int64_t a = 2, b = 3;
  rayc_ref r = call2("add", RAYC_ARG_VAL(&a, 8), RAYC_ARG_VAL(&b, 8));
  check(get_i64(&r) == 5, "add(2, 3) == 5");
  int64_t ten = 10;
  rayc_ref chained = call2("add", RAYC_ARG_REF(&r), RAYC_ARG_VAL(&ten, 8));
  check(get_i64(&chained) == 15, "add(ref(add(2, 3)), 10) == 15 (a result passed by reference)");
  rayc_ref_release(&r);
  rayc_ref_release(&chained);

  enum { N = 200 };
  rayc_ref refs[N];
  int64_t want = 0, got = 0;
  for (int64_t i = 0; i < N; i++) {
    rayc_arg arg = RAYC_ARG_VAL(&i, sizeof(i));
    rayc_remote("square", &arg, 1, NULL, &refs[i]);
    want += i * i;
  }
  for (int i = 0; i < N; i++) {
    got += get_i64(&refs[i]);
    rayc_ref_release(&refs[i]);
  }
  check(got == want, "200 square tasks in flight: sum of results is right");
}

static void run_large_objects(void)
{
  size_t n = 3u << 20;
  uint8_t *data = malloc(n);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    data[i] = (uint8_t)(i * 7 + 1);
    sum += data[i];
  }
  rayc_ref obj;
  int rc = rayc_put(data, n, &obj);
  check(rc == 0, "rayc_put of a 3 MiB object");
  rayc_buf b;
  rc = rc == 0 ? rayc_get(&obj, 1, 10000, &b) : rc;
  check(rc == 0 && b.len == n && memcmp(b.data, data, n) == 0, "rayc_get returns the 3 MiB object's bytes");
  if (rc == 0)
    rayc_buf_release(&b, 1);

  rayc_arg arg = RAYC_ARG_REF(&obj);
  rayc_task_opts opts;
  rayc_task_opts_init(&opts);
  opts.num_returns = 2;
  rayc_ref sums[2];
  rc = rayc_remote("checksum", &arg, 1, &opts, sums);
  check(rc == 0 && (uint64_t)get_i64(&sums[0]) == sum && (uint64_t)get_i64(&sums[1]) == n,
        "a task reads the 3 MiB object from the store and returns its checksum and length");
  rayc_ref_release(&sums[0]);
  rayc_ref_release(&sums[1]);
  rayc_ref_release(&obj);
  free(data);

  int64_t size = 5 << 20, seed = 9;
  rayc_ref big = call2("make_bytes", RAYC_ARG_VAL(&size, 8), RAYC_ARG_VAL(&seed, 8));
  rc = rayc_get(&big, 1, 60000, &b);
  int ok = rc == 0 && b.len == (size_t)size;
  for (size_t i = 0; ok && i < b.len; i++)
    ok = ((const uint8_t *)b.data)[i] == (uint8_t)((i * 31 + 9) & 255);
  check(ok, "a task's 5 MiB result is written into the store and read back in place");
  if (rc == 0)
    rayc_buf_release(&b, 1);
  rayc_ref_release(&big);
}

static void run_errors_and_nesting(void)
{
  const char *msg = "something went wrong";
  rayc_arg arg = RAYC_ARG_VAL(msg, strlen(msg));
  rayc_ref r;
  rayc_remote("fail", &arg, 1, NULL, &r);
  rayc_buf b;
  int rc = rayc_get(&r, 1, 60000, &b);
  check(rc == RAYC_ETASK_FAILED && strstr(rayc_last_error(), msg) && strstr(rayc_last_error(), "fail"),
        "an application error comes back with the task's name and message");
  printf("     (%s: %s)\n", rayc_err_name(rc), rayc_last_error());
  rayc_ref_release(&r);

  int64_t n = 10;
  arg = (rayc_arg)RAYC_ARG_VAL(&n, sizeof(n));
  rayc_remote("sum_of_squares", &arg, 1, NULL, &r);
  check(get_i64(&r) == 285, "a task that submits 10 nested tasks returns their sum (285)");
  rayc_ref_release(&r);
}

int main(void)
{
  int rc = rayc_init(NULL);
  if (rc != 0) {
    fprintf(stderr, "rayc_init: %s: %s\n", rayc_strerror(rc), rayc_last_error());
    return 1;
  }
  run_small_tasks();
  run_large_objects();
  run_errors_and_nesting();
  rayc_shutdown();
  printf("example job: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
