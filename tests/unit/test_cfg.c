/* Unit tests for common/cfg.c: precedence (flag > env > YAML > default) for every type, value
 * validation and its messages, argv handling (--, operands, bare bools, --help), YAML forms. */
#include "common/cfg.h"
#include "common/status.h"
#include "common/util.h"

#include <check.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct conf {
  int num_cpus;
  int64_t mem;
  double ratio;
  int block;
  char *node_name;
  char *resources;
} conf_t;

static const cfg_entry_t table[] = {
    {"num-cpus", CFG_INT, offsetof(conf_t, num_cpus), "4", "number of CPUs"},
    {"object-store-memory", CFG_INT64, offsetof(conf_t, mem), "64M", "store size in bytes"},
    {"ratio", CFG_DOUBLE, offsetof(conf_t, ratio), "0.75", "a fraction"},
    {"block", CFG_BOOL, offsetof(conf_t, block), NULL, "stay in the foreground"},
    {"node-name", CFG_STRING, offsetof(conf_t, node_name), "default-node", "this node's name"},
    {"resources", CFG_STRING, offsetof(conf_t, resources), NULL, "custom resources as JSON"},
};
#define N ARRAY_LEN(table)

static const char *env_vars[] = {"RAYC_NUM_CPUS",  "RAYC_OBJECT_STORE_MEMORY", "RAYC_RATIO", "RAYC_BLOCK",
                                 "RAYC_NODE_NAME", "RAYC_RESOURCES",           "RAYC_CONFIG"};
static char yaml_path[64];

static void clear_env(void)
{
  for (size_t i = 0; i < ARRAY_LEN(env_vars); i++)
    unsetenv(env_vars[i]);
}

static void teardown(void)
{
  clear_env();
  if (yaml_path[0])
    unlink(yaml_path);
  yaml_path[0] = '\0';
}

/* Writes text to a new temp file; returns its path (static). */
static const char *write_yaml(const char *text)
{
  if (yaml_path[0])
    unlink(yaml_path);
  strcpy(yaml_path, "/tmp/rayc-test-cfg-XXXXXX.yaml");
  int fd = mkstemps(yaml_path, 5);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return yaml_path;
}

/* Runs cfg_load on a NULL-terminated argument list (argv[0] is added). */
static int load(conf_t *c, char **err, int *next, ...)
{
  static char prog[] = "prog";
  char *argv[32] = {prog};
  int argc = 1;
  va_list ap;
  va_start(ap, next);
  for (char *a; (a = va_arg(ap, char *));)
    argv[argc++] = a;
  va_end(ap);
  *err = NULL;
  return cfg_load(table, N, c, argc, argv, next, err);
}

/* Expects an error whose message is exactly want; frees it. */
static void expect_err(int rc, char *err, const char *want)
{
  ck_assert_int_eq(rc, RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(err);
  ck_assert_str_eq(err, want);
  free(err);
}

/* Runs call (which sets err) first, then checks the error. */
#define EXPECT_ERR(call, want)    \
  do {                            \
    int rc_ = (call);             \
    expect_err(rc_, err, (want)); \
  } while (0)

static const char full_yaml[] = "num_cpus: 2\n"
                                "object-store-memory: 1G\n"
                                "ratio: 0.5\n"
                                "block: yes\n"
                                "node_name: from-yaml\n";

START_TEST(test_defaults)
{
  conf_t c = {0};
  char *err;
  int next;
  ck_assert_int_eq(load(&c, &err, &next, NULL), 0);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(next, 1);
  ck_assert_int_eq(c.num_cpus, 4);
  ck_assert_int_eq(c.mem, 64 << 20);
  ck_assert_double_eq(c.ratio, 0.75);
  ck_assert_int_eq(c.block, 0);
  ck_assert_str_eq(c.node_name, "default-node");
  ck_assert_ptr_null(c.resources);
  cfg_release(table, N, &c);
  ck_assert_ptr_null(c.node_name);
}
END_TEST

START_TEST(test_precedence)
{
  conf_t c = {0};
  char *err;
  const char *y = write_yaml(full_yaml);
  /* YAML over defaults. */
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 2);
  ck_assert_int_eq(c.mem, 1 << 30);
  ck_assert_double_eq(c.ratio, 0.5);
  ck_assert_int_eq(c.block, 1);
  ck_assert_str_eq(c.node_name, "from-yaml");
  /* Environment over YAML (num-cpus left to YAML). */
  setenv("RAYC_OBJECT_STORE_MEMORY", "2M", 1);
  setenv("RAYC_RATIO", "0.25", 1);
  setenv("RAYC_BLOCK", "false", 1);
  setenv("RAYC_NODE_NAME", "from-env", 1);
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 2);
  ck_assert_int_eq(c.mem, 2 << 20);
  ck_assert_double_eq(c.ratio, 0.25);
  ck_assert_int_eq(c.block, 0);
  ck_assert_str_eq(c.node_name, "from-env");
  /* Flags over everything (object-store-memory left to the environment). */
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, "--num-cpus", "8", "--ratio=0.125", "--block", "--node-name",
                        "from-flag", NULL),
                   0);
  ck_assert_int_eq(c.num_cpus, 8);
  ck_assert_int_eq(c.mem, 2 << 20);
  ck_assert_double_eq(c.ratio, 0.125);
  ck_assert_int_eq(c.block, 1);
  ck_assert_str_eq(c.node_name, "from-flag");
  /* Without the file, the defaults come back under the environment. */
  clear_env();
  ck_assert_int_eq(load(&c, &err, NULL, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 4);
  ck_assert_str_eq(c.node_name, "default-node");
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_config_from_env)
{
  conf_t c = {0};
  char *err;
  setenv("RAYC_CONFIG", write_yaml("num-cpus: 3\n"), 1);
  ck_assert_int_eq(load(&c, &err, NULL, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 3);
  /* --config wins over RAYC_CONFIG. */
  setenv("RAYC_CONFIG", "/nonexistent/rayc.yaml", 1);
  ck_assert_int_eq(load(&c, &err, NULL, "--config=", NULL), 0); /* empty: no file */
  ck_assert_int_eq(c.num_cpus, 4);
  int rc = load(&c, &err, NULL, NULL);
  expect_err(rc, err, "cannot read config file /nonexistent/rayc.yaml: No such file or directory");
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_unknown_flags)
{
  conf_t c = {0};
  char *err;
  EXPECT_ERR(load(&c, &err, NULL, "--foo", NULL), "unknown flag --foo");
  EXPECT_ERR(load(&c, &err, NULL, "--num-cpus", "2", "--foo=1", NULL), "unknown flag --foo");
  EXPECT_ERR(load(&c, &err, NULL, "-x", NULL), "unknown flag -x");
  EXPECT_ERR(load(&c, &err, NULL, "--no-ratio", NULL), "unknown flag --no-ratio");
  EXPECT_ERR(load(&c, &err, NULL, "--num-cpus", NULL), "missing value for --num-cpus");
  EXPECT_ERR(load(&c, &err, NULL, "--config", NULL), "missing value for --config");
  /* Underscores are accepted in flags too. */
  ck_assert_int_eq(load(&c, &err, NULL, "--num_cpus", "5", NULL), 0);
  ck_assert_int_eq(c.num_cpus, 5);
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_bad_values)
{
  conf_t c = {0};
  char *err;
  EXPECT_ERR(load(&c, &err, NULL, "--num-cpus", "abc", NULL),
             "invalid value 'abc' for --num-cpus: expected an integer");
  static const char *bad_ints[] = {"4x", "", " 4", "99999999999", "-2147483649", "1.5", "0x10", "4K"};
  for (size_t i = 0; i < ARRAY_LEN(bad_ints); i++) {
    ck_assert_int_eq(load(&c, &err, NULL, "--num-cpus", bad_ints[i], NULL), RAYC_EINVALID_ARGUMENT);
    free(err);
  }
  ck_assert_int_eq(load(&c, &err, NULL, "--num-cpus=-2147483648", NULL), 0);
  ck_assert_int_eq(c.num_cpus, -2147483647 - 1);
  static const char *bad_sizes[] = {"1Q", "1KX", "8796093022208T", "9223372036854775808", "M"};
  for (size_t i = 0; i < ARRAY_LEN(bad_sizes); i++) {
    ck_assert_int_eq(load(&c, &err, NULL, "--object-store-memory", bad_sizes[i], NULL), RAYC_EINVALID_ARGUMENT);
    free(err);
  }
  static const char *bad_doubles[] = {"1.5x", "nan", "inf", "1e999", "", "--"};
  for (size_t i = 0; i < ARRAY_LEN(bad_doubles); i++) {
    ck_assert_int_eq(load(&c, &err, NULL, "--ratio", bad_doubles[i], NULL), RAYC_EINVALID_ARGUMENT);
    free(err);
  }
  EXPECT_ERR(load(&c, &err, NULL, "--block=maybe", NULL), "invalid value 'maybe' for --block: expected true or false");
  setenv("RAYC_NUM_CPUS", "many", 1);
  EXPECT_ERR(load(&c, &err, NULL, NULL), "invalid value 'many' for RAYC_NUM_CPUS: expected an integer");
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_help)
{
  conf_t c = {0};
  char *err;
  ck_assert_int_eq(load(&c, &err, NULL, "--help", NULL), CFG_HELP);
  ck_assert_int_eq(load(&c, &err, NULL, "--num-cpus", "2", "-h", NULL), CFG_HELP);
  ck_assert_ptr_null(c.node_name); /* untouched on help */
  int next;
  /* After "--" or an operand, --help belongs to someone else. */
  ck_assert_int_eq(load(&c, &err, &next, "--", "--help", NULL), 0);
  ck_assert_int_eq(next, 2);
  ck_assert_int_eq(load(&c, &err, &next, "run", "-h", NULL), 0);
  ck_assert_int_eq(next, 1);
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_argv_end)
{
  conf_t c = {0};
  char *err;
  int next;
  ck_assert_int_eq(load(&c, &err, &next, "--num-cpus", "3", "--", "--block", "x", NULL), 0);
  ck_assert_int_eq(next, 4);
  ck_assert_int_eq(c.num_cpus, 3);
  ck_assert_int_eq(c.block, 0);
  ck_assert_int_eq(load(&c, &err, &next, "--num-cpus", "3", "submit", "--block", NULL), 0);
  ck_assert_int_eq(next, 3);
  ck_assert_int_eq(c.block, 0);
  ck_assert_int_eq(load(&c, &err, &next, "--num-cpus", "3", NULL), 0);
  ck_assert_int_eq(next, 3);
  ck_assert_int_eq(load(&c, &err, &next, "--", NULL), 0);
  ck_assert_int_eq(next, 2);
  ck_assert_int_eq(load(&c, &err, &next, "-", NULL), 0); /* "-" is an operand */
  ck_assert_int_eq(next, 1);
  /* A value may start with '-'. */
  ck_assert_int_eq(load(&c, &err, &next, "--num-cpus", "-1", NULL), 0);
  ck_assert_int_eq(c.num_cpus, -1);
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_bool_forms)
{
  conf_t c = {0};
  char *err;
  int next;
  ck_assert_int_eq(load(&c, &err, &next, "--block", "x", NULL), 0);
  ck_assert_int_eq(c.block, 1);
  ck_assert_int_eq(next, 2); /* a bare bool never takes the next argument */
  ck_assert_int_eq(load(&c, &err, NULL, "--block", "--no-block", NULL), 0);
  ck_assert_int_eq(c.block, 0);
  static const char *yes[] = {"true", "YES", "1", "on", "True"}, *no[] = {"false", "no", "0", "OFF"};
  for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
    char *arg = xasprintf("--block=%s", yes[i]);
    ck_assert_int_eq(load(&c, &err, NULL, arg, NULL), 0);
    ck_assert_int_eq(c.block, 1);
    free(arg);
  }
  for (size_t i = 0; i < ARRAY_LEN(no); i++) {
    setenv("RAYC_BLOCK", no[i], 1);
    ck_assert_int_eq(load(&c, &err, NULL, NULL), 0);
    ck_assert_int_eq(c.block, 0);
  }
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_size_suffixes)
{
  static const struct {
    const char *text;
    int64_t want;
  } cases[] = {
      {"100", 100},
      {"1K", 1024},
      {"2M", 2 << 20},
      {"3G", 3LL << 30},
      {"1T", 1LL << 40},
      {"5KiB", 5 << 10},
      {"7kb", 7 << 10},
      {"2g", 2LL << 30},
      {"-1K", -1024},
      {"8388607T", 8388607LL << 40},
      {"9223372036854775807", INT64_MAX},
  };
  conf_t c = {0};
  char *err;
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    ck_assert_int_eq(load(&c, &err, NULL, "--object-store-memory", cases[i].text, NULL), 0);
    ck_assert_msg(c.mem == cases[i].want, "%s gave %lld", cases[i].text, (long long)c.mem);
  }
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_yaml_errors)
{
  conf_t c = {0};
  char *err;
  const char *y = write_yaml("num_cpus: [1, 2\n");
  char *want;
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err, "invalid YAML"));
  free(err);

  y = write_yaml("- a\n- b\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err, "mapping"));
  free(err);

  y = write_yaml("num_cpus: {a: 1}\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(err, "num_cpus"));
  free(err);

  y = write_yaml("num_cpus: lots\n");
  want = xasprintf("invalid value 'lots' for key 'num_cpus' in %s: expected an integer", y);
  EXPECT_ERR(load(&c, &err, NULL, "--config", y, NULL), want);
  free(want);

  y = write_yaml("config: other.yaml\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), RAYC_EINVALID_ARGUMENT);
  free(err);

  EXPECT_ERR(load(&c, &err, NULL, "--config", "/nonexistent/x.yaml", NULL),
             "cannot read config file /nonexistent/x.yaml: No such file or directory");
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_yaml_forms)
{
  conf_t c = {0};
  char *err;
  /* Flow mapping for a JSON string setting; null leaves the default; quoted strings stay text. */
  const char *y = write_yaml("# comment\n"
                             "resources: {GPU_A: 2, fpga: 0.5, name: \"x \\\"y\\\"\", on: true, n: ~}\n"
                             "node_name:\n"
                             "ratio: '0.5'\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_str_eq(c.resources, "{\"GPU_A\": 2, \"fpga\": 0.5, \"name\": \"x \\\"y\\\"\", \"on\": true, "
                                "\"n\": null}");
  ck_assert_str_eq(c.node_name, "default-node");
  ck_assert_double_eq(c.ratio, 0.5);
  /* Block mapping and a list render as JSON too; "2" quoted stays a string. */
  y = write_yaml("resources:\n  CPU: 1\n  tags: [a, '2']\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_str_eq(c.resources, "{\"CPU\": 1, \"tags\": [\"a\", \"2\"]}");
  /* Top-level keys of other programs are ignored. */
  y = write_yaml("foo: 1\nnum_cpus: 7\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 7);
  /* An empty file sets nothing. */
  y = write_yaml("");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_ptr_null(c.resources);
  cfg_release(table, N, &c);
}
END_TEST

/* Loading twice into one struct frees the replaced strings (ASan checks the leak). */
START_TEST(test_reload_no_leak)
{
  conf_t c = {0};
  char *err;
  setenv("RAYC_RESOURCES", "{\"a\": 1}", 1);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(load(&c, &err, NULL, "--node-name", "n1", NULL), 0);
    ck_assert_str_eq(c.resources, "{\"a\": 1}");
  }
  /* An error part-way keeps valid strings for cfg_release. */
  ck_assert_int_eq(load(&c, &err, NULL, "--node-name", "n2", "--num-cpus", "x", NULL), RAYC_EINVALID_ARGUMENT);
  free(err);
  cfg_release(table, N, &c);
  ck_assert_ptr_null(c.node_name);
  ck_assert_ptr_null(c.resources);
  cfg_release(table, N, NULL);
}
END_TEST

/* One file for every program: shared top-level keys (unknown ones ignored), strict sections. */
START_TEST(test_yaml_sections)
{
  conf_t c = {0};
  char *err;
  const char *y = write_yaml("num_cpus: 2\n"
                             "port: 6380\n" /* another program's setting */
                             "raylet:\n  num_cpus: 3\n  ratio: 0.25\n"
                             "gcs: {health_check_period_ms: 5}\n"
                             "store:\n"
                             "node_name: top\n");
  /* No program named: the top level only; unknown keys and every section are skipped. */
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 2);
  ck_assert_double_eq(c.ratio, 0.75);
  ck_assert_str_eq(c.node_name, "top");
  /* The raylet's section overrides the top level, wherever it sits in the file. */
  cfg_set_program("raylet");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 3);
  ck_assert_double_eq(c.ratio, 0.25);
  ck_assert_str_eq(c.node_name, "top");
  /* Flags and the environment still beat the section. */
  setenv("RAYC_NUM_CPUS", "5", 1);
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, "--ratio", "1", NULL), 0);
  ck_assert_int_eq(c.num_cpus, 5);
  ck_assert_double_eq(c.ratio, 1);
  unsetenv("RAYC_NUM_CPUS");
  /* The store's section is empty (null): fine. The gcs section is strict only for the gcs. */
  cfg_set_program("store");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 2);
  cfg_set_program("gcs");
  char *want = xasprintf("%s: unknown key 'health_check_period_ms' in section 'gcs'", y);
  EXPECT_ERR(load(&c, &err, NULL, "--config", y, NULL), want);
  free(want);
  /* cfg_load_section names the section explicitly. */
  char prog[] = "prog", flag[] = "--config";
  char *argv[] = {prog, flag, (char *)y};
  ck_assert_int_eq(cfg_load_section(table, N, &c, "raylet", 3, argv, NULL, &err), 0);
  ck_assert_int_eq(c.num_cpus, 3);
  cfg_set_program(NULL);
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_yaml_section_errors)
{
  conf_t c = {0};
  char *err;
  cfg_set_program("raylet");
  const char *y = write_yaml("raylet:\n  num_cpus: lots\n");
  char *want = xasprintf("invalid value 'lots' for key 'num_cpus' in section 'raylet' of %s: "
                         "expected an integer",
                         y);
  EXPECT_ERR(load(&c, &err, NULL, "--config", y, NULL), want);
  free(want);
  y = write_yaml("raylet: 4\n");
  want = xasprintf("%s: section 'raylet' must be a mapping of settings (key: value)", y);
  EXPECT_ERR(load(&c, &err, NULL, "--config", y, NULL), want);
  free(want);
  y = write_yaml("raylet:\n  config: x.yaml\n");
  want = xasprintf("%s: 'config' cannot be set inside a config file", y);
  EXPECT_ERR(load(&c, &err, NULL, "--config", y, NULL), want);
  free(want);
  /* A known top-level key is still validated; another program's scalar "section" is a key. */
  y = write_yaml("ratio: half\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), RAYC_EINVALID_ARGUMENT);
  free(err);
  y = write_yaml("gcs: 1\nworker: [a]\nnum_cpus: 6\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_int_eq(c.num_cpus, 6);
  /* A mapping-valued string setting inside a section still renders as JSON. */
  y = write_yaml("raylet:\n  resources: {GPU_A: 2}\n");
  ck_assert_int_eq(load(&c, &err, NULL, "--config", y, NULL), 0);
  ck_assert_str_eq(c.resources, "{\"GPU_A\": 2}");
  cfg_set_program(NULL);
  cfg_release(table, N, &c);
}
END_TEST

START_TEST(test_config_entry)
{
  typedef struct {
    char *config;
    int port;
  } conf2_t;
  static const cfg_entry_t t2[] = {
      {"config", CFG_STRING, offsetof(conf2_t, config), NULL, "settings file"},
      {"port", CFG_INT, offsetof(conf2_t, port), "6380", "port"},
  };
  conf2_t c = {0};
  char *err;
  const char *y = write_yaml("port: 7000\n");
  char prog[] = "prog", flag[] = "--config";
  char *argv[] = {prog, flag, (char *)y};
  ck_assert_int_eq(cfg_load(t2, 2, &c, 3, argv, NULL, &err), 0);
  ck_assert_str_eq(c.config, y);
  ck_assert_int_eq(c.port, 7000);
  cfg_release(t2, 2, &c);
}
END_TEST

START_TEST(test_usage_and_print)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cfg_usage(f, "rayc-test", "Does test things.", table, N);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "usage: rayc-test [flags]"));
  ck_assert_ptr_nonnull(strstr(text, "Does test things."));
  ck_assert_ptr_nonnull(strstr(text, "--num-cpus INT"));
  ck_assert_ptr_nonnull(strstr(text, "number of CPUs (default: 4; RAYC_NUM_CPUS)"));
  ck_assert_ptr_nonnull(strstr(text, "--object-store-memory SIZE"));
  ck_assert_ptr_nonnull(strstr(text, "--block[=BOOL]"));
  ck_assert_ptr_nonnull(strstr(text, "--config FILE"));
  ck_assert_ptr_nonnull(strstr(text, "--help"));
  free(text);
  cfg_set_program("raylet");
  f = open_memstream(&text, &len);
  cfg_usage(f, "rayc-test", NULL, table, N);
  fclose(f);
  cfg_set_program(NULL);
  ck_assert_ptr_nonnull(strstr(text, "section 'raylet:'"));
  free(text);

  conf_t c = {0};
  char *err;
  ck_assert_int_eq(load(&c, &err, NULL, "--node-name", "a\"b", NULL), 0);
  f = open_memstream(&text, &len);
  cfg_print(f, table, N, &c);
  fclose(f);
  ck_assert_str_eq(text, "num-cpus: 4\nobject-store-memory: 67108864\nratio: 0.75\nblock: false\n"
                         "node-name: \"a\\\"b\"\nresources: ~\n");
  free(text);
  cfg_release(table, N, &c);
}
END_TEST

static Suite *cfg_suite(void)
{
  Suite *s = suite_create("cfg");
  TCase *tc = tcase_create("load");
  tcase_add_checked_fixture(tc, clear_env, teardown);
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_precedence);
  tcase_add_test(tc, test_config_from_env);
  tcase_add_test(tc, test_unknown_flags);
  tcase_add_test(tc, test_bad_values);
  tcase_add_test(tc, test_help);
  tcase_add_test(tc, test_argv_end);
  tcase_add_test(tc, test_bool_forms);
  tcase_add_test(tc, test_size_suffixes);
  tcase_add_test(tc, test_yaml_errors);
  tcase_add_test(tc, test_yaml_forms);
  tcase_add_test(tc, test_yaml_sections);
  tcase_add_test(tc, test_yaml_section_errors);
  tcase_add_test(tc, test_reload_no_leak);
  tcase_add_test(tc, test_config_entry);
  tcase_add_test(tc, test_usage_and_print);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(cfg_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
