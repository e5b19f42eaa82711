/* Resolving "pkg_<sha256>/..." code path entries to this node's copy of the package. See cw_rtenv.h. */
#include "worker/cw_rtenv.h"

#include "common/log.h"
#include "common/pb.h"
#include "common/pkg.h"
#include "common/status.h"
#include "common/util.h"
#include "worker/cw.h"
#include "worker/cw_actor.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Makes sure package name is installed here; *dir new. 0 or a negative code (error set). */
static int rtenv_install(cw_t *cw, const char *session_dir, const char *name, char **dir)
{
  char *envdir = xasprintf("%s/runtime_env", session_dir), *want = xasprintf("%s/%s", envdir, name);
  struct stat st;
  int rc = 0;
  if (stat(want, &st) == 0 && S_ISDIR(st.st_mode)) { /* unpacked already by another process here */
    *dir = want;
    free(envdir);
    return 0;
  }
  free(want);
  if (!cw) { /* resolving locally only (rayc_worker_preload): not unpacked here yet */
    free(envdir);
    return cw_set_error(RAYC_ENOT_FOUND, "the working dir %s is not unpacked on this node yet", name);
  }
  char *addr = cw_actor_gcs_address(cw), *detail = NULL, *err = NULL;
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"pkg";
  req.key = pb_bytes(name, strlen(name));
  ProtobufCMessage *resp = NULL;
  rc = addr ? rpc_call_sync(rpc_channel_get(cw->client, addr), &rayc__internal_kvgcs_service__descriptor,
                            "InternalKVGet", &req.base, 60000, &resp, &detail)
            : RAYC_ENOT_CONNECTED;
  Rayc__KVGetReply *r = (Rayc__KVGetReply *)resp;
  if (rc == 0 && !r->found)
    rc = RAYC_ENOT_FOUND;
  if (rc == 0)
    rc = pkg_install(envdir, name, r->value.data, r->value.len, dir, &err);
  if (rc != 0)
    cw_set_error(rc, "cannot install the working dir %s on this node: %s", name,
                 err      ? err
                 : detail ? detail
                          : rayc_strerror(rc));
  else
    log_info("working dir %s installed at %s (%zu bytes packed)", name, *dir, r->value.len);
  pb_free(resp);
  free(detail);
  free(err);
  free(addr);
  free(envdir);
  return rc;
}

int cw_rtenv_resolve(cw_t *cw, const char *session_dir, const char *code_path, char **out, char **workdir)
{
  *out = xstrdup("");
  *workdir = NULL;
  char *copy = xstrdup(code_path ? code_path : ""), *save = NULL;
  int rc = 0;
  for (char *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save)) {
    char name[69], *local = NULL;
    if (strlen(p) >= 68 && (p[68] == '/' || p[68] == '\0')) {
      snprintf(name, sizeof(name), "%.68s", p);
      char *dir = NULL;
      if (pkg_name_valid(name) && (rc = rtenv_install(cw, session_dir, name, &dir)) == 0) {
        local = xasprintf("%s%s", dir, p + 68);
        if (!*workdir)
          *workdir = xstrdup(dir);
      }
      free(dir);
    }
    char *next = xasprintf("%s%s%s", *out, **out ? ":" : "", local ? local : p);
    free(*out);
    *out = next;
    free(local);
  }
  free(copy);
  if (rc != 0) {
    free(*out);
    *out = NULL;
    free(*workdir);
    *workdir = NULL;
  }
  return rc;
}
