/*
 * The cluster token: a shared secret every gRPC call of a cluster carries as
 * `authorization` metadata (common/rpc.h checks it). `rayc start --head` makes
 * one (token_generate: 32 random bytes from getrandom, as 64 hex characters),
 * keeps it in files of mode 0600 (token_write_file), and every daemon, worker,
 * driver and CLI command finds it by one rule (token_find).
 *
 * The lookup rule (token_find), first match wins:
 *   1. an explicit file: `--token-file FILE` of the CLI, or $RAYC_TOKEN_FILE
 * (for the CLI the two are one setting, the flag winning); a file named but
 * unreadable is an error, never skipped;
 *   2. $RAYC_TOKEN, the token itself (how the raylet hands it to the workers it
 * starts);
 *   3. <temp-dir>/session_latest/cluster_token: the copy kept by the node this
 * machine started last (the same session `rayc status` finds the GCS address
 * in);
 *   4. <temp-dir>/cluster_token: the file `rayc start --head` wrote.
 * <temp-dir> is the caller's (--temp-dir, rayc_config.temp_dir), else
 * $RAYC_TEMP_DIR, else /tmp/rayc.
 *
 * A token is 1 to TOKEN_MAX printable ASCII characters without spaces (it
 * travels as an HTTP/2 header value). Files hold it on their first line; white
 * space around it is ignored.
 */
#ifndef RAYC_COMMON_TOKEN_H
#define RAYC_COMMON_TOKEN_H

#include <stddef.h>

enum { TOKEN_BYTES = 32, TOKEN_HEX_LEN = 2 * TOKEN_BYTES, TOKEN_MAX = 512 };

#define TOKEN_FILE_NAME        "cluster_token"
#define TOKEN_DEFAULT_TEMP_DIR "/tmp/rayc"

/* Writes a new random token (TOKEN_HEX_LEN lowercase hex characters and a NUL)
 * into out. 0, or a negative errno when the kernel's random source fails. */
int token_generate(char out[TOKEN_HEX_LEN + 1]);

/* 1 when t is a well-formed token (see above), else 0. Accepts NULL (0). */
int token_valid(const char *t);

/* Reads the token in path. On 0, *out is new (free with token_free). On error,
 * a negative errno (the file cannot be read) or RAYC_EINVALID_ARGUMENT (it
 * holds no well-formed token), and *err (if not NULL) is a new message naming
 * the file. A file that others may read is used, with a warning logged. */
int token_read_file(const char *path, char **out, char **err);

/* Writes token and a newline to path with mode 0600, through a temporary file
 * and rename(), so readers never see half a token and the file is never
 * readable by others. 0 or a negative errno. */
int token_write_file(const char *path, const char *token);

/* Finds the token by the rule above. file: an explicit token file (NULL or "":
 * none; the CLI passes its --token-file setting, drivers NULL so that
 * $RAYC_TOKEN_FILE is read); temp_dir: NULL for $RAYC_TEMP_DIR or /tmp/rayc. On
 * 0, *out is the new token (token_free) and *where (if not NULL) a new text
 * saying where it came from ("RAYC_TOKEN", a path) for messages; the token
 * itself is never put in a message. RAYC_ENOT_FOUND when no source has one
 * (*err says which were tried); another negative code when an explicit source
 * is broken (*err says why). *err may be NULL. */
int token_find(const char *file, const char *temp_dir, char **out, char **where, char **err);

/* Overwrites and frees a token. Accepts NULL. */
void token_free(char *token);

#endif
