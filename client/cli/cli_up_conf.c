/*
 * The cluster file of `rayc up` (see cli_up.h): parsed with libyaml's document API, and each
 * host's rayc.yaml rendered from it.
 */
#include "client/cli/cli_up.h"

#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum { UP_DEPTH_MAX = 16 };

typedef struct up_parse {
  yaml_document_t doc;
  const char *path;
  char *dir; /* the cluster file's directory, for relative paths */
  char *err;
} up_parse_t;

static int up_fail(up_parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int up_fail(up_parse_t *p, const char *fmt, ...)
{
  if (!p->err) {
    va_list ap;
    char *m = NULL;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
      m = NULL;
    va_end(ap);
    p->err = xasprintf("%s: %s", p->path, m ? m : fmt);
    free(m);
  }
  return -1;
}

static const char *up_scalar(const yaml_node_t *v)
{
  return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/* ---- values as YAML text ---- */

static void up_buf_add(char **buf, const char *s)
{
  char *n = xasprintf("%s%s", *buf ? *buf : "", s);
  free(*buf);
  *buf = n;
}

/* A scalar as YAML text: as written when it is a safe plain word (numbers, sizes, addresses,
 * paths), else double-quoted. */
static void up_render_scalar(char **buf, const char *s)
{
  int plain = *s != '\0';
  for (const char *q = s; *q && plain; q++)
    plain = isalnum((unsigned char)*q) || strchr("_.:/+-@", *q);
  if (plain) {
    up_buf_add(buf, s);
    return;
  }
  up_buf_add(buf, "\"");
  for (const char *q = s; *q; q++) {
    char esc[8];
    if (*q == '"' || *q == '\\')
      snprintf(esc, sizeof(esc), "\\%c", *q);
    else if ((unsigned char)*q < 0x20)
      snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)*q);
    else
      snprintf(esc, sizeof(esc), "%c", *q);
    up_buf_add(buf, esc);
  }
  up_buf_add(buf, "\"");
}

static int up_render(up_parse_t *p, char **buf, yaml_node_t *v, int depth)
{
  if (!v || depth > UP_DEPTH_MAX)
    return up_fail(p, "%s", "a value is nested too deeply");
  if (v->type == YAML_SCALAR_NODE) {
    up_render_scalar(buf, up_scalar(v));
    return 0;
  }
  if (v->type == YAML_SEQUENCE_NODE) {
    up_buf_add(buf, "[");
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
      up_buf_add(buf, i == v->data.sequence.items.start ? "" : ", ");
      if (up_render(p, buf, yaml_document_get_node(&p->doc, *i), depth + 1) < 0)
        return -1;
    }
    up_buf_add(buf, "]");
    return 0;
  }
  up_buf_add(buf, "{");
  for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
    up_buf_add(buf, q == v->data.mapping.pairs.start ? "" : ", ");
    if (up_render(p, buf, yaml_document_get_node(&p->doc, q->key), depth + 1) < 0)
      return -1;
    up_buf_add(buf, ": ");
    if (up_render(p, buf, yaml_document_get_node(&p->doc, q->value), depth + 1) < 0)
      return -1;
  }
  up_buf_add(buf, "}");
  return 0;
}

/* ---- settings (rayc.yaml keys) ---- */

/* Sets key to value (both taken), replacing an earlier value of the same key. */
static void up_kvs_set(up_kvs_t *s, char *key, char *value)
{
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->v[i].key, key) == 0) {
      free(s->v[i].value);
      s->v[i].value = value;
      free(key);
      return;
    }
  }
  s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
  s->v[s->n++] = (up_kv_t){key, value};
}

static void up_kvs_release(up_kvs_t *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].key);
    free(s->v[i].value);
  }
  free(s->v);
  memset(s, 0, sizeof(*s));
}

static int up_settings(up_parse_t *p, yaml_node_t *m, up_kvs_t *out)
{
  static const char *sections[] = {"gcs", "store", "raylet", "worker", "rayc"};
  if (!m || m->type != YAML_MAPPING_NODE)
    return up_fail(p, "%s", "'settings' must be a mapping of rayc.yaml keys");
  for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top; q++) {
    const char *k = up_scalar(yaml_document_get_node(&p->doc, q->key));
    if (!k || !*k || strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(k))
      return up_fail(p, "settings key '%s' is not a rayc.yaml key", k ? k : "?");
    for (size_t i = 0; i < ARRAY_LEN(sections); i++)
      if (strcmp(k, sections[i]) == 0)
        return up_fail(p, "settings key '%s': per-daemon sections are not supported here; use top-level keys", k);
    char *key = xstrdup(k), *val = NULL;
    for (char *c = key; *c; c++)
      *c = *c == '_' ? '-' : *c;
    if (up_render(p, &val, yaml_document_get_node(&p->doc, q->value), 0) < 0) {
      free(key);
      free(val);
      return -1;
    }
    up_kvs_set(out, key, val);
  }
  return 0;
}

/* ---- the cluster file ---- */

/* A path from the file: "~/" is $HOME's, a relative one is relative to the cluster file. */
static char *up_path(const up_parse_t *p, const char *s)
{
  const char *home = getenv("HOME");
  if (strncmp(s, "~/", 2) == 0 && home)
    return xasprintf("%s/%s", home, s + 2);
  if (s[0] == '/')
    return xstrdup(s);
  return xasprintf("%s/%s", p->dir, s);
}

static int up_host(up_parse_t *p, yaml_node_t *m, int head, up_host_t *h)
{
  h->head = head;
  if (m && up_scalar(m)) { /* a bare address */
    h->host = xstrdup(up_scalar(m));
    return 0;
  }
  if (!m || m->type != YAML_MAPPING_NODE)
    return up_fail(p, "%s", "a host must be an address or a mapping with 'host'");
  for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top; q++) {
    const char *k = up_scalar(yaml_document_get_node(&p->doc, q->key));
    yaml_node_t *v = yaml_document_get_node(&p->doc, q->value);
    if (k && strcmp(k, "host") == 0 && up_scalar(v) && *up_scalar(v))
      h->host = xstrdup(up_scalar(v));
    else if (k && strcmp(k, "settings") == 0) {
      if (up_settings(p, v, &h->settings) < 0)
        return -1;
    } else
      return up_fail(p, "unknown host key '%s' (host, settings)", k ? k : "?");
  }
  return h->host ? 0 : up_fail(p, "%s", "a host has no 'host' address");
}

static int up_workers(up_parse_t *p, yaml_node_t *v, up_cluster_t *c)
{
  if (!v || v->type != YAML_SEQUENCE_NODE)
    return up_fail(p, "%s", "'workers' must be a list of hosts");
  for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
    c->hosts = xrealloc(c->hosts, (c->n_hosts + 1) * sizeof(*c->hosts));
    memset(&c->hosts[c->n_hosts], 0, sizeof(*c->hosts));
    if (up_host(p, yaml_document_get_node(&p->doc, *i), 0, &c->hosts[c->n_hosts++]) < 0)
      return -1;
  }
  return 0;
}

static int up_int(up_parse_t *p, const char *k, yaml_node_t *v, int *out)
{
  const char *s = up_scalar(v);
  char *end = NULL;
  long n = s ? strtol(s, &end, 10) : -1;
  if (!s || *end || n < 0 || n > 65535)
    return up_fail(p, "'%s' must be a port number", k);
  *out = (int)n;
  return 0;
}

static int up_ssh_options(up_parse_t *p, yaml_node_t *v, up_cluster_t *c)
{
  if (!v || v->type != YAML_SEQUENCE_NODE)
    return up_fail(p, "%s", "'ssh_options' must be a list like [StrictHostKeyChecking=accept-new]");
  for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
    const char *s = up_scalar(yaml_document_get_node(&p->doc, *i));
    if (!s || !strchr(s, '='))
      return up_fail(p, "%s", "each of 'ssh_options' must be NAME=VALUE");
    c->ssh_opts = xrealloc(c->ssh_opts, (c->n_ssh_opts + 1) * sizeof(char *));
    c->ssh_opts[c->n_ssh_opts++] = xstrdup(s);
  }
  return 0;
}

/* One top-level key of the cluster file. */
static int up_top(up_parse_t *p, const char *k, yaml_node_t *v, up_cluster_t *c)
{
  const char *s = up_scalar(v);
  char **str = strcmp(k, "cluster_name") == 0 ? &c->name : strcmp(k, "ssh_user") == 0 ? &c->user : NULL;
  if (str && s && *s) {
    free(*str);
    *str = xstrdup(s);
    return 0;
  }
  if ((strcmp(k, "ssh_key") == 0 || strcmp(k, "package") == 0) && s && *s) {
    char **dst = k[0] == 's' ? &c->key : &c->package;
    free(*dst);
    *dst = up_path(p, s);
    return 0;
  }
  if (strcmp(k, "ssh_port") == 0 || strcmp(k, "gcs_port") == 0)
    return up_int(p, k, v, k[0] == 's' ? &c->port : &c->gcs_port);
  if (strcmp(k, "ssh_options") == 0)
    return up_ssh_options(p, v, c);
  if (strcmp(k, "settings") == 0)
    return up_settings(p, v, &c->settings);
  if (strcmp(k, "workers") == 0)
    return up_workers(p, v, c);
  if (strcmp(k, "head") == 0)
    return up_host(p, v, 1, &c->hosts[0]);
  return up_fail(p,
                 "unknown key '%s' (cluster_name, ssh_user, ssh_key, ssh_port, ssh_options, package, "
                 "gcs_port, settings, head, workers)",
                 k);
}

static int up_read(up_parse_t *p, up_cluster_t *c)
{
  FILE *f = fopen(p->path, "r");
  if (!f)
    return up_fail(p, "cannot read it: %s", strerror(errno));
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  int ok = yaml_parser_load(&parser, &p->doc);
  char *why = ok ? NULL
                 : xasprintf("line %zu: %s", parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
  yaml_parser_delete(&parser);
  fclose(f);
  if (!ok) {
    up_fail(p, "not YAML (%s)", why);
    free(why);
    return -2; /* no document to delete */
  }
  yaml_node_t *root = yaml_document_get_root_node(&p->doc);
  if (!root || root->type != YAML_MAPPING_NODE)
    return up_fail(p, "%s", "the top level must be a mapping");
  for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top; q++) {
    const char *k = up_scalar(yaml_document_get_node(&p->doc, q->key));
    if (!k || up_top(p, k, yaml_document_get_node(&p->doc, q->value), c) < 0)
      return up_fail(p, "%s", "a key is not a string");
  }
  return c->hosts[0].host ? 0 : up_fail(p, "%s", "no 'head' host");
}

int up_cluster_load(const char *path, up_cluster_t *c, char **err)
{
  memset(c, 0, sizeof(*c));
  c->file = xstrdup(path);
  c->gcs_port = 6380;
  c->hosts = xcalloc(1, sizeof(*c->hosts));
  c->n_hosts = 1;
  up_parse_t p = {.path = path};
  char *slash = strrchr(path, '/');
  p.dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
  int rc = up_read(&p, c);
  if (rc != -2)
    yaml_document_delete(&p.doc);
  if (rc == 0 && !c->name)
    c->name = xstrdup("rayc");
  free(p.dir);
  *err = p.err;
  return rc < 0 ? -1 : 0;
}

void up_cluster_release(up_cluster_t *c)
{
  for (size_t i = 0; i < c->n_hosts; i++) {
    free(c->hosts[i].host);
    up_kvs_release(&c->hosts[i].settings);
  }
  for (size_t i = 0; i < c->n_ssh_opts; i++)
    free(c->ssh_opts[i]);
  free(c->ssh_opts);
  free(c->hosts);
  up_kvs_release(&c->settings);
  free(c->file);
  free(c->name);
  free(c->user);
  free(c->key);
  free(c->package);
  memset(c, 0, sizeof(*c));
}

/* ---- a host's rayc.yaml ---- */

char *up_host_config(const up_cluster_t *c, const up_host_t *h)
{
  up_kvs_t kv = {0};
  const char *base[][2] = {{"token-file", "/etc/rayc/cluster_token"},
                           {"session-dir", "/var/lib/rayc/session"},
                           {"object-manager-port", "8076"},
                           {"min-worker-port", "10002"},
                           {"max-worker-port", "10999"}};
  up_kvs_set(&kv, xstrdup("node-ip-address"), xstrdup(h->host));
  up_kvs_set(&kv, xstrdup("gcs-address"), xasprintf("%s:%d", c->hosts[0].host, c->gcs_port));
  up_kvs_set(&kv, xstrdup("head"), xstrdup(h->head ? "true" : "false"));
  for (size_t i = 0; i < ARRAY_LEN(base); i++)
    up_kvs_set(&kv, xstrdup(base[i][0]), xstrdup(base[i][1]));
  for (size_t i = 0; i < c->settings.n; i++)
    up_kvs_set(&kv, xstrdup(c->settings.v[i].key), xstrdup(c->settings.v[i].value));
  for (size_t i = 0; i < h->settings.n; i++)
    up_kvs_set(&kv, xstrdup(h->settings.v[i].key), xstrdup(h->settings.v[i].value));
  char *out = xasprintf("# /etc/rayc/rayc.yaml of %s (%s of cluster %s), written by `rayc up`.\n"
                        "# Edit the cluster file and run `rayc up` again rather than this file.\n"
                        "# Every key, documented: /usr/share/doc/rayc/rayc.yaml\n",
                        h->host, h->head ? "head" : "worker", c->name);
  for (size_t i = 0; i < kv.n; i++) {
    char *line = xasprintf("%s: %s\n", kv.v[i].key, kv.v[i].value);
    up_buf_add(&out, line);
    free(line);
  }
  char *sections = xasprintf("gcs:\n  port: %d\nraylet:\n  port: 8077\n", c->gcs_port);
  up_buf_add(&out, sections);
  free(sections);
  up_kvs_release(&kv);
  return out;
}
