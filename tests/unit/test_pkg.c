/*
 * Unit tests of common/pkg_unpack.c (unpacking with libarchive): archives built here header by header (so each
 * attack is exact), and archives made by the system's tar in its default (GNU)
 * and pax formats.
 */
#include "common/status.h"
#include "common/pkg.h"
#include "common/util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char base[64];  /* this test's scratch directory */
static char dest[128]; /* base/out: where archives are unpacked */

/* ---- an in-memory tar writer ---- */

typedef struct tarbuf {
  uint8_t *p;
  size_t len;
} tarbuf_t;

static void tb_header(tarbuf_t *t, const char *name, char type, unsigned mode, size_t size, const char *link)
{
  t->p = xrealloc(t->p, t->len + 512);
  uint8_t *h = t->p + t->len;
  memset(h, 0, 512);
  snprintf((char *)h, 100, "%s", name);
  snprintf((char *)h + 100, 8, "%07o", mode);
  snprintf((char *)h + 108, 8, "%07o", 0);
  snprintf((char *)h + 116, 8, "%07o", 0);
  char num[32];
  snprintf(num, sizeof(num), "%011llo", (unsigned long long)size);
  memcpy(h + 124, num, 11); /* sizes here fit in 11 octal digits */
  snprintf((char *)h + 136, 12, "%011o", 0);
  h[156] = (uint8_t)type;
  if (link)
    snprintf((char *)h + 157, 100, "%s", link);
  memcpy(h + 257,
         "ustar\0"
         "00",
         8);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++)
    sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
  t->len += 512;
}

static void tb_data(tarbuf_t *t, const void *data, size_t n)
{
  size_t padded = (n + 511) / 512 * 512;
  t->p = xrealloc(t->p, t->len + padded);
  memset(t->p + t->len, 0, padded);
  memcpy(t->p + t->len, data, n);
  t->len += padded;
}

static void tb_file(tarbuf_t *t, const char *name, const char *text)
{
  tb_header(t, name, '0', 0644, strlen(text), NULL);
  tb_data(t, text, strlen(text));
}

static void tb_end(tarbuf_t *t)
{
  t->p = xrealloc(t->p, t->len + 1024);
  memset(t->p + t->len, 0, 1024);
  t->len += 1024;
}

/* Unpacks t (ended here) into dest; returns the code, the message in *err (new,
 * or NULL). */
static int tb_unpack(tarbuf_t *t, const unpack_limits_t *lim, char **err)
{
  tb_end(t);
  int rc = pkg_unpack(t->p, t->len, dest, lim, err);
  free(t->p);
  t->p = NULL;
  t->len = 0;
  return rc;
}

/* Expects the archive to be refused with a message containing want, leaving
 * nothing behind. */
static void expect_refused(tarbuf_t *t, const unpack_limits_t *lim, const char *want)
{
  char *err = NULL;
  int rc = tb_unpack(t, lim, &err);
  ck_assert_msg(rc == RAYC_EINVALID_ARGUMENT, "rc %d (%s), wanted a refusal saying '%s'", rc, err ? err : "", want);
  ck_assert_msg(err && strstr(err, want), "error '%s' does not say '%s'", err ? err : "(none)", want);
  ck_assert_msg(access(dest, F_OK) != 0, "%s was left behind after a refusal", dest);
  free(err);
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return xstrdup(buf);
}

static void setup(void)
{
  snprintf(base, sizeof(base), "/tmp/rayc-test-unpack-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(base));
  snprintf(dest, sizeof(dest), "%s/out", base);
}

static void teardown(void)
{
  char *cmd = xasprintf("rm -rf %s", base);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
}

/* ---- tests ---- */

START_TEST(test_good_archive)
{
  tarbuf_t t = {0};
  tb_header(&t, "./", '5', 0755, 0, NULL);
  tb_file(&t, "./top.txt", "top");
  tb_header(&t, "lib/", '5', 0755, 0, NULL);
  tb_file(&t, "lib/deep/x.so", "elf");
  tb_header(&t, "bin/run", '0', 04755, 2, NULL); /* setuid must not survive */
  tb_data(&t, "#!", 2);
  tb_header(&t, "lib/deep/up", '2', 0777, 0, "../../top.txt"); /* climbs to the root, no further */
  tb_header(&t, "same", '2', 0777, 0, "./lib/deep/x.so");
  tb_header(&t, "empty", '0', 0600, 0, NULL);
  char *err = NULL;
  int rc = tb_unpack(&t, NULL, &err);
  ck_assert_msg(rc == 0, "unpack: %s", err ? err : "");
  char path[256];
  struct stat st;
  ck_assert_int_eq(stat(dest, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0700);
  snprintf(path, sizeof(path), "%s/lib/deep/up", dest);
  char *s = slurp(path);
  ck_assert_str_eq(s, "top");
  free(s);
  snprintf(path, sizeof(path), "%s/same", dest);
  s = slurp(path);
  ck_assert_str_eq(s, "elf");
  free(s);
  snprintf(path, sizeof(path), "%s/bin/run", dest);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0700);
  snprintf(path, sizeof(path), "%s/top.txt", dest);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0600);
  snprintf(path, sizeof(path), "%s/lib/deep", dest);
  ck_assert_int_eq(lstat(path, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_uint_eq(st.st_mode & 0777, 0700);
}
END_TEST

START_TEST(test_path_traversal_refused)
{
  tarbuf_t t = {0};
  tb_file(&t, "ok.txt", "fine");
  tb_file(&t, "../escaped.txt", "evil");
  expect_refused(&t, NULL, "'..'");
  char *outside = xasprintf("%s/escaped.txt", base);
  ck_assert_int_ne(access(outside, F_OK), 0);
  free(outside);

  tb_file(&t, "a/b/../../../escaped.txt", "evil");
  expect_refused(&t, NULL, "'..'");
  tb_file(&t, "/tmp/absolute.txt", "evil");
  expect_refused(&t, NULL, "absolute");
  tb_header(&t, "", '0', 0644, 0, NULL);
  expect_refused(&t, NULL, "empty name");
}
END_TEST

START_TEST(test_links_out_refused)
{
  tarbuf_t t = {0};
  tb_header(&t, "etc", '2', 0777, 0, "/etc");
  expect_refused(&t, NULL, "absolute");
  tb_header(&t, "up", '2', 0777, 0, "..");
  expect_refused(&t, NULL, "outside");
  tb_header(&t, "a/b/up", '2', 0777, 0, "../../../x");
  expect_refused(&t, NULL, "outside");
  tb_header(&t, "sneaky", '2', 0777, 0, "a/../../x"); /* '..' after a name: a link on the way
                             could make it climb */
  expect_refused(&t, NULL, "after a name");
  tb_header(&t, "dot", '2', 0777, 0, ".");
  tb_header(&t, "x", '2', 0777, 0, "dot/../y");
  expect_refused(&t, NULL, "after a name");
  tb_header(&t, "hard", '1', 0644, 0, "/etc/passwd");
  expect_refused(&t, NULL, "hard links");
  tb_header(&t, "fifo", '6', 0644, 0, NULL);
  expect_refused(&t, NULL, "only files");
  tb_header(&t, "dev", '3', 0644, 0, NULL);
  expect_refused(&t, NULL, "only files");
}
END_TEST

START_TEST(test_write_through_link_refused)
{
  /* A link inside the directory, then a file "through" it: never followed. */
  tarbuf_t t = {0};
  tb_header(&t, "sub/", '5', 0755, 0, NULL);
  tb_header(&t, "l", '2', 0777, 0, "sub");
  tb_file(&t, "l/f", "through the link");
  expect_refused(&t, NULL, "through a link");
  /* A link to a file, then the same name as a file: no overwrite through it. */
  tb_file(&t, "target", "t");
  tb_header(&t, "l", '2', 0777, 0, "target");
  tb_file(&t, "l", "replaced");
  expect_refused(&t, NULL, "twice");
  /* A file, then a directory entry under it. */
  tb_file(&t, "f", "x");
  tb_file(&t, "f/g", "y");
  expect_refused(&t, NULL, "through a link or a file");
}
END_TEST

START_TEST(test_duplicates_refused)
{
  tarbuf_t t = {0};
  tb_file(&t, "a.txt", "one");
  tb_file(&t, "./a.txt", "two");
  expect_refused(&t, NULL, "twice");
  tb_file(&t, "d", "file");
  tb_header(&t, "d/", '5', 0755, 0, NULL);
  expect_refused(&t, NULL, "exists");
  /* A directory listed twice is harmless. */
  tb_header(&t, "dir/", '5', 0755, 0, NULL);
  tb_header(&t, "dir", '5', 0755, 0, NULL);
  ck_assert_int_eq(tb_unpack(&t, NULL, NULL), 0);
}
END_TEST

START_TEST(test_limits)
{
  tarbuf_t t = {0};
  char big[3000];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  unpack_limits_t lim = {.max_total = 4000};
  tb_file(&t, "a", big);
  tb_file(&t, "b", big);
  expect_refused(&t, &lim, "add up to more than");
  lim = (unpack_limits_t){.max_total = 1 << 20, .max_file = 1000};
  tb_file(&t, "a", big);
  expect_refused(&t, &lim, "larger than the limit");
  lim = (unpack_limits_t){.max_entries = 3};
  for (int i = 0; i < 4; i++) {
    char name[16];
    snprintf(name, sizeof(name), "f%d", i);
    tb_file(&t, name, "x");
  }
  expect_refused(&t, &lim, "more than 3 entries");
  /* The size field is checked against the data present, not trusted. */
  tb_header(&t, "huge", '0', 0644, (size_t)1 << 30, NULL);
  expect_refused(&t, NULL, "cut short");
  /* A long name longer than the cap. */
  char *name = xmalloc(UNPACK_NAME_MAX + 10);
  memset(name, 'n', UNPACK_NAME_MAX + 9);
  name[UNPACK_NAME_MAX + 9] = '\0';
  tb_header(&t, "././@LongLink", 'L', 0644, strlen(name) + 1, NULL);
  tb_data(&t, name, strlen(name) + 1);
  tb_file(&t, "short", "x");
  expect_refused(&t, NULL, "too long");
  free(name);
}
END_TEST

START_TEST(test_malformed)
{
  tarbuf_t t = {0};
  tb_file(&t, "a", "hello");
  t.p[0] ^= 1;                                                /* the checksum no longer matches */
  expect_refused(&t, NULL, "not a valid tar or zip archive"); /* a bad checksum */
  tb_file(&t, "a", "hello");
  t.p[124] = 'z'; /* a size that is not octal (checksum fixed below) */
  memset(t.p + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++)
    sum += t.p[i];
  snprintf((char *)t.p + 148, 8, "%06o", sum);
  expect_refused(&t, NULL, "not a valid tar or zip archive"); /* a malformed size */
  /* Cut inside a header. */
  tb_file(&t, "a", "hello");
  t.p = xrealloc(t.p, t.len + 100);
  memset(t.p + t.len, 'x', 100);
  t.len += 100;
  char *err = NULL;
  ck_assert_int_eq(pkg_unpack(t.p, t.len, dest, NULL, &err), RAYC_EINVALID_ARGUMENT);
  ck_assert_msg(err && strstr(err, "not a valid tar or zip archive"), "%s", err ? err : "");
  free(err);
  free(t.p);
  t.p = NULL;
  t.len = 0;
  /* Bad pax records. */
  tb_header(&t, "pax", 'x', 0644, 9, NULL);
  tb_data(&t, "99 path=x", 9);
  tb_file(&t, "a", "x");
  expect_refused(&t, NULL, "not a valid tar or zip archive"); /* bad pax records */
  /* Garbage. */
  uint8_t junk[1536];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (uint8_t)(i * 7 + 3);
  err = NULL;
  ck_assert_int_eq(pkg_unpack(junk, sizeof(junk), dest, NULL, &err), RAYC_EINVALID_ARGUMENT);
  free(err);
  ck_assert_int_ne(access(dest, F_OK), 0);
}
END_TEST

START_TEST(test_existing_dir_untouched)
{
  ck_assert_int_eq(mkdir(dest, 0755), 0);
  tarbuf_t t = {0};
  tb_file(&t, "a", "x");
  char *err = NULL;
  ck_assert_int_eq(tb_unpack(&t, NULL, &err), RAYC_EALREADY_EXISTS);
  free(err);
  struct stat st;
  ck_assert_int_eq(stat(dest, &st), 0); /* still there, not removed */
}
END_TEST

/* Archives the system's tar writes (GNU long names, pax headers) unpack to the
 * same tree. */
static void real_tar(const char *format)
{
  char *src = xasprintf("%s/src", base), *tarfile = xasprintf("%s/a.tar", base);
  char long_dir[200];
  memset(long_dir, 'd', 150);
  long_dir[150] = '\0';
  char *cmd = xasprintf("mkdir -p %s/%s/sub && echo hello > %s/%s/sub/f.txt && echo top > %s/top "
                        "&& "
                        "ln -s ../top %s/%s/link && cd %s && tar --format=%s -cf %s .",
                        src, long_dir, src, long_dir, src, src, long_dir, src, format, tarfile);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  char *data = NULL;
  size_t len = 0;
  FILE *f = fopen(tarfile, "r");
  ck_assert_ptr_nonnull(f);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0; len += n) {
    data = xrealloc(data, len + n);
    memcpy(data + len, buf, n);
  }
  fclose(f);
  char *err = NULL;
  int rc = pkg_unpack(data, len, dest, NULL, &err);
  ck_assert_msg(rc == 0, "%s archive: %s", format, err ? err : "");
  char *path = xasprintf("%s/%s/sub/f.txt", dest, long_dir), *s = slurp(path);
  ck_assert_msg(s && strcmp(s, "hello\n") == 0, "%s: %s", path, s ? s : "(missing)");
  free(s);
  free(path);
  path = xasprintf("%s/%s/link", dest, long_dir);
  s = slurp(path);
  ck_assert_msg(s && strcmp(s, "top\n") == 0, "%s: %s", path, s ? s : "(missing)");
  free(s);
  free(path);
  free(data);
  free(src);
  free(tarfile);
}

START_TEST(test_system_tar_gnu)
{
  real_tar("gnu");
}
END_TEST

START_TEST(test_system_tar_pax)
{
  real_tar("pax");
}
END_TEST

/* ---- packing (common/pkg.c) ---- */

static void put(const char *rel, const char *text)
{
  char *path = xasprintf("%s/src/%s", base, rel);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  free(path);
}

static void make_tree(void)
{
  char *cmd = xasprintf("mkdir -p %s/src/sub %s/src/.git %s/src/build && ln -s ../top.txt %s/src/sub/link", base, base,
                        base, base);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  put("top.txt", "top\n");
  put("sub/a.c", "int a;\n");
  put("sub/old.bak", "ignored\n");
  put(".git/config", "secret\n");
  put("build/out.o", "ignored too\n");
  put(".raycignore", "# comment\n*.bak\nbuild/\n");
}

START_TEST(test_pack_deterministic_ignores_and_round_trips)
{
  make_tree();
  char *src = xasprintf("%s/src", base), *err = NULL;
  pkg_t a, b;
  ck_assert_int_eq(pkg_pack_dir(src, 0, &a, &err), 0);
  ck_assert_int_eq(pkg_pack_dir(src, 0, &b, &err), 0);
  ck_assert_str_eq(a.name, b.name); /* the same tree packs to the same bytes */
  ck_assert(pkg_name_valid(a.name));
  ck_assert_uint_eq(a.nfiles, 3); /* .raycignore, sub/a.c, top.txt */
  for (size_t i = 0; i < a.nfiles; i++) {
    ck_assert_msg(!strstr(a.files[i].path, ".git") && !strstr(a.files[i].path, ".bak") &&
                      !strstr(a.files[i].path, "build"),
                  "%s was packed", a.files[i].path);
    if (strcmp(a.files[i].path, "top.txt") == 0) {
      char h[65];
      pkg_sha256_hex("top\n", 4, h);
      ck_assert_str_eq(a.files[i].sha256, h);
    }
  }
  char *path = NULL, *envdir = xasprintf("%s/runtime_env", base);
  ck_assert_int_eq(pkg_install(envdir, a.name, a.data, a.len, &path, &err), 0);
  char *link = xasprintf("%s/sub/link", path), *s = slurp(link);
  ck_assert_msg(s && strcmp(s, "top\n") == 0, "the link inside does not work: %s", s ? s : "(none)");
  free(s);
  char *again = NULL; /* installed once: a second install finds it */
  ck_assert_int_eq(pkg_install(envdir, a.name, a.data, a.len, &again, &err), 0);
  ck_assert_str_eq(again, path);
  free(again);
  again = NULL;
  char wrong[69];
  snprintf(wrong, sizeof(wrong), "pkg_%064d", 0);
  ck_assert_int_eq(pkg_install(envdir, wrong, a.data, a.len, &again, &err), RAYC_EINVALID_ARGUMENT);
  ck_assert_msg(err && strstr(err, "hash to"), "%s", err ? err : "");
  free(err);
  free(again);
  free(link);
  free(path);
  free(envdir);
  pkg_release(&a);
  pkg_release(&b);
  free(src);
}
END_TEST

static void expect_pack_refused(const char *setup, uint64_t max, const char *want)
{
  char *cmd = xasprintf("rm -rf %s/src && mkdir -p %s/src && cd %s/src && %s", base, base, base, setup);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
  char *src = xasprintf("%s/src", base), *err = NULL;
  pkg_t p;
  int rc = pkg_pack_dir(src, max, &p, &err);
  ck_assert_msg(rc < 0 && err && strstr(err, want), "packing (%s): rc %d, error '%s', wanted '%s'", setup, rc,
                err ? err : "", want);
  ck_assert_ptr_null(p.data);
  free(err);
  free(src);
}

START_TEST(test_pack_refusals)
{
  expect_pack_refused("ln -s /etc/passwd pw", 0, "links must stay inside");
  expect_pack_refused("mkdir d && ln -s ../../x d/up", 0, "points outside");
  expect_pack_refused("mkfifo f", 0, "not a file, directory or symbolic link");
  expect_pack_refused("head -c 300 /dev/zero > big", 100, "limit of 100 bytes");
  char *missing = xasprintf("%s/no-such-dir", base), *err = NULL;
  pkg_t p;
  ck_assert_int_eq(pkg_pack_dir(missing, 0, &p, &err), RAYC_EINVALID_ARGUMENT);
  ck_assert_msg(err && strstr(err, "is not a directory"), "%s", err ? err : "");
  free(err);
  free(missing);
}
END_TEST

static Suite *unpack_suite(void)
{
  Suite *s = suite_create("unpack");
  TCase *tc = tcase_create("tar");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_good_archive);
  tcase_add_test(tc, test_path_traversal_refused);
  tcase_add_test(tc, test_links_out_refused);
  tcase_add_test(tc, test_write_through_link_refused);
  tcase_add_test(tc, test_duplicates_refused);
  tcase_add_test(tc, test_limits);
  tcase_add_test(tc, test_malformed);
  tcase_add_test(tc, test_existing_dir_untouched);
  tcase_add_test(tc, test_system_tar_gnu);
  tcase_add_test(tc, test_system_tar_pax);
  tcase_add_test(tc, test_pack_deterministic_ignores_and_round_trips);
  tcase_add_test(tc, test_pack_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(unpack_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
