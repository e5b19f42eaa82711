/*
 * Integration tests of `rayc job` on one real head node (GCS, store, raylet started by `rayc
 * start`): submit and stream, status and logs in JSON, a failing entrypoint, stop of a process
 * group, delete, the exit codes, hostile working-dir archives (a '..' entry, an absolute link)
 * refused on the head with nothing written outside, and the record chain. The multi-host checks
 * are in test_jobs_multinode (tests/netns/jobs_multinode.sh).
 */
#include "itest.h"
#include "itest_sh.h"

#include <sys/stat.h>

static char rayc_bin[1200];

static void setup(void)
{
  snprintf(rayc_bin, sizeof(rayc_bin), "%s/bin/rayc", it_build);
}

/* The value of "key": "..." in a JSON text (first match), into out. */
static void json_field(const char *json, const char *key, char *out, size_t len)
{
  char *pat = xasprintf("\"%s\": ", key);
  const char *p = strstr(json, pat);
  out[0] = '\0';
  if (p) {
    p += strlen(pat);
    size_t n = strcspn(p + (*p == '"'), "\",\n");
    snprintf(out, len, "%.*s", (int)n, p + (*p == '"'));
  }
  free(pat);
}

/* Polls `rayc job status ID` until it says want (up to 60 s); returns the last status. */
static void wait_status(const char *id, const char *want, char *got, size_t len)
{
  for (int i = 0; i < 300; i++) {
    char *out = NULL;
    it_sh(&out, "%s job status --format json %s", rayc_bin, id);
    json_field(out, "status", got, len);
    free(out);
    if (strcmp(got, want) == 0)
      return;
    usleep(200 * 1000);
  }
}

START_TEST(test_submit_streams_and_keeps_output)
{
  char *out = NULL, v[256];
  int rc = it_sh(&out,
                 "%s job submit --submission-id ok1 --metadata team=infra -- 'echo to-stdout; echo to-stderr >&2'",
                 rayc_bin);
  ck_assert_msg(rc == 0, "submit exited %d: %s", rc, out);
  ck_assert_msg(strstr(out, "to-stdout") && strstr(out, "to-stderr") && strstr(out, "succeeded"), "%s", out);
  free(out);
  it_sh(&out, "%s job status --format json ok1", rayc_bin);
  json_field(out, "status", v, sizeof(v));
  ck_assert_str_eq(v, "SUCCEEDED");
  json_field(out, "driver_exit_code", v, sizeof(v));
  ck_assert_str_eq(v, "0");
  ck_assert_msg(strstr(out, "\"team\": \"infra\""), "metadata missing: %s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job logs ok1", rayc_bin), 0); /* the log is kept */
  ck_assert_msg(strstr(out, "to-stdout") && strstr(out, "to-stderr"), "%s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job submit --submission-id ok1 -- true", rayc_bin), 1);
  ck_assert_msg(strstr(out, "exists already"), "a second submit with the same id: %s", out);
  free(out);
}
END_TEST

START_TEST(test_failing_entrypoint_and_exit_codes)
{
  char *out = NULL, v[256];
  ck_assert_int_eq(it_sh(&out, "%s job submit --submission-id bad1 -- 'exit 9'", rayc_bin), 1);
  ck_assert_msg(strstr(out, "failed: the entrypoint exited with code 9"), "%s", out);
  free(out);
  it_sh(&out, "%s job status --format json bad1", rayc_bin);
  json_field(out, "status", v, sizeof(v));
  ck_assert_str_eq(v, "FAILED");
  json_field(out, "driver_exit_code", v, sizeof(v));
  ck_assert_str_eq(v, "9");
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job status no-such-job", rayc_bin), 3);
  ck_assert_msg(strstr(out, "no job with submission id 'no-such-job'"), "%s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job list --address 127.0.0.1:1 --timeout-ms 3000", rayc_bin), 4);
  free(out);
  ck_assert_int_eq(
      it_sh(&out, "echo wrong > %s/bad_token && RAYC_TOKEN_FILE=%s/bad_token %s job list", it_temp, it_temp, rayc_bin),
      5);
  ck_assert_msg(strstr(out, "token"), "%s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job status", rayc_bin), 2);
  free(out);
}
END_TEST

START_TEST(test_stop_ends_the_group_then_delete)
{
  char *out = NULL, v[256];
  /* two processes in the group: a background sleep and the shell waiting for it */
  int rc = it_sh(&out, "%s job submit --no-wait --submission-id stop1 -- 'sleep 3171 & sleep 3172; wait'", rayc_bin);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  wait_status("stop1", "RUNNING", v, sizeof(v));
  ck_assert_str_eq(v, "RUNNING");
  for (int i = 0; i < 100 && it_count_procs("sleep 3172") == 0; i++)
    usleep(100 * 1000);
  ck_assert_int_ge(it_count_procs("sleep 3171"), 1); /* the sleep, and the shell whose command line names it */
  ck_assert_int_eq(it_sh(&out, "%s job delete stop1", rayc_bin), 1); /* running: refused */
  ck_assert_msg(strstr(out, "stop it first"), "%s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job stop stop1", rayc_bin), 0);
  free(out);
  wait_status("stop1", "STOPPED", v, sizeof(v));
  ck_assert_str_eq(v, "STOPPED");
  for (int i = 0; i < 50 && it_count_procs("sleep 317"); i++)
    usleep(100 * 1000);
  ck_assert_int_eq(it_count_procs("sleep 3171"), 0);
  ck_assert_int_eq(it_count_procs("sleep 3172"), 0);
  ck_assert_int_eq(it_sh(&out, "%s job stop stop1", rayc_bin), 0);
  ck_assert_msg(strstr(out, "already ended"), "%s", out);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job delete stop1 && %s job list", rayc_bin, rayc_bin), 0);
  ck_assert_msg(!strstr(out, "stop1 "), "deleted job still listed: %s", out);
  free(out);
  /* its record is written (after the job ended: it was deleted meanwhile) and stays */
  int have = 0;
  for (int i = 0; i < 100 && !have; i++) {
    it_sh(&out, "%s job records", rayc_bin);
    have = strstr(out, " stop1 ") != NULL;
    free(out);
    if (!have)
      usleep(200 * 1000);
  }
  ck_assert_msg(have, "the deleted job's governance record was not written");
  ck_assert_int_eq(it_sh(&out, "%s job records --verify", rayc_bin), 0);
  ck_assert_msg(strstr(out, "verified"), "%s", out);
  free(out);
}
END_TEST

START_TEST(test_entrypoint_cpus_reserved_on_the_head)
{
  char *out = NULL, v[256];
  ck_assert_int_eq(
      it_sh(&out, "%s job submit --no-wait --submission-id cpu1 --entrypoint-num-cpus 1.5 -- 'sleep 120'", rayc_bin),
      0);
  free(out);
  wait_status("cpu1", "RUNNING", v, sizeof(v));
  ck_assert_str_eq(v, "RUNNING");
  /* the head's raylet reports the reservation with its next heartbeat (the GCS's view of a node's
   * resources is at most a heartbeat old) */
  for (int i = 0;; i++) {
    it_sh(&out, "%s status", rayc_bin);
    if (strstr(out, " 1.5/2.0 CPU") || i == 50)
      break;
    free(out);
    usleep(200 * 1000);
  }
  ck_assert_msg(strstr(out, " 1.5/2.0 CPU"), "the entrypoint's 1.5 CPUs are not reserved: %s", out);
  free(out);
  /* a second job needing 1 CPU waits PENDING until the first (stopped) gives its CPUs back */
  ck_assert_int_eq(
      it_sh(&out, "%s job submit --no-wait --submission-id cpu2 --entrypoint-num-cpus 1 -- true", rayc_bin), 0);
  free(out);
  usleep(1000 * 1000);
  it_sh(&out, "%s job status --format json cpu2", rayc_bin);
  json_field(out, "status", v, sizeof(v));
  ck_assert_msg(strcmp(v, "PENDING") == 0, "cpu2 did not wait for the CPUs: %s", out);
  free(out);
  ck_assert_int_eq(it_sh(NULL, "%s job stop cpu1", rayc_bin), 0); /* its CPUs go back: cpu2 runs */
  wait_status("cpu2", "SUCCEEDED", v, sizeof(v));
  ck_assert_str_eq(v, "SUCCEEDED");
  for (int i = 0; i < 50; i++) {
    it_sh(&out, "%s status", rayc_bin);
    int freed = strstr(out, " 0.0/2.0 CPU") != NULL;
    free(out);
    if (freed)
      return;
    usleep(200 * 1000);
  }
  ck_abort_msg("the entrypoints' CPUs were not given back");
}
END_TEST

/* Working-dir packages no job uses are collected: the KV copy by the GCS, the node's copy by the
 * raylet (both TTLs are 3 s in this test, see main). */
START_TEST(test_unused_packages_collected)
{
  char *out = NULL, *wd = xasprintf("%s/gcwd", it_temp);
  ck_assert_int_eq(it_sh(NULL, "mkdir -p %s && echo 'gc me' > %s/data.txt", wd, wd), 0);
  ck_assert_int_eq(it_sh(&out, "%s job submit --working-dir %s -- 'cat data.txt'", rayc_bin, wd), 0);
  ck_assert_msg(strstr(out, "gc me") && strstr(out, "(uploaded)"), "%s", out);
  const char *pk = strstr(out, "pkg_");
  ck_assert_ptr_nonnull(pk);
  char pkg[69];
  snprintf(pkg, sizeof(pkg), "%.68s", pk);
  free(out);
  ck_assert_int_eq(it_sh(&out, "%s job submit --working-dir %s -- true", rayc_bin, wd), 0);
  ck_assert_msg(strstr(out, "already uploaded"), "a second submit uploaded again: %s", out);
  free(out);
  int gone = 0;
  for (int i = 0; i < 150 && !gone; i++) { /* the copy under runtime_env/ goes once unused for the TTL */
    usleep(200 * 1000);
    gone = it_sh(NULL, "ls -d %s/session_latest/runtime_env/%s > /dev/null 2>&1", it_temp, pkg) != 0;
  }
  ck_assert_msg(gone, "the node's copy of the working dir was never collected");
  int deleted = 0; /* and the KV package (the GCS logs it) */
  for (int i = 0; i < 150 && !deleted; i++) {
    usleep(200 * 1000);
    deleted = it_sh(NULL, "grep -q 'package %s: .*deleted from the KV' %s/session_latest/logs/gcs.log", pkg, it_temp) ==
              0;
  }
  ck_assert_int_eq(it_sh(&out, "%s job submit --working-dir %s -- true", rayc_bin, wd), 0);
  int uploaded = strstr(out, "(uploaded)") != NULL; /* a new submit has to upload it again */
  free(out);
  free(wd);
  if (deleted && uploaded)
    return;
  ck_abort_msg("the unused package was never deleted from the KV");
}
END_TEST

/* Submits the archive python builds with the members given (a Python list of statements). */
static void refused_archive(const char *what, const char *members, const char *want)
{
  char *out = NULL, v[256];
  char *tar = xasprintf("%s/evil-%s.tar", it_temp, what);
  int rc = it_sh(&out,
                 "/usr/bin/python3 -c \"import tarfile, io\nt = tarfile.open('%s', 'w')\n"
                 "def add(name, data=b'x', link=None):\n"
                 "    i = tarfile.TarInfo(name)\n"
                 "    if link: i.type, i.linkname = tarfile.SYMTYPE, link\n"
                 "    else: i.size = len(data)\n"
                 "    t.addfile(i, None if link else io.BytesIO(data))\n"
                 "%s\nt.close()\"",
                 tar, members);
  ck_assert_msg(rc == 0, "python: %s", out);
  free(out);
  char *id = xasprintf("evil-%s", what);
  rc = it_sh(&out, "%s job submit --submission-id %s --working-dir %s -- true", rayc_bin, id, tar);
  ck_assert_msg(rc == 1, "a hostile archive (%s) was not refused: %d %s", what, rc, out);
  free(out);
  it_sh(&out, "%s job status --format json %s", rayc_bin, id);
  json_field(out, "status", v, sizeof(v));
  ck_assert_str_eq(v, "FAILED");
  ck_assert_msg(strstr(out, want), "the error does not say '%s': %s", want, out);
  free(out);
  free(id);
  free(tar);
}

START_TEST(test_hostile_archives_refused)
{
  char *escape = xasprintf("%s/escaped.txt", it_temp);
  unlink(escape);
  refused_archive("dotdot", "add('ok.txt')\nadd('../escaped.txt')", "'..' component");
  refused_archive("abslink", "add('ok.txt')\nadd('out', link='/etc/passwd')", "link target is absolute");
  char *cmd = xasprintf("add('a/../../escaped.txt')");
  refused_archive("nested", cmd, "'..' component");
  free(cmd);
  struct stat st;
  ck_assert_msg(stat(escape, &st) != 0, "a file was written outside the working dir: %s", escape);
  free(escape);
  /* nothing half-unpacked is left under runtime_env/ either */
  char *out = NULL;
  it_sh(&out, "ls -a %s/session_latest/runtime_env/", it_temp);
  ck_assert_msg(!strstr(out, ".tmp-"), "a partial unpack was left: %s", out);
  free(out);
}
END_TEST

int main(void)
{
  setenv("RAYC_JOB_PACKAGE_TTL_MS", "3000", 1); /* package GC within the test's time */
  setenv("RAYC_RUNTIME_ENV_TTL_MS", "3000", 1);
  if (it_start("libtest_tasks.so", "--num-cpus 2") != 0)
    return 1;
  Suite *s = suite_create("jobs");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 180);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_submit_streams_and_keeps_output);
  tcase_add_test(tc, test_failing_entrypoint_and_exit_codes);
  tcase_add_test(tc, test_stop_ends_the_group_then_delete);
  tcase_add_test(tc, test_hostile_archives_refused);
  tcase_add_test(tc, test_entrypoint_cpus_reserved_on_the_head);
  tcase_add_test(tc, test_unused_packages_collected);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
