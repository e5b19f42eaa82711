/*
 * `rayc up|down` without machines (the full runs are tests/system/rayc_up.sh): the cluster file's
 * mistakes are refused with the file, the key and why; hosts nobody answers on are reported one line
 * each, the others still tried, and the exit status says so; usage errors exit 2.
 */
#include "itest.h"
#include "itest_sh.h"

static char tmp[64], bin[1100];

static void setup(void)
{
  it_find_build();
  snprintf(bin, sizeof(bin), "%s/bin", it_build);
  snprintf(tmp, sizeof(tmp), "/tmp/rayc-upcli-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
  it_sh(NULL, "rm -rf %s", tmp);
}

/* Writes text to tmp/name. */
static void put(const char *name, const char *text)
{
  char *path = xasprintf("%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  free(path);
}

/* Runs `rayc ARGS` and checks its status and that its output has want. */
static void expect(int status, const char *want, const char *args)
{
  char *out = NULL;
  int rc = it_sh(&out, "cd %s && %s/rayc %s", tmp, bin, args);
  ck_assert_msg(rc == status && strstr(out, want), "rayc %s: status %d (want %d), output:\n%s\nwanted: %s", args, rc,
                status, out, want);
  free(out);
}

START_TEST(bad_cluster_files)
{
  put("syntax.yaml", "head: [\n");
  expect(2, "syntax.yaml: not YAML (line 2", "up syntax.yaml");
  put("nohead.yaml", "cluster_name: x\nworkers: [10.0.0.2]\n");
  expect(2, "nohead.yaml: no 'head' host", "up nohead.yaml");
  put("key.yaml", "head: 10.0.0.1\nssh_prot: 22\n");
  expect(2, "unknown key 'ssh_prot'", "up key.yaml");
  put("section.yaml", "head: 10.0.0.1\nsettings: {raylet: {num-cpus: 2}}\n");
  expect(2, "per-daemon sections are not supported", "up section.yaml");
  put("port.yaml", "head: 10.0.0.1\nssh_port: 70000\n");
  expect(2, "'ssh_port' must be a port number", "up port.yaml");
  put("pkg.yaml", "head: 10.0.0.1\npackage: missing.deb\n");
  expect(1, "cannot read the package", "up pkg.yaml");
  expect(2, "no cluster file given", "up");
  expect(2, "unexpected argument '--bogus'", "down --bogus x.yaml");
  expect(2, "cannot read it", "down nosuch.yaml");
  expect(0, "usage: rayc up [--status] CLUSTER.yaml", "up --help");
}
END_TEST

START_TEST(unreachable_hosts_reported_per_host)
{
  /* ssh to a port nothing listens on: refused at once, like a host whose sshd is down */
  put("c.yaml", "cluster_name: t\nssh_port: 1\nssh_options: [StrictHostKeyChecking=no, UserKnownHostsFile=/dev/null]\n"
                "head: 127.0.0.1\nworkers: [127.0.0.2, {host: 127.0.0.3, settings: {num-cpus: 1}}]\n");
  char *out = NULL;
  int rc = it_sh(&out, "cd %s && %s/rayc up --status c.yaml", tmp, bin);
  ck_assert_msg(rc == 1, "status %d: %s", rc, out);
  const char *hosts[] = {"127.0.0.1 (head): status: unreachable", "127.0.0.2: status: unreachable",
                         "127.0.0.3: status: unreachable"};
  for (size_t i = 0; i < ARRAY_LEN(hosts); i++)
    ck_assert_msg(strstr(out, hosts[i]), "no line '%s' in:\n%s", hosts[i], out);
  free(out);
  rc = it_sh(&out, "cd %s && %s/rayc down c.yaml", tmp, bin);
  ck_assert_msg(rc == 1 && strstr(out, "0 of 3 hosts down") && strstr(out, "127.0.0.3: down failed: unreachable"),
                "down: %s", out);
  free(out);
  rc = it_sh(&out, "cd %s && %s/rayc up c.yaml", tmp, bin);
  ck_assert_msg(rc == 1 && strstr(out, "0 of 3 hosts up") && strstr(out, "127.0.0.2: cannot run commands: unreachable"),
                "up: %s", out);
  free(out);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("up_cli");
  TCase *tc = tcase_create("up");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, bad_cluster_files);
  tcase_add_test(tc, unreachable_hosts_reported_per_host);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
