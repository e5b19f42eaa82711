/*
 * Runtime environments on the worker side (issue 12): a code path entry "pkg_<sha256>/<path>" names a
 * file inside a job's working-dir package. cw_rtenv_resolve() makes sure the package is unpacked on
 * this node (fetched from the GCS KV, namespace "pkg", and installed once per node under
 * <session>/runtime_env/<name>/ by pkg_install) and returns the code path with such entries turned
 * into local paths. C workers load their task libraries from it; Python workers can use the same
 * function for their import path. Other entries pass through unchanged.
 */
#ifndef RAYC_CW_RTENV_H
#define RAYC_CW_RTENV_H

struct cw;

/* Resolves code_path (borrowed) for this node. 0 with *out new (free()) and *workdir new (the first
 * package's directory, or NULL when there is none); or a negative code with the error set
 * (rayc_last_error) and *out NULL. cw must have its gRPC client; NULL: packages are only looked up
 * where they are unpacked already (RAYC_ENOT_FOUND when one is not), nothing is fetched. */
int cw_rtenv_resolve(struct cw *cw, const char *session_dir, const char *code_path, char **out, char **workdir);

#endif
