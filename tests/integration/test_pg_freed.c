/*
 * A placement group waiting for a CPU that the GCS knows is taken is placed as soon as the CPU is
 * freed, not at the node's next heartbeat: the raylet reports resources it had run out of and
 * got back within 100 ms (raylet_gcs_report_soon). The heartbeat period is 10 s here: an actor
 * holds the node's one CPU until a heartbeat has told the GCS (`rayc status` shows it used), a
 * group is created (pending: no CPU in the GCS's view), the actor is killed, and the group must
 * be placed within 4 s, well before the next heartbeat.
 */
#include "itest.h"
#include "itest_sh.h"

#include <stdlib.h>
#include <unistd.h>

/* Polls `rayc status` until it shows "CPU <want>/1.0" (30 s at most). */
static void expect_cpu_used(const char *want)
{
  char needle[64], cmd[1600], *out;
  snprintf(needle, sizeof(needle), "%s/1.0 CPU", want);
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc status --temp-dir %s", it_build, it_temp);
  ck_assert_msg(it_sh_until(&out, needle, 300, cmd), "rayc status does not show %s:\n%s", needle, out);
  free(out);
}

START_TEST(test_group_placed_when_cpu_freed)
{
  it_connect();
  rayc_actor_opts ao;
  rayc_actor_opts_init(&ao);
  ao.num_cpus = 1;
  rayc_actor a;
  ck_assert_msg(rayc_actor_create("TCounter", NULL, 0, &ao, &a) == 0, "actor: %s", rayc_last_error());
  rayc_ref r;
  int rc;
  ck_assert_int_eq(rayc_actor_call(&a, "pid", NULL, 0, NULL, &r), 0);
  ck_assert_msg(it_get_i64(&r, &rc) > 0 && rc == 0, "actor call: %s", rayc_last_error());
  rayc_ref_release(&r);
  expect_cpu_used("1.0"); /* a heartbeat told the GCS */
  static const rayc_resource cpu1[] = {{"CPU", 1}};
  rayc_bundle b = {.resources = cpu1, .nresources = 1};
  rayc_placement_group pg;
  ck_assert_msg(rayc_placement_group_create(&b, 1, RAYC_PG_PACK, NULL, &pg) == 0, "%s", rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_wait(&pg, 500), RAYC_ETIMEOUT); /* pending */
  ck_assert_int_eq(rayc_actor_kill(&a, 1), 0);
  rc = rayc_placement_group_wait(&pg, 4000);
  ck_assert_msg(rc == 0, "the group was not placed within 4 s of the CPU's release: %d (%s)", rc, rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&pg), 0);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  setenv("RAYC_HEARTBEAT_MS", "10000", 1);
  setenv("RAYC_HEARTBEAT_TIMEOUT_MS", "120000", 1);
  if (it_start("libtest_tasks.so", "--num-cpus 1 --object-store-memory 128M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("pg_freed");
  TCase *tc = tcase_create("pg_freed");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_group_placed_when_cpu_freed);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
