/*
 * Integration tests of actors (issue 5) against a real head node: call ordering from one caller,
 * handles passed to tasks and actors, named and detached actors seen from a second driver,
 * restarts after the actor's worker is SIGKILLed (constructor run again, calls in flight
 * retried), death errors and their reasons, kill with and without restart, max_concurrency, and
 * the states the GCS reports. The actor classes are in tests/tasks/test_actors_lib.c.
 */
#include "itest.h"

#include <jansson.h>
#include <signal.h>
#include <time.h>

/* 1 when the JSON array in path (rayc list actors --format json) has an actor of that name,
 * namespace and state. */
static int json_has_actor(const char *path, const char *name, const char *ns, const char *state)
{
  json_t *rows = json_load_file(path, 0, NULL), *r;
  size_t i;
  int found = 0;
  json_array_foreach(rows, i, r)
  {
    found |= strcmp(json_string_value(json_object_get(r, "name")) ?: "", name) == 0 &&
             strcmp(json_string_value(json_object_get(r, "ray_namespace")) ?: "", ns) == 0 &&
             strcmp(json_string_value(json_object_get(r, "state")) ?: "", state) == 0;
  }
  json_decref(rows);
  return found;
}

static rayc_actor create(const char *cls, const rayc_arg *args, size_t n, const rayc_actor_opts *o)
{
  rayc_actor a;
  int rc = rayc_actor_create(cls, args, n, o, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create %s: %s", cls, rayc_last_error());
  return a;
}

static rayc_ref call(const rayc_actor *a, const char *m, const rayc_arg *args, size_t n)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, m, args, n, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call %s: %s", m, rayc_last_error());
  return r;
}

/* Calls m and returns its int64 result; *rc gets the status of the get. */
static int64_t call_i64(const rayc_actor *a, const char *m, const rayc_arg *args, size_t n, int *rc)
{
  rayc_ref r = call(a, m, args, n);
  int64_t v = it_get_i64(&r, rc);
  rayc_ref_release(&r);
  return v;
}

static int64_t call_ok(const rayc_actor *a, const char *m, const rayc_arg *args, size_t n)
{
  int rc;
  int64_t v = call_i64(a, m, args, n, &rc);
  ck_assert_msg(rc == 0, "%s: %s", m, rayc_last_error());
  return v;
}

/* Expects calls of m to fail with ACTOR_DIED whose detail names why. */
static void expect_dead(const rayc_actor *a, const char *m, const char *why)
{
  int rc;
  call_i64(a, m, NULL, 0, &rc);
  ck_assert_msg(rc == RAYC_EACTOR_DIED, "%s on a dead actor: %d (%s)", m, rc, rayc_last_error());
  ck_assert_msg(strstr(rayc_last_error(), why), "the death message does not say '%s': %s", why, rayc_last_error());
}

static rayc_actor_state wait_state(const rayc_actor *a, rayc_actor_state want, int *restarts)
{
  rayc_actor_state st = RAYC_ACTOR_PENDING_CREATION;
  for (int i = 0; i < 1000; i++) {
    ck_assert_int_eq(rayc_actor_get_state(a, &st, restarts), 0);
    if (st == want)
      break;
    usleep(10000);
  }
  return st;
}

static int count_lines(const char *path)
{
  FILE *f = fopen(path, "r");
  int n = 0, c;
  while (f && (c = fgetc(f)) != EOF)
    n += c == '\n';
  if (f)
    fclose(f);
  return n;
}

START_TEST(test_ordering_10k)
{
  it_connect();
  enum { N = 10000 };
  rayc_actor a = create("TCounter", NULL, 0, NULL);
  rayc_ref *refs = malloc(N * sizeof(*refs));
  for (int64_t i = 0; i < N; i++) {
    rayc_arg arg = RAYC_ARG_VAL(&i, 8);
    refs[i] = call(&a, "check", &arg, 1);
  }
  int rc;
  ck_assert_int_eq(it_get_i64(&refs[N - 1], &rc), 0); /* no call came out of order */
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(rayc_wait(refs, N, N, 60000, NULL), N);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&refs[i]);
  free(refs);
  /* increments in order, with a result per call, and two returns from one call */
  for (int64_t i = 1; i <= 100; i++)
    ck_assert_int_eq(call_ok(&a, "incr", NULL, 0), i);
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_returns = 2;
  rayc_ref two[2];
  ck_assert_int_eq(rayc_actor_call(&a, "two", NULL, 0, &o, two), 0);
  ck_assert_int_eq(it_get_i64(&two[0], &rc), 100);
  ck_assert_int_eq(it_get_i64(&two[1], &rc), 200);
  rayc_ref_release(&two[0]);
  rayc_ref_release(&two[1]);
  /* an application error fails that call only */
  call_i64(&a, "fail", NULL, 0, &rc);
  ck_assert_int_eq(rc, RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "as asked"), "%s", rayc_last_error());
  call_i64(&a, "no_such_method", NULL, 0, &rc);
  ck_assert_int_eq(rc, RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "no_such_method"), "%s", rayc_last_error());
  ck_assert_int_eq(call_ok(&a, "get", NULL, 0), 100);
  rayc_shutdown();
}
END_TEST

START_TEST(test_ref_arguments_keep_order)
{
  it_connect();
  rayc_actor a = create("TCounter", NULL, 0, NULL);
  int64_t ten = 10, ms = 300;
  rayc_ref put;
  ck_assert_int_eq(rayc_put(&ten, 8, &put), 0);
  rayc_arg sarg = RAYC_ARG_VAL(&ms, 8);
  rayc_ref slow; /* a task result that is not ready for a while */
  ck_assert_int_eq(rayc_remote("sleep_ms", &sarg, 1, NULL, &slow), 0);
  rayc_arg a1 = RAYC_ARG_REF(&slow), a2 = RAYC_ARG_REF(&put);
  rayc_ref r1 = call(&a, "sum", &a1, 1); /* waits for slow */
  rayc_ref r2 = call(&a, "sum", &a2, 1); /* ready at once, but runs after r1 */
  int rc;
  ck_assert_int_eq(it_get_i64(&r1, &rc), 300);
  ck_assert_int_eq(it_get_i64(&r2, &rc), 310);
  rayc_ref_release(&r1);
  rayc_ref_release(&r2);
  rayc_ref_release(&slow);
  rayc_ref_release(&put);
  rayc_shutdown();
}
END_TEST

START_TEST(test_handles_passed_to_tasks_and_actors)
{
  it_connect();
  rayc_actor a = create("TCounter", NULL, 0, NULL);
  rayc_actor b = create("TCounter", NULL, 0, NULL);
  int64_t n = 50;
  rayc_arg args[2] = {RAYC_ARG_ACTOR(&a), RAYC_ARG_I64(n)};
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("actor_use_handle", args, 2, NULL, &r), 0);
  int rc;
  ck_assert_int_eq(it_get_i64(&r, &rc), 50);
  ck_assert_msg(rc == 0, "%s", rayc_last_error());
  rayc_ref_release(&r);
  /* actor b calls actor a */
  ck_assert_int_eq(call_i64(&b, "incr_other", args, 2, &rc), 100);
  ck_assert_msg(rc == 0, "%s", rayc_last_error());
  ck_assert_int_eq(call_ok(&a, "get", NULL, 0), 100);
  ck_assert_int_eq(call_ok(&b, "get", NULL, 0), 0);
  rayc_shutdown();
}
END_TEST

START_TEST(test_named_and_detached_from_second_driver)
{
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.name = "keeper";
  o.ns = "itest";
  o.detached = 1;
  rayc_actor det = create("TCounter", NULL, 0, &o);
  ck_assert_int_eq(call_ok(&det, "incr", NULL, 0), 1);
  rayc_actor dup;
  ck_assert_int_eq(rayc_actor_create("TCounter", NULL, 0, &o, &dup), RAYC_EALREADY_EXISTS);
  o.get_if_exists = 1;
  ck_assert_int_eq(rayc_actor_create("TCounter", NULL, 0, &o, &dup), 0);
  ck_assert(memcmp(dup.id, det.id, sizeof(det.id)) == 0);
  rayc_actor_opts_init(&o);
  o.name = "owned";
  o.ns = "itest";
  rayc_actor owned = create("TCounter", NULL, 0, &o);
  ck_assert_int_eq(call_ok(&owned, "incr", NULL, 0), 1);
  rayc_actor found;
  ck_assert_int_eq(rayc_get_actor("keeper", "other-ns", &found), RAYC_ENOT_FOUND);
  /* the GCS shows them: rayc list actors */
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc list actors --address %s --format json > %s/actors.json", it_build,
           it_address, it_temp);
  ck_assert_int_eq(it_run(cmd), 0);
  snprintf(cmd, sizeof(cmd), "%s/actors.json", it_temp);
  ck_assert_msg(json_has_actor(cmd, "keeper", "itest", "ALIVE"), "rayc list actors does not show keeper ALIVE");
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc list actors --address %s | grep -q 'TCounter.*owned.*ALIVE'", it_build,
           it_address);
  ck_assert_int_eq(it_run(cmd), 0);
  rayc_shutdown();

  /* a second driver (a new job): the detached actor lives on, the owned one died with its owner */
  it_connect();
  ck_assert_int_eq(rayc_get_actor("keeper", "itest", &found), 0);
  ck_assert(memcmp(found.id, det.id, sizeof(det.id)) == 0);
  ck_assert_int_eq(call_ok(&found, "incr", NULL, 0), 2);
  ck_assert_int_eq(wait_state(&owned, RAYC_ACTOR_DEAD, NULL), RAYC_ACTOR_DEAD);
  ck_assert_int_eq(rayc_get_actor("owned", "itest", &found), RAYC_ENOT_FOUND);
  expect_dead(&owned, "get", "owner");
  ck_assert_int_eq(rayc_actor_kill(&det, 1), 0);
  expect_dead(&det, "get", "killed");
  ck_assert_int_eq(rayc_get_actor("keeper", "itest", &found), RAYC_ENOT_FOUND);
  rayc_shutdown();
}
END_TEST

START_TEST(test_restart_after_sigkill)
{
  it_connect();
  char log[700];
  snprintf(log, sizeof(log), "%s/ctor.log", it_temp);
  unlink(log);
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_restarts = 1;
  o.max_task_retries = 1;
  rayc_arg carg = RAYC_ARG_VAL(log, strlen(log));
  rayc_actor a = create("TCounter", &carg, 1, &o);
  int64_t pid = call_ok(&a, "pid", NULL, 0);
  for (int i = 0; i < 5; i++)
    call_ok(&a, "incr", NULL, 0);
  int64_t ms = 2000;
  rayc_arg sarg = RAYC_ARG_VAL(&ms, 8);
  rayc_ref slow = call(&a, "sleep", &sarg, 1); /* in flight when the worker dies: retried */
  usleep(200000);
  ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
  int rc;
  ck_assert_int_eq(it_get_i64(&slow, &rc), 0); /* ran again on the new worker, value reset */
  ck_assert_msg(rc == 0, "the retried call: %s", rayc_last_error());
  rayc_ref_release(&slow);
  int64_t pid2 = call_ok(&a, "pid", NULL, 0);
  ck_assert_int_ne(pid2, pid);
  ck_assert_int_eq(call_ok(&a, "get", NULL, 0), 0);
  ck_assert_int_eq(count_lines(log), 2); /* the constructor ran twice */
  int restarts = -1;
  ck_assert_int_eq(wait_state(&a, RAYC_ACTOR_ALIVE, &restarts), RAYC_ACTOR_ALIVE);
  ck_assert_int_eq(restarts, 1);
  /* no restarts left: the next crash kills it, and calls say why */
  ck_assert_int_eq(kill((pid_t)pid2, SIGKILL), 0);
  ck_assert_int_eq(wait_state(&a, RAYC_ACTOR_DEAD, NULL), RAYC_ACTOR_DEAD);
  expect_dead(&a, "get", "worker died");
  rayc_shutdown();
}
END_TEST

START_TEST(test_death_reasons)
{
  it_connect();
  rayc_actor f = create("TFailing", NULL, 0, NULL);
  expect_dead(&f, "get", "constructor failed: TFailing: bad configuration");
  rayc_actor u = create("NoSuchClass", NULL, 0, NULL);
  expect_dead(&u, "get", "not registered");
  rayc_actor e = create("TCounter", NULL, 0, NULL);
  ck_assert_int_eq(call_ok(&e, "incr", NULL, 0), 1);
  ck_assert_int_eq(call_ok(&e, "leave", NULL, 0), 1);
  expect_dead(&e, "get", "exited");
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_restarts = 3; /* an exit is not restarted */
  rayc_actor e2 = create("TCounter", NULL, 0, &o);
  rayc_ref r1 = call(&e2, "leave", NULL, 0), r2 = call(&e2, "get", NULL, 0);
  int rc;
  it_get_i64(&r1, &rc);
  ck_assert_int_eq(rc, 0);
  it_get_i64(&r2, &rc); /* queued behind the exit */
  ck_assert_int_eq(rc, RAYC_EACTOR_DIED);
  ck_assert_msg(strstr(rayc_last_error(), "exited"), "%s", rayc_last_error());
  rayc_ref_release(&r1);
  rayc_ref_release(&r2);
  ck_assert_int_eq(wait_state(&e2, RAYC_ACTOR_DEAD, NULL), RAYC_ACTOR_DEAD);
  rayc_shutdown();
}
END_TEST

START_TEST(test_kill_with_and_without_restart)
{
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_restarts = 1;
  rayc_actor a = create("TCounter", NULL, 0, &o);
  ck_assert_int_eq(call_ok(&a, "incr", NULL, 0), 1);
  ck_assert_int_eq(rayc_actor_kill(&a, 0), 0); /* restarts: max_restarts allows one */
  ck_assert_int_eq(call_ok(&a, "incr", NULL, 0), 1);
  int restarts = 0;
  ck_assert_int_eq(wait_state(&a, RAYC_ACTOR_ALIVE, &restarts), RAYC_ACTOR_ALIVE);
  ck_assert_int_eq(restarts, 1);
  ck_assert_int_eq(rayc_actor_kill(&a, 0), 0); /* none left */
  expect_dead(&a, "incr", "killed");
  rayc_actor b = create("TCounter", NULL, 0, &o);
  ck_assert_int_eq(call_ok(&b, "incr", NULL, 0), 1);
  ck_assert_int_eq(rayc_actor_kill(&b, 1), 0); /* no_restart */
  ck_assert_int_eq(wait_state(&b, RAYC_ACTOR_DEAD, &restarts), RAYC_ACTOR_DEAD);
  ck_assert_int_eq(restarts, 0);
  expect_dead(&b, "incr", "killed by rayc_actor_kill");
  ck_assert_int_eq(rayc_actor_kill(&b, 1), 0); /* killing a dead actor is fine */
  rayc_actor nobody = {{0}};
  ck_assert_int_eq(rayc_actor_kill(&nobody, 1), RAYC_ENOT_FOUND);
  rayc_shutdown();
}
END_TEST

START_TEST(test_max_concurrency_4)
{
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_concurrency = 4;
  rayc_actor a = create("TConc", NULL, 0, &o);
  int64_t ms = 300;
  rayc_arg arg = RAYC_ARG_VAL(&ms, 8);
  int rc;
  call_i64(&a, "hold", &arg, 1, &rc); /* created and warm */
  ck_assert_int_eq(rc, 0);
  enum { N = 8 };
  rayc_ref refs[N];
  double t0 = it_now_s();
  for (int i = 0; i < N; i++)
    refs[i] = call(&a, "hold", &arg, 1);
  int64_t max = 0;
  for (int i = 0; i < N; i++) {
    int64_t m = it_get_i64(&refs[i], &rc);
    ck_assert_int_eq(rc, 0);
    max = m > max ? m : max;
    rayc_ref_release(&refs[i]);
  }
  double took = it_now_s() - t0;
  ck_assert_int_eq(max, 4);
  ck_assert_msg(took < 1.5, "8 calls of 300 ms on 4 threads took %.2f s", took);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("actors");
  TCase *tc = tcase_create("actors");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_ordering_10k);
  tcase_add_test(tc, test_ref_arguments_keep_order);
  tcase_add_test(tc, test_handles_passed_to_tasks_and_actors);
  tcase_add_test(tc, test_named_and_detached_from_second_driver);
  tcase_add_test(tc, test_restart_after_sigkill);
  tcase_add_test(tc, test_death_reasons);
  tcase_add_test(tc, test_kill_with_and_without_restart);
  tcase_add_test(tc, test_max_concurrency_4);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
