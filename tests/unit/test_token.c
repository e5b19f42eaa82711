/* Unit tests of common/token.c: making tokens, their files, and the lookup
 * rule. */
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
  snprintf(dir, sizeof(dir), "/tmp/rayc-test-token-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  unsetenv("RAYC_TOKEN");
  unsetenv("RAYC_TOKEN_FILE");
  unsetenv("RAYC_TEMP_DIR");
}

static void teardown(void)
{
  char *cmd = xasprintf("rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(cmd);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(test_generate)
{
  char a[TOKEN_HEX_LEN + 1], b[TOKEN_HEX_LEN + 1];
  ck_assert_int_eq(token_generate(a), 0);
  ck_assert_int_eq(token_generate(b), 0);
  ck_assert_uint_eq(strlen(a), 64);
  ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
  ck_assert_str_ne(a, b);
  ck_assert(token_valid(a));
  ck_assert(!token_valid(""));
  ck_assert(!token_valid(NULL));
  ck_assert(!token_valid("has space"));
  ck_assert(!token_valid("line\nbreak"));
  char *huge = xmalloc(TOKEN_MAX + 2);
  memset(huge, 'a', TOKEN_MAX + 1);
  huge[TOKEN_MAX + 1] = '\0';
  ck_assert(!token_valid(huge));
  huge[TOKEN_MAX] = '\0';
  ck_assert(token_valid(huge));
  free(huge);
}
END_TEST

START_TEST(test_files)
{
  char path[128], *t = NULL, *err = NULL;
  snprintf(path, sizeof(path), "%s/tok", dir);
  ck_assert_int_eq(token_write_file(path, "secret-token"), 0);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0600);
  ck_assert_int_eq(token_read_file(path, &t, NULL), 0);
  ck_assert_str_eq(t, "secret-token");
  token_free(t);
  /* Replacing keeps 0600 even over a file of another mode. */
  ck_assert_int_eq(chmod(path, 0644), 0);
  ck_assert_int_eq(token_write_file(path, "second"), 0);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0600);
  /* White space around it is ignored; an empty file or bad characters are
   * refused. */
  write_text(path, "  \tabc123  \n\nignored\n", 0600);
  ck_assert_int_eq(token_read_file(path, &t, NULL), 0);
  ck_assert_str_eq(t, "abc123");
  token_free(t);
  write_text(path, "\n", 0600);
  ck_assert_int_eq(token_read_file(path, &t, &err), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_null(t);
  ck_assert_ptr_nonnull(strstr(err, "holds no token"));
  ck_assert_ptr_null(strstr(err, "abc123"));
  free(err);
  write_text(path, "two words\n", 0600);
  ck_assert_int_eq(token_read_file(path, &t, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_lt(token_read_file("/nonexistent/tok", &t, &err), 0);
  ck_assert_ptr_nonnull(strstr(err, "/nonexistent/tok"));
  free(err);
  /* A directory is no token file. */
  ck_assert_int_eq(token_read_file(dir, &t, NULL), RAYC_EINVALID_ARGUMENT);
}
END_TEST

/* token_find's answer and where it says the token came from. */
static void expect_found(const char *file, const char *temp, const char *want, const char *want_where)
{
  char *t = NULL, *where = NULL, *err = NULL;
  int rc = token_find(file, temp, &t, &where, &err);
  ck_assert_msg(rc == 0, "token_find: %d %s", rc, err ? err : "");
  ck_assert_str_eq(t, want);
  ck_assert_msg(strstr(where, want_where), "where '%s' lacks '%s'", where, want_where);
  token_free(t);
  free(where);
  free(err);
}

START_TEST(test_lookup_order)
{
  char temp[128], sess[160], link[160], path[200], explicit_file[160], env_file[160];
  snprintf(temp, sizeof(temp), "%s/temp", dir);
  snprintf(sess, sizeof(sess), "%s/session_x", temp);
  snprintf(link, sizeof(link), "%s/session_latest", temp);
  ck_assert_int_eq(mkdir_p(sess, 0700), 0);
  ck_assert_int_eq(symlink("session_x", link), 0);
  snprintf(explicit_file, sizeof(explicit_file), "%s/explicit", dir);
  snprintf(env_file, sizeof(env_file), "%s/envfile", dir);
  ck_assert_int_eq(token_write_file(explicit_file, "from-flag"), 0);
  ck_assert_int_eq(token_write_file(env_file, "from-env-file"), 0);

  /* Nothing anywhere: not found, and the message names what was tried. */
  char *t = NULL, *where = NULL, *err = NULL;
  ck_assert_int_eq(token_find(NULL, temp, &t, &where, &err), RAYC_ENOT_FOUND);
  ck_assert_ptr_null(t);
  ck_assert_ptr_nonnull(strstr(err, "cluster_token"));
  free(err);
  /* 4: <temp>/cluster_token */
  snprintf(path, sizeof(path), "%s/cluster_token", temp);
  ck_assert_int_eq(token_write_file(path, "from-temp-dir"), 0);
  expect_found(NULL, temp, "from-temp-dir", "temp/cluster_token");
  /* RAYC_TEMP_DIR when the caller gives none */
  setenv("RAYC_TEMP_DIR", temp, 1);
  expect_found(NULL, NULL, "from-temp-dir", "temp/cluster_token");
  /* 3: the latest session's copy wins over it */
  snprintf(path, sizeof(path), "%s/cluster_token", sess);
  ck_assert_int_eq(token_write_file(path, "from-session"), 0);
  expect_found(NULL, temp, "from-session", "session_latest/cluster_token");
  /* 2: RAYC_TOKEN wins over the files */
  setenv("RAYC_TOKEN", "from-env", 1);
  expect_found(NULL, temp, "from-env", "RAYC_TOKEN");
  /* 1: RAYC_TOKEN_FILE, and an explicit file over it */
  setenv("RAYC_TOKEN_FILE", env_file, 1);
  expect_found(NULL, temp, "from-env-file", "envfile");
  expect_found(explicit_file, temp, "from-flag", "explicit");
  /* A named file that is missing is an error, never skipped. */
  ck_assert_int_lt(token_find("/nonexistent/token", temp, &t, &where, &err), 0);
  ck_assert_ptr_null(t);
  free(err);
  unsetenv("RAYC_TOKEN_FILE");
  setenv("RAYC_TOKEN", "bad token", 1);
  ck_assert_int_eq(token_find(NULL, temp, &t, NULL, &err), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_null(strstr(err, "bad token")); /* never echoed */
  free(err);
}
END_TEST

static Suite *token_suite(void)
{
  Suite *s = suite_create("token");
  TCase *tc = tcase_create("token");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_generate);
  tcase_add_test(tc, test_files);
  tcase_add_test(tc, test_lookup_order);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(token_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
