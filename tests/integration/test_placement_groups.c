/*
 * Integration tests of placement groups against a real one-node cluster (3 CPUs): a PACK group of
 * two {CPU: 1} bundles is reserved (the node's available CPU drops by 2), tasks pinned to each
 * bundle and to any bundle run, an actor lives in a bundle; removal gives the CPUs back and kills
 * the actor; an infeasible group stays PENDING and waiting for it times out with the reason;
 * removing a group fails its queued and running tasks; a finished job's groups are removed;
 * `rayc list placement-groups` shows groups.
 */
#include "itest.h"
#include "itest_sh.h"

#include <time.h>
#include <unistd.h>

static const rayc_resource cpu1[] = {{"CPU", 1}};

static rayc_placement_group make_pg(const rayc_resource *res, size_t nres, size_t nbundles, int strategy,
                                    const char *name)
{
  rayc_bundle b[8];
  for (size_t i = 0; i < nbundles; i++)
    b[i] = (rayc_bundle){.resources = res, .nresources = nres};
  rayc_placement_group pg;
  int rc = rayc_placement_group_create(b, nbundles, strategy, name, &pg);
  ck_assert_msg(rc == 0, "rayc_placement_group_create: %s", rayc_last_error());
  return pg;
}

/* Polls `rayc status` until the node's line shows "CPU <want>/3.0" (5 s at most). */
static void expect_cpu_available(const char *want)
{
  char needle[64], cmd[1600], *out;
  snprintf(needle, sizeof(needle), "CPU %s/3.0", want);
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc status --temp-dir %s", it_build, it_temp);
  ck_assert_msg(it_sh_until(&out, needle, 50, cmd), "rayc status does not show %s:\n%s", needle, out);
  ck_assert_msg(!strstr(out, "_group_"), "rayc status shows placement-group resources:\n%s", out);
  free(out);
}

static int64_t run_pid_task(const rayc_placement_group *pg, int bundle, int *rc)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.placement_group = pg;
  o.bundle_index = bundle;
  rayc_ref r;
  *rc = rayc_remote("pid", NULL, 0, &o, &r);
  if (*rc != 0)
    return -1;
  int64_t v = it_get_i64(&r, rc);
  rayc_ref_release(&r);
  return v;
}

START_TEST(test_pack_group_runs_tasks_and_actor)
{
  it_connect();
  rayc_placement_group pg = make_pg(cpu1, 1, 2, RAYC_PG_PACK, "pack2");
  int rc = rayc_placement_group_wait(&pg, 30000);
  ck_assert_msg(rc == 0, "wait: %s", rayc_last_error());
  expect_cpu_available("1.0"); /* 3 CPUs, 2 reserved */

  for (int b = -1; b < 2; b++) {
    int64_t pid = run_pid_task(&pg, b, &rc);
    ck_assert_msg(rc == 0 && pid > 0, "task in bundle %d: %s", b, rayc_last_error());
  }
  /* more tasks than the group has CPUs: they all run, within the group's two CPUs */
  rayc_ref refs[6];
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.placement_group = &pg;
  int64_t ms = 100;
  rayc_arg arg = RAYC_ARG_VAL(&ms, sizeof(ms));
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq(rayc_remote("sleep_ms", &arg, 1, &o, &refs[i]), 0);
  for (int i = 0; i < 6; i++) {
    ck_assert_int_eq(it_get_i64(&refs[i], &rc), 100);
    rayc_ref_release(&refs[i]);
  }

  /* an actor holding bundle 1's CPU */
  rayc_actor_opts ao;
  rayc_actor_opts_init(&ao);
  ao.num_cpus = 1;
  ao.placement_group = &pg;
  ao.bundle_index = 1;
  rayc_actor a;
  ck_assert_msg(rayc_actor_create("TCounter", NULL, 0, &ao, &a) == 0, "actor: %s", rayc_last_error());
  rayc_ref r;
  ck_assert_int_eq(rayc_actor_call(&a, "pid", NULL, 0, NULL, &r), 0);
  int64_t apid = it_get_i64(&r, &rc);
  rayc_ref_release(&r);
  ck_assert_msg(rc == 0 && apid > 0, "actor call: %s", rayc_last_error());
  /* bundle 0 still runs tasks; the node's own CPU is untouched by them */
  ck_assert(run_pid_task(&pg, 0, &rc) > 0);
  expect_cpu_available("1.0");

  char *out = NULL, hex[RAYC_PG_HEX_LEN];
  rayc_placement_group_hex(&pg, hex);
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list placement-groups --format json --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, hex) && strstr(out, "\"CREATED\"") && strstr(out, "\"PACK\"") && strstr(out, "pack2"),
                "rayc list placement-groups --format json:\n%s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list placement-groups --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, hex) && strstr(out, "CREATED"), "rayc list placement-groups:\n%s", out);
  free(out);

  ck_assert_int_eq(rayc_placement_group_remove(&pg), 0);
  expect_cpu_available("3.0");
  rayc_actor_state st = RAYC_ACTOR_ALIVE;
  for (int i = 0; i < 100 && st != RAYC_ACTOR_DEAD; i++) {
    ck_assert_int_eq(rayc_actor_get_state(&a, &st, NULL), 0);
    usleep(100 * 1000);
  }
  ck_assert_msg(st == RAYC_ACTOR_DEAD, "the actor of a removed group is %d", st);
  ck_assert_msg(strstr(rayc_last_error(), "placement group"), "death reason: %s", rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_wait(&pg, 1000), RAYC_ENOT_FOUND);
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list placement-groups --format json --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, hex) && strstr(out, "\"REMOVED\""), "after removal:\n%s", out);
  free(out);
  rayc_shutdown();
}
END_TEST

START_TEST(test_infeasible_group_stays_pending)
{
  it_connect();
  const rayc_resource big[] = {{"CPU", 100}};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rayc_placement_group pg = make_pg(big, 1, 1, RAYC_PG_STRICT_PACK, "toobig");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* create holds its reply until the group is placed, but only briefly (200 ms): never until then */
  double create_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_msg(create_s < 8, "create of an infeasible group took %.1f s", create_s);
  int rc = rayc_placement_group_wait(&pg, 1500);
  ck_assert_msg(rc == RAYC_ETIMEOUT, "wait on an infeasible group: %d (%s)", rc, rayc_last_error());
  ck_assert_msg(strstr(rayc_last_error(), "PENDING") && strstr(rayc_last_error(), "STRICT_PACK"),
                "the timeout does not say why: %s", rayc_last_error());
  /* STRICT_SPREAD of 2 on one node cannot be placed either */
  rayc_placement_group pg2 = make_pg(cpu1, 1, 2, RAYC_PG_STRICT_SPREAD, NULL);
  rc = rayc_placement_group_wait(&pg2, 1000);
  ck_assert_msg(rc == RAYC_ETIMEOUT && strstr(rayc_last_error(), "STRICT_SPREAD"), "STRICT_SPREAD x2: %d (%s)", rc,
                rayc_last_error());
  char *out = NULL, hex[RAYC_PG_HEX_LEN];
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list placement-groups --format json --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, rayc_placement_group_hex(&pg, hex)) && strstr(out, "\"PENDING\""), "list:\n%s", out);
  free(out);
  expect_cpu_available("3.0"); /* nothing was reserved */
  ck_assert_int_eq(rayc_placement_group_remove(&pg), 0);
  ck_assert_int_eq(rayc_placement_group_remove(&pg2), 0);
  ck_assert_int_eq(rayc_placement_group_wait(&pg, 1000), RAYC_ENOT_FOUND);
  /* bad input is refused */
  rayc_bundle none = {.resources = NULL, .nresources = 0};
  ck_assert_int_eq(rayc_placement_group_create(&none, 1, RAYC_PG_PACK, NULL, &pg), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(rayc_placement_group_create(NULL, 0, RAYC_PG_PACK, NULL, &pg), RAYC_EINVALID_ARGUMENT);
  rayc_bundle one = {.resources = cpu1, .nresources = 1};
  ck_assert_int_eq(rayc_placement_group_create(&one, 1, 7, NULL, &pg), RAYC_EINVALID_ARGUMENT);
  rayc_shutdown();
}
END_TEST

START_TEST(test_remove_fails_tasks)
{
  it_connect();
  rayc_placement_group pg = make_pg(cpu1, 1, 1, RAYC_PG_STRICT_PACK, NULL);
  ck_assert_int_eq(rayc_placement_group_wait(&pg, 30000), 0);
  expect_cpu_available("2.0");
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.placement_group = &pg;
  o.bundle_index = 0;
  int64_t ms = 60000;
  rayc_arg arg = RAYC_ARG_VAL(&ms, sizeof(ms));
  rayc_ref running, queued;
  ck_assert_int_eq(rayc_remote("sleep_ms", &arg, 1, &o, &running), 0);
  ck_assert_int_eq(rayc_remote("sleep_ms", &arg, 1, &o, &queued), 0); /* the bundle has 1 CPU: it waits */
  int ready[1];
  ck_assert_int_eq(rayc_wait(&running, 1, 1, 1500, ready), 0); /* still running */
  ck_assert_int_eq(rayc_placement_group_remove(&pg), 0);
  int rc;
  rayc_buf b;
  rc = rayc_get(&running, 1, 30000, &b);
  ck_assert_msg(rc == RAYC_EINFEASIBLE || rc == RAYC_EWORKER_DIED, "the running task: %d (%s)", rc, rayc_last_error());
  rc = rayc_get(&queued, 1, 30000, &b);
  ck_assert_msg(rc == RAYC_EINFEASIBLE, "the queued task: %d (%s)", rc, rayc_last_error());
  ck_assert_msg(strstr(rayc_last_error(), "removed"), "why: %s", rayc_last_error());
  rayc_ref_release(&running);
  rayc_ref_release(&queued);
  /* new tasks of the removed group fail at once */
  int64_t pid = run_pid_task(&pg, 0, &rc);
  ck_assert_msg(rc == RAYC_EINFEASIBLE && pid == -1, "task of a removed group: %d (%s)", rc, rayc_last_error());
  expect_cpu_available("3.0");
  /* and the node runs ordinary tasks again on all its CPUs */
  rayc_task_opts plain;
  rayc_task_opts_init(&plain);
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("pid", NULL, 0, &plain, &r), 0);
  ck_assert(it_get_i64(&r, &rc) > 0);
  rayc_ref_release(&r);
  rayc_shutdown();
}
END_TEST

START_TEST(test_job_end_removes_groups)
{
  it_connect();
  rayc_placement_group pg = make_pg(cpu1, 1, 2, RAYC_PG_SPREAD, "ownedbyjob");
  ck_assert_int_eq(rayc_placement_group_wait(&pg, 30000), 0);
  expect_cpu_available("1.0");
  rayc_shutdown(); /* the job finishes: its groups go */
  char *out = NULL, hex[RAYC_PG_HEX_LEN];
  rayc_placement_group_hex(&pg, hex);
  int removed = 0;
  for (int i = 0; i < 100 && !removed; i++) {
    free(out);
    ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list placement-groups --format json --temp-dir %s", it_build, it_temp),
                     0);
    char *at = strstr(out, hex);
    removed = at && strstr(at, "\"REMOVED\"") && strstr(at, "finished");
    if (!removed)
      usleep(100 * 1000);
  }
  ck_assert_msg(removed, "the group of a finished job was not removed:\n%s", out);
  free(out);
  expect_cpu_available("3.0");
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 3 --object-store-memory 128M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("placement_groups");
  TCase *tc = tcase_create("placement_groups");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_pack_group_runs_tasks_and_actor);
  tcase_add_test(tc, test_infeasible_group_stays_pending);
  tcase_add_test(tc, test_remove_fails_tasks);
  tcase_add_test(tc, test_job_end_removes_groups);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
