/*
 * Integration tests of actors that share a worker process (rayc_actor_opts.share_worker, issue 17
 * session 7) against a real head node: many sharing actors of one job land in a few processes
 * (each actor reports the pid of the process that hosts it) and keep their own state and call
 * order; killing one or its rayc_actor_exit leaves its siblings answering with their state, and a
 * killed one with restarts left comes back fresh in another process; a
 * crash of the host ends all its actors and those with max_restarts come back with fresh state in
 * another process; sharing and non-sharing actors mix, and a sharing actor that asks for a CPU
 * gets a process of its own. The GCS puts at most 16 actors in one process (--actors-per-worker).
 */
#include "itest.h"

#include <signal.h>
#include <time.h>

enum { PER_HOST = 16 };

static rayc_actor create_opt(int share, double cpus, int max_restarts)
{
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.share_worker = share;
  o.num_cpus = cpus;
  o.max_restarts = max_restarts;
  rayc_actor a;
  int rc = rayc_actor_create("TCounter", NULL, 0, &o, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create: %s", rayc_last_error());
  return a;
}

static int64_t call_rc(const rayc_actor *a, const char *m, int64_t arg, int *rc)
{
  rayc_ref r;
  rayc_arg v = RAYC_ARG_VAL(&arg, 8);
  int crc = rayc_actor_call(a, m, &v, 1, NULL, &r);
  ck_assert_msg(crc == 0, "rayc_actor_call %s: %s", m, rayc_last_error());
  int64_t out = it_get_i64(&r, rc);
  rayc_ref_release(&r);
  return out;
}

static int64_t call_ok(const rayc_actor *a, const char *m, int64_t arg)
{
  int rc;
  int64_t v = call_rc(a, m, arg, &rc);
  ck_assert_msg(rc == 0, "%s: %s", m, rayc_last_error());
  return v;
}

static void expect_dead(const rayc_actor *a)
{
  int rc;
  call_rc(a, "get", 0, &rc);
  ck_assert_msg(rc == RAYC_EACTOR_DIED, "a call of a dead actor: %d (%s)", rc, rayc_last_error());
}

static int distinct(const int64_t *v, int n)
{
  int d = 0;
  for (int i = 0; i < n; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++)
      seen |= v[j] == v[i];
    d += !seen;
  }
  return d;
}

/* 1 once pid is gone (or a zombie), polling up to 30 s. */
static int pid_gone(long pid)
{
  char buf[512];
  for (int i = 0; i < 3000; i++) {
    const char *st = it_proc_stat(pid, buf, sizeof(buf));
    if (!st || *st == 'Z')
      return 1;
    usleep(10000);
  }
  return 0;
}

static rayc_actor_state wait_state(const rayc_actor *a, rayc_actor_state want)
{
  rayc_actor_state st = RAYC_ACTOR_PENDING_CREATION;
  for (int i = 0; i < 3000; i++) {
    ck_assert_int_eq(rayc_actor_get_state(a, &st, NULL), 0);
    if (st == want)
      break;
    usleep(10000);
  }
  return st;
}

START_TEST(test_many_share_few_processes)
{
  it_connect();
  enum { N = 40, CALLS = 50 };
  rayc_actor a[N];
  int64_t pids[N];
  for (int i = 0; i < N; i++)
    a[i] = create_opt(1, 0, 0);
  for (int i = 0; i < N; i++)
    pids[i] = call_ok(&a[i], "pid", 0);
  int procs = distinct(pids, N);
  ck_assert_msg(procs >= (N + PER_HOST - 1) / PER_HOST && procs <= N / 4, "%d sharing actors in %d processes", N,
                procs);
  /* interleaved calls: each actor sees its own calls in order and keeps its own count */
  rayc_ref *refs = malloc(sizeof(*refs) * N * CALLS);
  for (int64_t k = 0; k < CALLS; k++)
    for (int i = 0; i < N; i++) {
      rayc_arg v = RAYC_ARG_VAL(&k, 8);
      ck_assert_int_eq(rayc_actor_call(&a[i], "check", &v, 1, NULL, &refs[k * N + i]), 0);
    }
  for (int i = 0; i < N; i++) {
    int rc;
    ck_assert_int_eq(it_get_i64(&refs[(CALLS - 1) * N + i], &rc), 0); /* none out of order */
    ck_assert_int_eq(rc, 0);
  }
  for (int i = 0; i < N * CALLS; i++)
    rayc_ref_release(&refs[i]);
  free(refs);
  for (int i = 0; i < N; i++)
    call_ok(&a[i], "incr", i + 1);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(call_ok(&a[i], "get", 0), i + 1);
  rayc_shutdown();
}
END_TEST

START_TEST(test_kill_one_keeps_siblings)
{
  it_connect();
  enum { N = 4 };
  rayc_actor a[N];
  int64_t pid = 0;
  for (int i = 0; i < N; i++) {
    a[i] = create_opt(1, 0, 0);
    call_ok(&a[i], "incr", 10 * (i + 1));
    int64_t p = call_ok(&a[i], "pid", 0);
    ck_assert_msg(i == 0 || p == pid, "actor %d in process %ld, the first in %ld", i, (long)p, (long)pid);
    pid = p;
  }
  ck_assert_int_eq(rayc_actor_kill(&a[0], 1), 0);
  expect_dead(&a[0]);
  ck_assert_int_eq(wait_state(&a[0], RAYC_ACTOR_DEAD), RAYC_ACTOR_DEAD);
  for (int i = 1; i < N; i++) {
    ck_assert_int_eq(call_ok(&a[i], "get", 0), 10 * (i + 1));
    ck_assert_int_eq(call_ok(&a[i], "pid", 0), pid);
  }
  /* one leaves by itself (rayc_actor_exit): the others go on */
  ck_assert_int_eq(call_ok(&a[1], "leave", 0), 20);
  ck_assert_int_eq(wait_state(&a[1], RAYC_ACTOR_DEAD), RAYC_ACTOR_DEAD);
  expect_dead(&a[1]);
  for (int i = 2; i < N; i++)
    ck_assert_int_eq(call_ok(&a[i], "incr", 1), 10 * (i + 1) + 1);
  ck_assert_msg(kill((pid_t)pid, 0) == 0, "the host ended while it had actors");
  /* the last ones gone: the host process ends */
  ck_assert_int_eq(rayc_actor_kill(&a[2], 1), 0);
  ck_assert_int_eq(rayc_actor_kill(&a[3], 1), 0);
  ck_assert_msg(pid_gone((long)pid), "the host worker %ld outlived its last actor", (long)pid);
  rayc_shutdown();
}
END_TEST

START_TEST(test_kill_with_restart)
{
  it_connect();
  rayc_actor r = create_opt(1, 0, 1), sib = create_opt(1, 0, 0);
  call_ok(&r, "incr", 7);
  call_ok(&sib, "incr", 8);
  int64_t pid = call_ok(&r, "pid", 0);
  ck_assert_int_eq(call_ok(&sib, "pid", 0), pid);
  ck_assert_int_eq(rayc_actor_kill(&r, 0), 0);
  ck_assert_int_eq(call_ok(&r, "get", 0), 0); /* the call waits for the restart: a fresh instance */
  int restarts = 0;
  rayc_actor_state st;
  ck_assert_int_eq(rayc_actor_get_state(&r, &st, &restarts), 0);
  ck_assert_int_eq(st, RAYC_ACTOR_ALIVE);
  ck_assert_int_eq(restarts, 1);
  ck_assert_int_ne(call_ok(&r, "pid", 0), pid); /* not in the host it was killed in */
  ck_assert_int_eq(call_ok(&sib, "get", 0), 8);
  ck_assert_int_eq(call_ok(&sib, "pid", 0), pid);
  rayc_shutdown();
}
END_TEST

START_TEST(test_host_crash_restarts)
{
  it_connect();
  rayc_actor keep = create_opt(1, 0, 1), lose = create_opt(1, 0, 0), victim = create_opt(1, 0, 0);
  call_ok(&keep, "incr", 5);
  call_ok(&lose, "incr", 6);
  int64_t pid = call_ok(&keep, "pid", 0);
  ck_assert_int_eq(call_ok(&lose, "pid", 0), pid);
  ck_assert_int_eq(call_ok(&victim, "pid", 0), pid);
  int rc;
  call_rc(&victim, "crash", 0, &rc);
  ck_assert_msg(rc != 0, "a call that aborts its process returned");
  ck_assert_msg(pid_gone((long)pid), "the host %ld did not die", (long)pid);
  ck_assert_int_eq(wait_state(&lose, RAYC_ACTOR_DEAD), RAYC_ACTOR_DEAD);
  ck_assert_int_eq(wait_state(&victim, RAYC_ACTOR_DEAD), RAYC_ACTOR_DEAD);
  expect_dead(&lose);
  int restarts = 0;
  rayc_actor_state st = RAYC_ACTOR_ALIVE;
  for (int i = 0; i < 6000 && !(st == RAYC_ACTOR_ALIVE && restarts == 1); i++) {
    ck_assert_int_eq(rayc_actor_get_state(&keep, &st, &restarts), 0);
    usleep(10000);
  }
  ck_assert_msg(st == RAYC_ACTOR_ALIVE && restarts == 1, "the actor with max_restarts 1: state %d, %d restarts", st,
                restarts);
  ck_assert_int_eq(call_ok(&keep, "get", 0), 0); /* a fresh instance */
  ck_assert_int_ne(call_ok(&keep, "pid", 0), pid);
  rayc_shutdown();
}
END_TEST

START_TEST(test_mixed_and_resources)
{
  it_connect();
  rayc_actor s1 = create_opt(1, 0, 0), own1 = create_opt(0, 0, 0), s2 = create_opt(1, 0, 0);
  rayc_actor own2 = create_opt(0, 0, 0), cpu = create_opt(1, 1, 0), s3 = create_opt(1, 0, 0);
  int64_t host = call_ok(&s1, "pid", 0);
  ck_assert_int_eq(call_ok(&s2, "pid", 0), host);
  ck_assert_int_eq(call_ok(&s3, "pid", 0), host);
  int64_t p[4] = {host, call_ok(&own1, "pid", 0), call_ok(&own2, "pid", 0), call_ok(&cpu, "pid", 0)};
  ck_assert_int_eq(distinct(p, 4), 4); /* the others each in a process of their own */
  call_ok(&own1, "incr", 3);
  call_ok(&s2, "incr", 4);
  ck_assert_int_eq(call_ok(&own1, "get", 0), 3);
  ck_assert_int_eq(call_ok(&s2, "get", 0), 4);
  ck_assert_int_eq(call_ok(&s1, "get", 0), 0);
  /* a non-sharing actor killed: it ends alone, as before */
  ck_assert_int_eq(rayc_actor_kill(&own1, 1), 0);
  ck_assert_msg(pid_gone((long)p[1]), "the killed actor's own worker lives on");
  ck_assert_int_eq(call_ok(&s3, "incr", 1), 1);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("actor_share");
  TCase *tc = tcase_create("actor_share");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_many_share_few_processes);
  tcase_add_test(tc, test_kill_one_keeps_siblings);
  tcase_add_test(tc, test_kill_with_restart);
  tcase_add_test(tc, test_host_crash_restarts);
  tcase_add_test(tc, test_mixed_and_resources);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
