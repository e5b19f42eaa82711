/*
 * rayc job submit [flags] -- CMD...: packs and uploads the working directory (once per content),
 * submits the job to the GCS's JobSubmissionService and, without --no-wait, streams its output
 * until it ends (exit 0 when it SUCCEEDED, 1 otherwise: Ray's behaviour).
 *
 * Flags repeat (--env, --metadata), so this command parses its arguments itself rather than
 * through a settings table; the connection flags are the same as every job command's.
 * The runtime env file (--runtime-env FILE.yaml, libyaml) holds Ray's keys working_dir, env_vars
 * and code_path (C task libraries, relative to the working dir); flags add to it and win.
 */
#include "client/cli/cli_job.h"

#include "common/pkg.h"
#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

typedef struct submit_opts {
  cli_job_conn_t conn;
  char *working_dir, *runtime_env, *submission_id, *code_path;
  double num_cpus;
  int no_wait;
  uint64_t max_bytes;
  Rayc__StringPair **env, **meta;
  size_t nenv, nmeta;
  char *entrypoint;
} submit_opts_t;

static const char submit_usage[] =
    "usage: rayc job submit [--address HOST:PORT] [--working-dir DIR] [--env K=V]... [--runtime-env FILE.yaml]\n"
    "                       [--submission-id ID] [--entrypoint-num-cpus N] [--metadata K=V]... [--no-wait]\n"
    "                       [--max-package-bytes N] [--token-file F] [--temp-dir DIR] [--format table|json] -- CMD...\n"
    "Runs CMD on the cluster's head under a job supervisor and, without --no-wait, prints its output until it\n"
    "ends: exit 0 when the job SUCCEEDED, 1 when it FAILED or was STOPPED. --working-dir is packed (without\n"
    ".git and what .raycignore lists), uploaded once per content and becomes the job's cwd on every node;\n"
    "it may also be a .tar archive (uploaded as it is) or a pkg_<sha256> uploaded before.\n"
    "--max-package-bytes (also $RAYC_MAX_PACKAGE_BYTES; default 100 MiB) limits the packed files.\n";

/* Sets (or replaces) key=value in a list of pairs. */
static void submit_pair_set(Rayc__StringPair ***v, size_t *n, const char *key, const char *value)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*v)[i]->key, key) == 0) {
      free((*v)[i]->value);
      (*v)[i]->value = xstrdup(value);
      return;
    }
  Rayc__StringPair *p = xmalloc(sizeof(*p));
  rayc__string_pair__init(p);
  p->key = xstrdup(key);
  p->value = xstrdup(value);
  *v = xrealloc(*v, (*n + 1) * sizeof(**v));
  (*v)[(*n)++] = p;
}

static int submit_pair_arg(Rayc__StringPair ***v, size_t *n, const char *flag, const char *arg)
{
  const char *eq = arg ? strchr(arg, '=') : NULL;
  if (!eq || eq == arg) {
    fprintf(stderr, "rayc job submit: %s wants KEY=VALUE, got '%s'\n", flag, arg ? arg : "");
    return -1;
  }
  char *key = xasprintf("%.*s", (int)(eq - arg), arg);
  submit_pair_set(v, n, key, eq + 1);
  free(key);
  return 0;
}

static void submit_opts_release(submit_opts_t *o)
{
  for (size_t i = 0; i < o->nenv; i++)
    pb_free(o->env[i]);
  for (size_t i = 0; i < o->nmeta; i++)
    pb_free(o->meta[i]);
  free(o->env);
  free(o->meta);
  free(o->entrypoint);
  free(o->working_dir);
  free(o->code_path);
}

/* The value of --flag VALUE or --flag=VALUE at argv[*i]; NULL when missing. */
static const char *submit_value(int argc, char **argv, int *i, const char *flag)
{
  size_t n = strlen(flag);
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  return *i + 1 < argc ? argv[++*i] : NULL;
}

static int submit_is(const char *arg, const char *flag)
{
  size_t n = strlen(flag);
  return strncmp(arg, flag, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* One flag at argv[*i]. 0, or -1 after printing the error. */
static int submit_flag(submit_opts_t *o, int argc, char **argv, int *i)
{
  const char *a = argv[*i];
  static const char *str_flags[] = {"--address", "--temp-dir", "--format",      "--token-file",  "--tls-cert",
                                    "--tls-key", "--tls-ca",   "--working-dir", "--runtime-env", "--submission-id"};
  char **str_slots[] = {&o->conn.address,      &o->conn.temp_dir,    &o->conn.format,     &o->conn.sec.token_file,
                        &o->conn.sec.tls_cert, &o->conn.sec.tls_key, &o->conn.sec.tls_ca, &o->working_dir,
                        &o->runtime_env,       &o->submission_id};
  for (size_t k = 0; k < ARRAY_LEN(str_flags); k++)
    if (submit_is(a, str_flags[k])) {
      const char *v = submit_value(argc, argv, i, str_flags[k]);
      if (!v)
        break;
      if (str_slots[k] == &o->working_dir)
        free(o->working_dir), o->working_dir = xstrdup(v);
      else
        *str_slots[k] = (char *)v; /* borrowed from argv */
      return 0;
    }
  const char *v;
  if (submit_is(a, "--env") && (v = submit_value(argc, argv, i, "--env")))
    return submit_pair_arg(&o->env, &o->nenv, "--env", v);
  if (submit_is(a, "--metadata") && (v = submit_value(argc, argv, i, "--metadata")))
    return submit_pair_arg(&o->meta, &o->nmeta, "--metadata", v);
  if (submit_is(a, "--entrypoint-num-cpus") && (v = submit_value(argc, argv, i, "--entrypoint-num-cpus")))
    return (o->num_cpus = strtod(v, NULL)) >= 0 ? 0 : -1;
  if (submit_is(a, "--max-package-bytes") && (v = submit_value(argc, argv, i, "--max-package-bytes")))
    return (o->max_bytes = strtoull(v, NULL, 10)) > 0 ? 0 : -1;
  if (submit_is(a, "--timeout-ms") && (v = submit_value(argc, argv, i, "--timeout-ms")))
    return (o->conn.timeout_ms = atoi(v)) > 0 ? 0 : -1;
  if (strcmp(a, "--no-wait") == 0)
    return o->no_wait = 1, 0;
  fprintf(stderr, "rayc job submit: unknown flag or missing value: %s\n", a);
  return -1;
}

/* Parses the arguments. CLI_CONTINUE, or an exit status. */
static int submit_parse(submit_opts_t *o, int argc, char **argv)
{
  memset(o, 0, sizeof(*o));
  o->conn.temp_dir = getenv("RAYC_TEMP_DIR") ? getenv("RAYC_TEMP_DIR") : (char *)"/tmp/rayc";
  o->conn.format = (char *)"table";
  o->conn.timeout_ms = 30000;
  const char *mb = getenv("RAYC_MAX_PACKAGE_BYTES");
  o->max_bytes = mb && *mb ? strtoull(mb, NULL, 10) : 0;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(submit_usage, stdout);
      return CLI_OK;
    }
    if (argv[i][0] != '-')
      break; /* the entrypoint without "--" */
    if (submit_flag(o, argc, argv, &i) != 0)
      return CLI_USAGE;
  }
  i += i < argc && strcmp(argv[i], "--") == 0;
  if (i >= argc) {
    fprintf(stderr, "rayc job submit: no entrypoint: rayc job submit [flags] -- CMD...\n");
    return CLI_USAGE;
  }
  o->entrypoint = xstrdup("");
  for (; i < argc; i++) {
    char *next = xasprintf("%s%s%s", o->entrypoint, *o->entrypoint ? " " : "", argv[i]);
    free(o->entrypoint);
    o->entrypoint = next;
  }
  return CLI_CONTINUE;
}

/* ---- the runtime env file ---- */

static const char *yaml_scalar(const yaml_document_t *d, const yaml_node_t *n)
{
  (void)d;
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Applies one key of the runtime env mapping. 0 or -1 (printed). */
static int runtime_env_key(submit_opts_t *o, yaml_document_t *d, const char *key, yaml_node_t *v)
{
  if (strcmp(key, "working_dir") == 0 && yaml_scalar(d, v)) {
    if (!o->working_dir)
      o->working_dir = xstrdup(yaml_scalar(d, v));
    return 0;
  }
  if (strcmp(key, "code_path") == 0 && (yaml_scalar(d, v) || v->type == YAML_SEQUENCE_NODE)) {
    char *cp = xstrdup(yaml_scalar(d, v) ? yaml_scalar(d, v) : "");
    for (yaml_node_item_t *it = v->type == YAML_SEQUENCE_NODE ? v->data.sequence.items.start : NULL;
         it && it < v->data.sequence.items.top; it++) {
      const char *s = yaml_scalar(d, yaml_document_get_node(d, *it));
      char *next = xasprintf("%s%s%s", cp, *cp ? ":" : "", s ? s : "");
      free(cp);
      cp = next;
    }
    free(o->code_path);
    o->code_path = cp;
    return 0;
  }
  if (strcmp(key, "env_vars") == 0 && v->type == YAML_MAPPING_NODE) {
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
      const char *k = yaml_scalar(d, yaml_document_get_node(d, p->key));
      const char *val = yaml_scalar(d, yaml_document_get_node(d, p->value));
      if (!k || !val) {
        fprintf(stderr, "rayc job submit: runtime env: env_vars must map names to strings\n");
        return -1;
      }
      int given = 0;
      for (size_t i = 0; i < o->nenv; i++)
        given |= strcmp(o->env[i]->key, k) == 0;
      if (!given) /* --env wins */
        submit_pair_set(&o->env, &o->nenv, k, val);
    }
    return 0;
  }
  fprintf(stderr,
          "rayc job submit: runtime env: key '%s' is not supported or has the wrong type (known: "
          "working_dir: DIR, env_vars: {NAME: VALUE}, code_path: PATH or [PATH...])\n",
          key);
  return -1;
}

static int submit_load_runtime_env(submit_opts_t *o)
{
  FILE *f = fopen(o->runtime_env, "r");
  if (!f) {
    fprintf(stderr, "rayc job submit: cannot read --runtime-env %s: %s\n", o->runtime_env, strerror(errno));
    return -1;
  }
  yaml_parser_t p;
  yaml_document_t d;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  int rc = yaml_parser_load(&p, &d) ? 0 : -1;
  yaml_node_t *root = rc == 0 ? yaml_document_get_root_node(&d) : NULL;
  if (rc != 0 || (root && root->type != YAML_MAPPING_NODE)) {
    fprintf(stderr, "rayc job submit: --runtime-env %s: %s\n", o->runtime_env,
            rc != 0 ? (p.problem ? p.problem : "not YAML") : "the file must hold a mapping");
    rc = -1;
  }
  for (yaml_node_pair_t *it = root && rc == 0 ? root->data.mapping.pairs.start : NULL;
       it && it < root->data.mapping.pairs.top && rc == 0; it++) {
    const char *k = yaml_scalar(&d, yaml_document_get_node(&d, it->key));
    rc = runtime_env_key(o, &d, k ? k : "?", yaml_document_get_node(&d, it->value));
  }
  if (root || rc == 0)
    yaml_document_delete(&d);
  yaml_parser_delete(&p);
  fclose(f);
  return rc;
}

/* ---- upload and submit ---- */

/* A tar archive given as the working dir: uploaded as it is (checked when nodes unpack it). */
static int submit_read_archive(const char *path, uint64_t max, pkg_t *pkg, char **err)
{
  memset(pkg, 0, sizeof(*pkg));
  FILE *f = fopen(path, "rb");
  if (!f) {
    *err = xasprintf("cannot read %s: %s", path, strerror(errno));
    return RAYC_EIO;
  }
  char buf[65536];
  size_t cap = 0;
  for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;) {
    if (pkg->len + n > cap)
      pkg->data = xrealloc(pkg->data, cap = 2 * (pkg->len + n));
    memcpy(pkg->data + pkg->len, buf, n);
    pkg->len += n;
  }
  fclose(f);
  max = max ? max : PKG_DEFAULT_MAX_BYTES;
  if (pkg->len > max) {
    *err = xasprintf("the working dir archive %s is %zu bytes, more than the limit of %llu bytes", path, pkg->len,
                     (unsigned long long)max);
    pkg_release(pkg);
    return RAYC_EINVALID_ARGUMENT;
  }
  char h[65];
  pkg_sha256_hex(pkg->data, pkg->len, h);
  snprintf(pkg->name, sizeof(pkg->name), "pkg_%s", h);
  return 0;
}

/* Uploads pkg to the KV (namespace "pkg") unless it is there: *have says it was. 0 or an exit
 * status (printed). */
static int submit_kv_put(cli_job_client_t *c, const pkg_t *pkg, int *have)
{
  int rc;
  Rayc__KVKeysRequest kreq = RAYC__KVKEYS_REQUEST__INIT;
  kreq.ns = (char *)"pkg";
  kreq.prefix = pb_bytes(pkg->name, strlen(pkg->name));
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  rc = cli_job_call_raw(c, &rayc__internal_kvgcs_service__descriptor, "InternalKVKeys", &kreq.base, c->timeout_ms,
                        &resp, &detail);
  *have = rc == 0 && ((Rayc__KVKeysReply *)resp)->n_keys > 0;
  pb_free(resp);
  resp = NULL;
  if (rc == 0 && !*have) {
    Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
    put.ns = (char *)"pkg";
    put.key = kreq.prefix;
    put.value = pb_bytes(pkg->data, pkg->len);
    rc = cli_job_call_raw(c, &rayc__internal_kvgcs_service__descriptor, "InternalKVPut", &put.base, c->timeout_ms,
                          &resp, &detail);
    pb_free(resp);
  }
  if (rc != 0) {
    fprintf(stderr, "rayc job submit: cannot upload the working dir to %s: %s\n", c->address,
            detail ? detail : rayc_strerror(rc));
    cli_auth_hint(stderr, &c->auth, rc);
    free(detail);
    return cli_job_exit_for(rc);
  }
  return 0;
}

/* Packs (or reads, for a .tar file) and uploads the working dir into env (its name, size and file
 * list). 0 or an exit status. */
static int submit_upload(cli_job_client_t *c, const submit_opts_t *o, Rayc__JobRuntimeEnv *env, pkg_t *pkg)
{
  char *err = NULL;
  size_t wl = strlen(o->working_dir);
  int rc = wl > 4 && strcmp(o->working_dir + wl - 4, ".tar") == 0
               ? submit_read_archive(o->working_dir, o->max_bytes, pkg, &err)
               : pkg_pack_dir(o->working_dir, o->max_bytes, pkg, &err);
  if (rc != 0) {
    fprintf(stderr, "rayc job submit: %s\n", err ? err : rayc_strerror(rc));
    free(err);
    return CLI_FAIL;
  }
  int have = 0;
  if ((rc = submit_kv_put(c, pkg, &have)) != 0)
    return rc;
  fprintf(stderr, "Working dir %s: %zu files, %llu bytes packed as %s (%s)\n", o->working_dir, pkg->nfiles,
          (unsigned long long)pkg->len, pkg->name, have ? "already uploaded" : "uploaded");
  env->working_dir = pkg->name;
  env->working_dir_bytes = pkg->len;
  env->n_files = pkg->nfiles;
  env->files = xcalloc(pkg->nfiles, sizeof(*env->files));
  for (size_t i = 0; i < pkg->nfiles; i++) {
    env->files[i] = xmalloc(sizeof(**env->files));
    rayc__packed_file__init(env->files[i]);
    env->files[i]->path = pkg->files[i].path;
    env->files[i]->sha256 = pkg->files[i].sha256;
    env->files[i]->size = pkg->files[i].size;
  }
  return 0;
}

/* Fills the submitter from this process: uid, user, host, where the token came from. */
static void submit_who(Rayc__Submitter *u, const cli_job_client_t *c, char *host, size_t hlen)
{
  rayc__submitter__init(u);
  u->uid = (uint32_t)getuid();
  struct passwd *pw = getpwuid(getuid());
  u->user = pw ? pw->pw_name : (char *)"?";
  if (gethostname(host, hlen) != 0)
    snprintf(host, hlen, "?");
  u->host = host;
  u->credential = c->auth.token ? c->auth.where : (char *)"none (the cluster asks for no token)";
}

/* Waits for the job: streams its output, then prints how it ended. Exit 0 for SUCCEEDED. */
static int submit_wait(cli_job_client_t *c, const char *id)
{
  int rc = cli_job_stream_logs(c, id, 1);
  if (rc != 0)
    return rc;
  Rayc__GetJobRequest req = RAYC__GET_JOB_REQUEST__INIT;
  req.submission_id = (char *)id;
  ProtobufCMessage *resp;
  if ((rc = cli_job_call(c, "GetJob", &req.base, &resp)) != 0)
    return rc;
  const Rayc__JobSubmission *j = ((Rayc__GetJobReply *)resp)->job;
  int ok = j->status == RAYC__JOB_STATUS__JOB_SUCCEEDED;
  fprintf(stderr, "Job '%s' %s%s%s\n", id,
          ok                                           ? "succeeded"
          : j->status == RAYC__JOB_STATUS__JOB_STOPPED ? "was stopped"
                                                       : "failed",
          *j->message ? ": " : "", j->message);
  pb_free(resp);
  return ok ? CLI_OK : CLI_FAIL;
}

static int submit_run(cli_job_client_t *c, submit_opts_t *o)
{
  Rayc__JobRuntimeEnv env = RAYC__JOB_RUNTIME_ENV__INIT;
  Rayc__Submitter who;
  Rayc__JobSubmission job = RAYC__JOB_SUBMISSION__INIT;
  pkg_t pkg = {0};
  char host[256];
  int rc = 0;
  if (o->working_dir && pkg_name_valid(o->working_dir) && access(o->working_dir, F_OK) != 0)
    env.working_dir = o->working_dir; /* a package uploaded before (Ray's remote working_dir URI) */
  else if (o->working_dir)
    rc = submit_upload(c, o, &env, &pkg);
  if (rc != 0)
    goto out;
  env.env_vars = o->env;
  env.n_env_vars = o->nenv;
  env.code_path = o->code_path ? o->code_path : (char *)"";
  submit_who(&who, c, host, sizeof(host));
  job.submission_id = o->submission_id ? o->submission_id : (char *)"";
  job.entrypoint = o->entrypoint;
  job.runtime_env = &env;
  job.metadata = o->meta;
  job.n_metadata = o->nmeta;
  job.entrypoint_num_cpus = o->num_cpus;
  job.submitter = &who;
  Rayc__SubmitJobRequest req = RAYC__SUBMIT_JOB_REQUEST__INIT;
  req.job = &job;
  ProtobufCMessage *resp = NULL;
  if ((rc = cli_job_call(c, "SubmitJob", &req.base, &resp)) != 0)
    goto out;
  char *id = xstrdup(((Rayc__SubmitJobReply *)resp)->submission_id);
  pb_free(resp);
  if (strcmp(o->conn.format, "json") == 0)
    printf("{\"submission_id\": \"%s\"}\n", id);
  else
    fprintf(stderr, "Job '%s' submitted successfully\n", id);
  if (!o->no_wait)
    rc = submit_wait(c, id);
  else if (strcmp(o->conn.format, "json") != 0)
    fprintf(stderr,
            "Query its status with `rayc job status %s`, its output with `rayc job logs %s --follow`, "
            "stop it with `rayc job stop %s`\n",
            id, id, id);
  free(id);
out:
  for (size_t i = 0; i < env.n_files; i++)
    free(env.files[i]);
  free(env.files);
  pkg_release(&pkg);
  return rc;
}

int cli_job_submit(int argc, char **argv)
{
  submit_opts_t o;
  int st = submit_parse(&o, argc, argv);
  if (st == CLI_CONTINUE && o.runtime_env && submit_load_runtime_env(&o) != 0)
    st = CLI_USAGE;
  if (st == CLI_CONTINUE) {
    cli_job_client_t c;
    st = cli_job_connect(&c, &o.conn, "job submit");
    if (st == 0) {
      st = submit_run(&c, &o);
      cli_job_disconnect(&c);
    }
  }
  submit_opts_release(&o);
  return st;
}
