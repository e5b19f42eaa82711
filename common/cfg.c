/*
 * Settings from one table (see cfg.h): flags, RAYC_* environment, a YAML file, defaults.
 *
 * cfg_load works in two passes. First it scans argv without touching conf, so it knows --help and
 * the config file before anything is applied, and stops at "--" or the first operand. Then it
 * applies the sources from lowest to highest precedence (default, YAML, environment, flags), each
 * one overwriting the field; every value is validated even when a higher source overrides it, so a
 * typo in the environment or the file is reported rather than silently ignored. Strings are freed
 * when overwritten, so conf always holds valid owned strings (also after an error) and loading into
 * the same struct twice does not leak.
 *
 * YAML: the top level must be a mapping. One file serves every program (the launcher passes the
 * same --config to each daemon): its top-level scalar keys are shared, and a program ignores those
 * it does not know, which belong to other programs; a mapping under a program's name ("raylet:")
 * is that program's section, applied after the top level, and strict (an unknown key in it is an
 * error). Other programs' sections are skipped unread. A flow or block mapping or sequence under a
 * string setting is rendered as JSON text, so `resources: {GPU_A: 2}` reads the same as
 * `--resources '{"GPU_A": 2}'`. A null value (`key:` or `key: ~`) leaves the setting alone.
 */
#include "common/cfg.h"

#include "common/status.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

enum { CFG_JSON_DEPTH = 32 };

/* A flag value found by the scan: the entry and its text (borrowed from argv or static). */
typedef struct cfg_flag {
  size_t idx;
  const char *val;
  const char *arg; /* the flag as written, without "=value", for messages */
  size_t arglen;
} cfg_flag_t;

typedef struct cfg_scan {
  cfg_flag_t *flags;
  size_t nflags;
  const char *config; /* --config FILE, or NULL */
  int print_config;   /* --print-config was given */
} cfg_scan_t;

/* ---- names ---- */

/* Compares a table name with a user-written one; '-' and '_' are the same character. */
static int cfg_name_eq(const char *name, const char *s, size_t len)
{
  size_t i = 0;
  for (; i < len && name[i]; i++) {
    char a = name[i] == '_' ? '-' : name[i], b = s[i] == '_' ? '-' : s[i];
    if (a != b)
      return 0;
  }
  return i == len && name[i] == '\0';
}

static long cfg_find(const cfg_entry_t *table, size_t n, const char *s, size_t len)
{
  for (size_t i = 0; i < n; i++)
    if (cfg_name_eq(table[i].name, s, len))
      return (long)i;
  return -1;
}

/* Returns the variable name for an entry ("num-cpus" -> "RAYC_NUM_CPUS"); free(). */
static char *cfg_env_name(const char *name)
{
  char *v = xasprintf("RAYC_%s", name);
  for (char *p = v + 5; *p; p++)
    *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
  return v;
}

/* ---- values ---- */

static int cfg_parse_ll(const char *s, long long *v, char **end)
{
  if (*s == '\0' || isspace((unsigned char)*s))
    return -1;
  errno = 0;
  *v = strtoll(s, end, 10);
  return *end == s || errno == ERANGE ? -1 : 0;
}

static int cfg_parse_int(const char *s, int *out)
{
  long long v;
  char *end;
  if (cfg_parse_ll(s, &v, &end) < 0 || *end || v < INT_MIN || v > INT_MAX)
    return -1;
  *out = (int)v;
  return 0;
}

/* K, M, G, T (powers of 1024), optionally followed by "B" or "iB", any case. */
static int cfg_suffix_shift(const char *s, int *shift)
{
  static const char units[] = "KMGT";
  const char *u = *s ? strchr(units, toupper((unsigned char)*s)) : NULL;
  if (*s == '\0') {
    *shift = 0;
    return 0;
  }
  if (!u)
    return -1;
  *shift = 10 * (int)(u - units + 1);
  s++;
  return *s == '\0' || strcasecmp(s, "B") == 0 || strcasecmp(s, "iB") == 0 ? 0 : -1;
}

static int cfg_parse_int64(const char *s, int64_t *out)
{
  long long v;
  char *end;
  int shift;
  if (cfg_parse_ll(s, &v, &end) < 0 || cfg_suffix_shift(end, &shift) < 0)
    return -1;
  int64_t r;
  if (__builtin_mul_overflow((int64_t)v, (int64_t)1 << shift, &r))
    return -1;
  *out = r;
  return 0;
}

static int cfg_parse_double(const char *s, double *out)
{
  if (*s == '\0' || isspace((unsigned char)*s))
    return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
    return -1;
  *out = v;
  return 0;
}

static int cfg_parse_bool(const char *s, int *out)
{
  static const char *const yes[] = {"true", "yes", "1", "on"}, *const no[] = {"false", "no", "0", "off"};
  for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
    if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
      *out = strcasecmp(s, yes[i]) == 0;
      return 0;
    }
  }
  return -1;
}

static const char *cfg_expected(enum cfg_type t)
{
  switch (t) {
    case CFG_INT:
      return "an integer";
    case CFG_INT64:
      return "an integer, optionally with a K, M, G or T suffix";
    case CFG_DOUBLE:
      return "a number";
    case CFG_BOOL:
      return "true or false";
    default:
      return "a string";
  }
}

/* Parses text into the entry's field. */
static int cfg_parse(const cfg_entry_t *e, char *field, const char *text)
{
  switch (e->type) {
    case CFG_INT:
      return cfg_parse_int(text, (int *)(void *)field);
    case CFG_INT64:
      return cfg_parse_int64(text, (int64_t *)(void *)field);
    case CFG_DOUBLE:
      return cfg_parse_double(text, (double *)(void *)field);
    case CFG_BOOL:
      return cfg_parse_bool(text, (int *)(void *)field);
    case CFG_STRING:
      free(*(char **)(void *)field);
      *(char **)(void *)field = xstrdup(text);
      return 0;
  }
  return -1;
}

/* Resets the entry's field to zero / NULL. */
static void cfg_zero(const cfg_entry_t *e, char *field)
{
  if (e->type == CFG_STRING) {
    free(*(char **)(void *)field);
    *(char **)(void *)field = NULL;
  } else if (e->type == CFG_INT64) {
    *(int64_t *)(void *)field = 0;
  } else if (e->type == CFG_DOUBLE) {
    *(double *)(void *)field = 0;
  } else {
    *(int *)(void *)field = 0;
  }
}

/* Stores text (NULL: zero) into the entry's field; on a bad value returns RAYC_EINVALID_ARGUMENT
 * with *err naming src ("--num-cpus", "RAYC_NUM_CPUS", "key 'x' in FILE"). */
static int cfg_set(const cfg_entry_t *e, void *conf, const char *text, const char *src, char **err)
{
  char *field = (char *)conf + e->offset;
  if (!text) {
    cfg_zero(e, field);
    return 0;
  }
  if (cfg_parse(e, field, text) < 0) {
    *err = xasprintf("invalid value '%s' for %s: expected %s", text, src, cfg_expected(e->type));
    return RAYC_EINVALID_ARGUMENT;
  }
  return 0;
}

/* ---- pass 1: scan argv ---- */

/* The value of a flag at argv[*i]: after '=', else the next argument (consumed). */
static int cfg_flag_value(int argc, char **argv, int *i, const char *eq, const char *arg, size_t arglen,
                          const char **val, char **err)
{
  if (eq) {
    *val = eq + 1;
    return 0;
  }
  if (*i + 1 >= argc) {
    *err = xasprintf("missing value for %.*s", (int)arglen, arg);
    return RAYC_EINVALID_ARGUMENT;
  }
  *val = argv[++*i];
  return 0;
}

/* Handles one "--name[=value]" at argv[*i]. */
static int cfg_scan_long(const cfg_entry_t *table, size_t n, int argc, char **argv, int *i, cfg_scan_t *sc, char **err)
{
  const char *arg = argv[*i], *name = arg + 2, *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name), arglen = len + 2;
  if (cfg_name_eq("help", name, len))
    return CFG_HELP;
  if (cfg_name_eq("print-config", name, len) && !eq) {
    sc->print_config = 1;
    return 0;
  }
  long idx = cfg_find(table, n, name, len);
  const char *val = NULL;
  if (idx < 0 && len > 3 && strncmp(name, "no-", 3) == 0 && !eq) {
    idx = cfg_find(table, n, name + 3, len - 3);
    if (idx >= 0 && table[idx].type == CFG_BOOL)
      val = "false";
    else
      idx = -1;
  }
  int is_config = cfg_name_eq("config", name, len);
  if (idx < 0 && !is_config) {
    *err = xasprintf("unknown flag %.*s", (int)arglen, arg);
    return RAYC_EINVALID_ARGUMENT;
  }
  if (!val && idx >= 0 && table[idx].type == CFG_BOOL && !eq)
    val = "true";
  if (!val && cfg_flag_value(argc, argv, i, eq, arg, arglen, &val, err) < 0)
    return RAYC_EINVALID_ARGUMENT;
  if (is_config)
    sc->config = val;
  if (idx >= 0)
    sc->flags[sc->nflags++] = (cfg_flag_t){(size_t)idx, val, arg, arglen};
  return 0;
}

/* Finds flag values, --config and --help; sets *next to the first argument not parsed. */
static int cfg_scan(const cfg_entry_t *table, size_t n, int argc, char **argv, cfg_scan_t *sc, int *next, char **err)
{
  int i = 1, rc = 0;
  for (; i < argc && rc == 0; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "-h") == 0)
      return CFG_HELP;
    if (a[0] != '-' || a[1] == '\0')
      break;
    if (a[1] != '-') {
      *err = xasprintf("unknown flag %s", a);
      return RAYC_EINVALID_ARGUMENT;
    }
    rc = cfg_scan_long(table, n, argc, argv, &i, sc, err);
  }
  if (next)
    *next = i > argc ? argc : i; /* argc may be 0 */
  return rc;
}

/* ---- JSON rendering of YAML collections ---- */

typedef struct cfg_buf {
  char *p;
  size_t len, cap;
} cfg_buf_t;

static void cfg_buf_add(cfg_buf_t *b, const char *s, size_t n)
{
  if (b->cap - b->len < n + 1) {
    b->cap = (b->cap + n + 1) * 2;
    b->p = xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void cfg_buf_str(cfg_buf_t *b, const char *s)
{
  cfg_buf_add(b, s, strlen(s));
}

static void cfg_json_quote(cfg_buf_t *b, const char *s, size_t len)
{
  cfg_buf_str(b, "\"");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c;
      cfg_buf_add(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", c);
      cfg_buf_str(b, esc);
    } else {
      cfg_buf_add(b, s + i, 1);
    }
  }
  cfg_buf_str(b, "\"");
}

/* -?digits(.digits)?([eE][+-]?digits)? */
static int cfg_is_json_number(const char *s)
{
  const char *p = s + (*s == '-');
  if (!isdigit((unsigned char)*p))
    return 0;
  while (isdigit((unsigned char)*p))
    p++;
  if (*p == '.') {
    if (!isdigit((unsigned char)*++p))
      return 0;
    while (isdigit((unsigned char)*p))
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p += (p[1] == '+' || p[1] == '-') ? 2 : 1;
    if (!isdigit((unsigned char)*p))
      return 0;
    while (isdigit((unsigned char)*p))
      p++;
  }
  return *p == '\0';
}

/* Plain YAML null: empty, "~" or "null". */
static int cfg_yaml_is_null(const yaml_node_t *v)
{
  const char *s = (const char *)v->data.scalar.value;
  return v->type == YAML_SCALAR_NODE && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (!*s || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0);
}

static void cfg_json_scalar(cfg_buf_t *b, const yaml_node_t *v)
{
  const char *s = (const char *)v->data.scalar.value;
  int plain = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  if (cfg_yaml_is_null(v))
    cfg_buf_str(b, "null");
  else if (plain && cfg_is_json_number(s))
    cfg_buf_str(b, s);
  else if (plain && strcasecmp(s, "true") == 0)
    cfg_buf_str(b, "true");
  else if (plain && strcasecmp(s, "false") == 0)
    cfg_buf_str(b, "false");
  else
    cfg_json_quote(b, s, v->data.scalar.length);
}

static int cfg_json_node(cfg_buf_t *b, yaml_document_t *doc, yaml_node_t *v, int depth);

static int cfg_json_mapping(cfg_buf_t *b, yaml_document_t *doc, yaml_node_t *v, int depth)
{
  cfg_buf_str(b, "{");
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key);
    if (!k || k->type != YAML_SCALAR_NODE)
      return -1;
    if (p != v->data.mapping.pairs.start)
      cfg_buf_str(b, ", ");
    cfg_json_quote(b, (const char *)k->data.scalar.value, k->data.scalar.length);
    cfg_buf_str(b, ": ");
    if (cfg_json_node(b, doc, yaml_document_get_node(doc, p->value), depth + 1) < 0)
      return -1;
  }
  cfg_buf_str(b, "}");
  return 0;
}

static int cfg_json_node(cfg_buf_t *b, yaml_document_t *doc, yaml_node_t *v, int depth)
{
  if (!v || depth > CFG_JSON_DEPTH)
    return -1;
  if (v->type == YAML_SCALAR_NODE) {
    cfg_json_scalar(b, v);
    return 0;
  }
  if (v->type == YAML_MAPPING_NODE)
    return cfg_json_mapping(b, doc, v, depth);
  cfg_buf_str(b, "[");
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    if (it != v->data.sequence.items.start)
      cfg_buf_str(b, ", ");
    if (cfg_json_node(b, doc, yaml_document_get_node(doc, *it), depth + 1) < 0)
      return -1;
  }
  cfg_buf_str(b, "]");
  return 0;
}

/* ---- pass 2: YAML ---- */

/* The programs whose sections a shared YAML file may hold (cfg.h). */
static const char *const cfg_programs[] = {CFG_PROGRAMS};

/* The program named by cfg_set_program(): its section applies; set once at start-up. */
static const char *cfg_program;

/* Where a YAML pair sits: the file, and the section (NULL: the top level). */
typedef struct cfg_yaml_ctx {
  const cfg_entry_t *table;
  size_t n;
  void *conf;
  const char *file;
  const char *section;
  yaml_document_t *doc;
} cfg_yaml_ctx_t;

static int cfg_is_program(const char *s, const char *section)
{
  for (size_t i = 0; i < ARRAY_LEN(cfg_programs); i++)
    if (strcmp(s, cfg_programs[i]) == 0)
      return 1;
  return section && strcmp(s, section) == 0;
}

/* An unknown key: an error inside the program's own section; ignored at the top level, where it
 * belongs to another program ('config' excepted: no file may set it). */
static int cfg_yaml_unknown(const cfg_yaml_ctx_t *y, const char *key, size_t len, char **err)
{
  if (cfg_name_eq("config", key, len))
    *err = xasprintf("%s: 'config' cannot be set inside a config file", y->file);
  else if (y->section)
    *err = xasprintf("%s: unknown key '%s' in section '%s'", y->file, key, y->section);
  else
    return 0;
  return RAYC_EINVALID_ARGUMENT;
}

/* Stores the value v of a known setting idx. */
static int cfg_yaml_value(const cfg_yaml_ctx_t *y, long idx, const char *key, yaml_node_t *v, char **err)
{
  if (cfg_yaml_is_null(v))
    return 0;
  char *src = y->section ? xasprintf("key '%s' in section '%s' of %s", key, y->section, y->file)
                         : xasprintf("key '%s' in %s", key, y->file);
  cfg_buf_t b = {0};
  int rc = 0;
  if (v->type == YAML_SCALAR_NODE) {
    rc = cfg_set(&y->table[idx], y->conf, (const char *)v->data.scalar.value, src, err);
  } else if (y->table[idx].type != CFG_STRING || cfg_json_node(&b, y->doc, v, 0) < 0) {
    *err = xasprintf("%s: key '%s' must have a single value, not a list or mapping", y->file, key);
    rc = RAYC_EINVALID_ARGUMENT;
  } else {
    rc = cfg_set(&y->table[idx], y->conf, b.p, src, err);
  }
  free(b.p);
  free(src);
  return rc;
}

/* Returns the pair's key node, or NULL with *err set when it is not a plain string. */
static yaml_node_t *cfg_yaml_key(const cfg_yaml_ctx_t *y, yaml_node_pair_t *p, char **err)
{
  yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
  if (!k || k->type != YAML_SCALAR_NODE || !yaml_document_get_node(y->doc, p->value)) {
    *err = xasprintf("%s: setting names must be plain strings", y->file);
    return NULL;
  }
  return k;
}

/* Applies one "key: value" pair of the top level or of the program's section. */
static int cfg_yaml_pair(const cfg_yaml_ctx_t *y, yaml_node_pair_t *p, char **err)
{
  yaml_node_t *k = cfg_yaml_key(y, p, err), *v = yaml_document_get_node(y->doc, p->value);
  if (!k)
    return RAYC_EINVALID_ARGUMENT;
  const char *key = (const char *)k->data.scalar.value;
  long idx = cfg_find(y->table, y->n, key, k->data.scalar.length);
  if (idx < 0)
    return cfg_yaml_unknown(y, key, k->data.scalar.length, err);
  return cfg_yaml_value(y, idx, key, v, err);
}

/* Classifies a top-level pair: 1 for a section (a mapping, or null, under a program's name), 0
 * for a setting. The program's own section under another value type is an error (-1). */
static int cfg_yaml_is_section(const cfg_yaml_ctx_t *y, const char *section, yaml_node_pair_t *p, char **err)
{
  yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
  yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
  if (!k || k->type != YAML_SCALAR_NODE || !v || !cfg_is_program((const char *)k->data.scalar.value, section))
    return 0;
  if (v->type == YAML_MAPPING_NODE || cfg_yaml_is_null(v))
    return 1;
  if (!section || strcmp((const char *)k->data.scalar.value, section) != 0)
    return 0;
  *err = xasprintf("%s: section '%s' must be a mapping of settings (key: value)", y->file, section);
  return -1;
}

/* Applies the pairs of one section (a mapping or null). */
static int cfg_yaml_section(cfg_yaml_ctx_t *y, const char *section, yaml_node_t *v, char **err)
{
  if (v->type != YAML_MAPPING_NODE)
    return 0;
  y->section = section;
  int rc = 0;
  yaml_node_pair_t *p = v->data.mapping.pairs.start;
  for (; rc == 0 && p < v->data.mapping.pairs.top; p++)
    rc = cfg_yaml_pair(y, p, err);
  y->section = NULL;
  return rc;
}

/* Applies the top-level settings, then the program's own section, so the section wins. */
static int cfg_yaml_root(cfg_yaml_ctx_t *y, const char *section, char **err)
{
  yaml_node_t *root = yaml_document_get_root_node(y->doc), *own = NULL;
  if (!root || cfg_yaml_is_null(root))
    return 0; /* an empty file sets nothing */
  if (root->type != YAML_MAPPING_NODE) {
    *err = xasprintf("%s: expected a mapping of settings (key: value) at the top level", y->file);
    return RAYC_EINVALID_ARGUMENT;
  }
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
    int is = cfg_yaml_is_section(y, section, p, err), rc = 0;
    if (is < 0)
      return RAYC_EINVALID_ARGUMENT;
    yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
    if (is && section && strcmp((const char *)k->data.scalar.value, section) == 0)
      own = yaml_document_get_node(y->doc, p->value);
    else if (!is)
      rc = cfg_yaml_pair(y, p, err);
    if (rc < 0)
      return rc;
  }
  return own ? cfg_yaml_section(y, section, own, err) : 0;
}

static int cfg_load_yaml(const cfg_entry_t *table, size_t n, void *conf, const char *section, const char *file,
                         char **err)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = 0, have_doc = 0;
  FILE *f = fopen(file, "rb");
  if (!f) {
    *err = xasprintf("cannot read config file %s: %s", file, strerror(errno));
    return RAYC_EINVALID_ARGUMENT;
  }
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  if (!yaml_parser_load(&parser, &doc)) {
    *err = xasprintf("%s:%zu:%zu: invalid YAML: %s", file, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "parse error");
    rc = RAYC_EINVALID_ARGUMENT;
    goto out;
  }
  have_doc = 1;
  cfg_yaml_ctx_t y = {.table = table, .n = n, .conf = conf, .file = file, .doc = &doc};
  rc = cfg_yaml_root(&y, section, err);
out:
  if (have_doc)
    yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  fclose(f);
  return rc;
}

/* ---- pass 2: defaults, environment, flags ---- */

static int cfg_apply_defaults(const cfg_entry_t *table, size_t n, void *conf, char **err)
{
  for (size_t i = 0; i < n; i++) {
    char *src = xasprintf("the default of %s", table[i].name);
    int rc = cfg_set(&table[i], conf, table[i].def, src, err);
    free(src);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* An empty variable counts as unset. */
static int cfg_apply_env(const cfg_entry_t *table, size_t n, void *conf, char **err)
{
  for (size_t i = 0; i < n; i++) {
    char *var = cfg_env_name(table[i].name);
    const char *val = getenv(var);
    int rc = val && *val ? cfg_set(&table[i], conf, val, var, err) : 0;
    free(var);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int cfg_apply_flags(const cfg_entry_t *table, void *conf, const cfg_scan_t *sc, char **err)
{
  for (size_t i = 0; i < sc->nflags; i++) {
    const cfg_flag_t *f = &sc->flags[i];
    char *src = xasprintf("%.*s", (int)f->arglen, f->arg);
    int rc = cfg_set(&table[f->idx], conf, f->val, src, err);
    free(src);
    if (rc < 0)
      return rc;
  }
  return 0;
}

void cfg_set_program(const char *program)
{
  cfg_program = program;
}

int cfg_load(const cfg_entry_t *table, size_t n, void *conf, int argc, char **argv, int *next, char **err)
{
  return cfg_load_section(table, n, conf, cfg_program, argc, argv, next, err);
}

int cfg_load_section(const cfg_entry_t *table, size_t n, void *conf, const char *section, int argc, char **argv,
                     int *next, char **err)
{
  cfg_scan_t sc = {.flags = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(cfg_flag_t))};
  *err = NULL;
  int rc = cfg_scan(table, n, argc, argv, &sc, next, err);
  if (rc != 0)
    goto out;
  const char *config = sc.config ? sc.config : getenv("RAYC_CONFIG");
  rc = cfg_apply_defaults(table, n, conf, err);
  if (rc == 0 && config && *config)
    rc = cfg_load_yaml(table, n, conf, section, config, err);
  if (rc == 0)
    rc = cfg_apply_env(table, n, conf, err);
  if (rc == 0)
    rc = cfg_apply_flags(table, conf, &sc, err);
  if (rc == 0 && sc.print_config) { /* after loading, so a bad file is reported, not printed over */
    cfg_print_defaults(stdout, table, n, section);
    rc = CFG_PRINTED;
  }
out:
  free(sc.flags);
  return rc;
}

/* ---- usage, printing, release ---- */

static const char *cfg_type_name(enum cfg_type t)
{
  static const char *const names[] = {"INT", "SIZE", "FLOAT", "BOOL", "STRING"};
  return (size_t)t < ARRAY_LEN(names) ? names[t] : "?";
}

static void cfg_usage_line(FILE *out, const char *left, const char *doc)
{
  if (strlen(left) <= 28)
    fprintf(out, "  %-28s  %s\n", left, doc);
  else
    fprintf(out, "  %s\n  %-28s  %s\n", left, "", doc);
}

void cfg_usage(FILE *out, const char *prog, const char *summary, const cfg_entry_t *table, size_t n)
{
  fprintf(out, "usage: %s [flags]\n", prog);
  if (summary && *summary)
    fprintf(out, "%s\n", summary);
  fprintf(out, "\nflags (each also read from the environment variable shown, or the YAML file):\n");
  for (size_t i = 0; i < n; i++) {
    const cfg_entry_t *e = &table[i];
    char *env = cfg_env_name(e->name);
    char *left = e->type == CFG_BOOL ? xasprintf("--%s[=BOOL]", e->name)
                                     : xasprintf("--%s %s", e->name, cfg_type_name(e->type));
    char *doc = xasprintf("%s (%s%s%s%s)", e->doc ? e->doc : "", e->def ? "default: " : "", e->def ? e->def : "",
                          e->def ? "; " : "", env);
    cfg_usage_line(out, left, doc);
    free(doc);
    free(left);
    free(env);
  }
  char *cdoc = cfg_find(table, n, "config", strlen("config")) >= 0 ? NULL /* listed above */
               : cfg_program ? xasprintf("YAML file of settings, keys as above, at its top level or "
                                         "in its section '%s:' (RAYC_CONFIG)",
                                         cfg_program)
                             : xstrdup("YAML file of settings, keys as above (RAYC_CONFIG)");
  if (cdoc)
    cfg_usage_line(out, "--config FILE", cdoc);
  free(cdoc);
  cfg_usage_line(out, "-h, --help", "show this help");
  fprintf(out, "\nPrecedence: flag > environment > config file > default. SIZE takes K/M/G/T.\n");
}

void cfg_print(FILE *out, const cfg_entry_t *table, size_t n, const void *conf)
{
  for (size_t i = 0; i < n; i++) {
    const char *field = (const char *)conf + table[i].offset;
    const char *s;
    fprintf(out, "%s: ", table[i].name);
    switch (table[i].type) {
      case CFG_INT:
        fprintf(out, "%d\n", *(const int *)(const void *)field);
        break;
      case CFG_INT64:
        fprintf(out, "%lld\n", (long long)*(const int64_t *)(const void *)field);
        break;
      case CFG_DOUBLE:
        fprintf(out, "%.17g\n", *(const double *)(const void *)field);
        break;
      case CFG_BOOL:
        fprintf(out, "%s\n", *(const int *)(const void *)field ? "true" : "false");
        break;
      case CFG_STRING:
        s = *(char *const *)(const void *)field;
        if (s) {
          cfg_buf_t b = {0};
          cfg_json_quote(&b, s, strlen(s));
          fprintf(out, "%s\n", b.p);
          free(b.p);
        } else {
          fprintf(out, "~\n");
        }
        break;
    }
  }
}

void cfg_release(const cfg_entry_t *table, size_t n, void *conf)
{
  if (!conf)
    return;
  for (size_t i = 0; i < n; i++) {
    if (table[i].type != CFG_STRING)
      continue;
    char **p = (char **)(void *)((char *)conf + table[i].offset);
    free(*p);
    *p = NULL;
  }
}
