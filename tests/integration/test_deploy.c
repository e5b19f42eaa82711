/*
 * Installing and packaging (issue 13), checked the way an operator or a packager would:
 *   - deploy/rayc.yaml is what deploy/gen-config.sh makes from the daemons' settings tables, and
 *     every daemon loads it; a mistake in a daemon's section is refused and named;
 *   - `systemd-analyze verify` passes on every installed unit with nothing on stderr, and the
 *     units pass the daemons nothing but --config;
 *   - deploy/install.sh (make install) with DESTDIR and PREFIX lays out binaries, librayc with its
 *     soname, rayc.h, rayc.pc (a program builds from it and runs against the installed library),
 *     units, the config and man pages;
 *   - deploy/make-deb.sh (make deb) makes a package with the conffile and units that lintian finds
 *     no error in.
 * Each case works in its own temp dir; nothing is installed on this machine.
 */
#include "itest.h"
#include "itest_sh.h"

static char src[1100]; /* the source tree (RAYC_BUILD/../..) */

static void setup(void)
{
  it_find_build();
  snprintf(src, sizeof(src), "%s/../..", it_build);
}

/* A new temp dir (free()). */
static char *tmpdir(void)
{
  char *d = xstrdup("/tmp/rayc-deploy.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d));
  return d;
}

static void rmdir_all(char *d)
{
  char *cmd = xasprintf("rm -rf %s", d);
  it_run(cmd);
  free(cmd);
  free(d);
}

START_TEST(test_config_generated)
{
  setup();
  char *out = NULL;
  int rc = it_sh(&out, "%s/deploy/gen-config.sh %s/bin | diff -u %s/deploy/rayc.yaml -", src, it_build, src);
  ck_assert_msg(rc == 0, "deploy/rayc.yaml is not what the settings tables make (run `make config`):\n%s", out);
  free(out);
  /* Every flag of every daemon (as its --help lists them, less --config) is a documented key. */
  rc = it_sh(&out, "grep -c '^  #[a-z-]*: ' %s/deploy/rayc.yaml", src);
  ck_assert_int_eq(rc, 0);
  int keys = atoi(out);
  free(out);
  rc = it_sh(
      &out,
      "for d in gcs store raylet dashboard; do %s/bin/rayc-$d --help | grep '^  --[a-z]' | grep -vc '^  --config'; "
      "done | awk '{s += $1} END {print s}'",
      it_build);
  ck_assert_msg(rc == 0 && keys == atoi(out), "%d keys in deploy/rayc.yaml, %d flags in --help", keys, atoi(out));
  free(out);
  rc = it_sh(&out, "grep -A1 'spill-threshold' %s/deploy/rayc.yaml", src);
  ck_assert_msg(strstr(out, "#spill-threshold: 0.8"), "spill-threshold's default: %s", out);
  free(out);
}
END_TEST

START_TEST(test_config_loads)
{
  setup();
  static const char *daemons[] = {"rayc-gcs", "rayc-store", "rayc-raylet", "rayc-dashboard"};
  char *out = NULL;
  for (size_t i = 0; i < ARRAY_LEN(daemons); i++) {
    int rc = it_sh(&out, "env -i %s/bin/%s --config %s/deploy/rayc.yaml --print-config", it_build, daemons[i], src);
    ck_assert_msg(rc == 0, "%s does not load deploy/rayc.yaml: %s", daemons[i], out);
    free(out);
  }
  /* A typo in a daemon's own section is an error naming the file and key, not silently ignored. */
  char *d = tmpdir();
  int rc = it_sh(&out,
                 "sed 's/^raylet:$/raylet:\\n  num-cpu: 4/' %s/deploy/rayc.yaml > %s/bad.yaml && "
                 "env -i %s/bin/rayc-raylet --config %s/bad.yaml --print-config",
                 src, d, it_build, d);
  ck_assert_msg(rc != 0 && strstr(out, "num-cpu"), "a bad key was accepted (rc %d): %s", rc, out);
  free(out);
  rmdir_all(d);
}
END_TEST

START_TEST(test_units_verify)
{
  setup();
  char *d = tmpdir(), *out = NULL;
  int rc = it_sh(&out, "PREFIX=%s SYSCONFDIR=%s/etc %s/deploy/install.sh %s", d, d, src, it_build);
  ck_assert_msg(rc == 0, "install: %s", out);
  free(out);
  static const char *units[] = {"rayc-gcs.service",       "rayc-store.service", "rayc-raylet.service",
                                "rayc-dashboard.service", "rayc-head.target",   "rayc-node.target"};
  for (size_t i = 0; i < ARRAY_LEN(units); i++) {
    /* stderr only: any warning fails */
    rc = it_sh(&out, "MANPATH=%s/share/man systemd-analyze verify %s/lib/systemd/system/%s 2>&1 >/dev/null", d, d,
               units[i]);
    ck_assert_msg(rc == 0 && out[0] == '\0', "systemd-analyze verify %s (rc %d): %s", units[i], rc, out);
    free(out);
  }
  /* The daemons get nothing but the one configuration file. */
  rc = it_sh(&out, "grep -h '^ExecStart=' %s/lib/systemd/system/rayc-*.service", d);
  ck_assert_int_eq(rc, 0);
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    char *cfg = xasprintf(" --config %s/etc/rayc/rayc.yaml", d);
    const char *at = strstr(line, cfg);
    ck_assert_msg(at && strcmp(at, cfg) == 0, "ExecStart does not end with --config: %s", line);
    ck_assert_msg(strchr(line, ' ') == at, "ExecStart passes more than --config: %s", line);
    free(cfg);
  }
  free(out);
  rmdir_all(d);
}
END_TEST

START_TEST(test_install_layout)
{
  setup();
  char *d = tmpdir(), *out = NULL;
  int rc = it_sh(&out, "DESTDIR=%s/root PREFIX=/usr %s/deploy/install.sh %s", d, src, it_build);
  ck_assert_msg(rc == 0, "install: %s", out);
  free(out);
  static const char *files[] = {"usr/bin/rayc",
                                "usr/bin/rayc-gcs",
                                "usr/bin/rayc-store",
                                "usr/bin/rayc-raylet",
                                "usr/bin/rayc-worker",
                                "usr/lib/librayc.so.0",
                                "usr/lib/librayc.so",
                                "usr/include/rayc.h",
                                "usr/lib/pkgconfig/rayc.pc",
                                "etc/rayc/rayc.yaml",
                                "usr/lib/systemd/system/rayc-head.target",
                                "usr/lib/sysusers.d/rayc.conf",
                                "usr/share/man/man1/rayc.1",
                                "usr/share/man/man8/rayc-raylet.8"};
  for (size_t i = 0; i < ARRAY_LEN(files); i++) {
    char *p = xasprintf("%s/root/%s", d, files[i]);
    ck_assert_msg(access(p, R_OK) == 0, "%s was not installed", files[i]);
    free(p);
  }
  rc = it_sh(&out, "objdump -p %s/root/usr/lib/librayc.so | awk '$1 == \"SONAME\" {print $2}'", d);
  ck_assert_msg(rc == 0 && strcmp(out, "librayc.so.0\n") == 0, "soname: %s", out);
  free(out);
  /* A program built with the installed pkg-config file runs against the installed library (built
   * with the sanitizers too when this tree's librayc is: make FLAVOR=asan). */
  rc = it_sh(
      &out,
      "cd %s && printf '#include <rayc.h>\\nint main(void){rayc_task_opts o; rayc_task_opts_init(&o);"
      " return o.num_returns == 1 && o.max_retries == 3 ? 0 : 1;}\\n' > p.c && "
      "cc $(objdump -p root/usr/lib/librayc.so | grep -q 'NEEDED.*libasan' && echo -fsanitize=address,undefined) "
      "-o p p.c $(PKG_CONFIG_PATH=%s/root/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=%s/root "
      "pkg-config --cflags --libs rayc) && LD_LIBRARY_PATH=%s/root/usr/lib ./p && "
      "LD_LIBRARY_PATH=%s/root/usr/lib ldd ./p | grep librayc",
      d, d, d, d, d);
  ck_assert_msg(rc == 0 && strstr(out, "/root/usr/lib/librayc.so.0"), "pkg-config build (rc %d): %s", rc, out);
  free(out);
  /* Man pages render, and carry the program's own flags. */
  rc = it_sh(&out, "MANWIDTH=100 man -l %s/root/usr/share/man/man8/rayc-raylet.8 | grep -c -e '--gcs-address'", d);
  ck_assert_msg(rc == 0 && atoi(out) >= 1, "rayc-raylet(8): %s", out);
  free(out);
  /* An operator's edited config survives a reinstall. */
  rc = it_sh(&out,
             "echo 'num-cpus: 3' >> %s/root/etc/rayc/rayc.yaml && DESTDIR=%s/root PREFIX=/usr "
             "%s/deploy/install.sh %s && tail -1 %s/root/etc/rayc/rayc.yaml && ls %s/root/etc/rayc",
             d, d, src, it_build, d, d);
  ck_assert_msg(rc == 0 && strstr(out, "num-cpus: 3") && strstr(out, "rayc.yaml.dist"), "reinstall: %s", out);
  free(out);
  rmdir_all(d);
}
END_TEST

START_TEST(test_deb)
{
  setup();
  char *d = tmpdir(), *out = NULL;
  int rc = it_sh(&out, "%s/deploy/make-deb.sh %s %s | tail -1", src, it_build, d);
  ck_assert_msg(rc == 0 && strstr(out, ".deb"), "make-deb: %s", out);
  char *deb = xstrdup(strtok(out, "\n"));
  free(out);
  rc = it_sh(&out, "dpkg-deb -c %s; dpkg-deb -I %s conffiles", deb, deb);
  ck_assert_int_eq(rc, 0);
  static const char *want[] = {"./usr/bin/rayc-raylet",
                               "./usr/lib/librayc.so.0",
                               "./lib/systemd/system/rayc-node.target",
                               "./etc/rayc/rayc.yaml",
                               "./usr/share/man/man8/rayc-gcs.8.gz",
                               "\n/etc/rayc/rayc.yaml"};
  for (size_t i = 0; i < ARRAY_LEN(want); i++)
    ck_assert_msg(strstr(out, want[i]), "the package lacks %s:\n%s", want[i], out);
  free(out);
  rc = it_sh(&out, "dpkg-deb -f %s Depends", deb);
  ck_assert_msg(strstr(out, "libgrpc") && strstr(out, "adduser"), "Depends: %s", out);
  free(out);
  /* lintian: no error (warnings are listed in the output for the log) */
  rc = it_sh(&out, "lintian --allow-root %s", deb);
  printf("lintian:\n%s", out);
  ck_assert_msg(!strstr(out, "E: "), "lintian reports errors:\n%s", out);
  free(out);
  free(deb);
  rmdir_all(d);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("deploy");
  TCase *tc = tcase_create("deploy");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_config_generated);
  tcase_add_test(tc, test_config_loads);
  tcase_add_test(tc, test_units_verify);
  tcase_add_test(tc, test_install_layout);
  tcase_add_test(tc, test_deb);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
