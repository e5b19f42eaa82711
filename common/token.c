/* The cluster token: making it, keeping it in 0600 files, and finding it (see
 * token.h). */
#include "common/token.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int token_generate(char out[TOKEN_HEX_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[TOKEN_BYTES];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0 && errno != EINTR)
      return -errno;
    got += n > 0 ? (size_t)n : 0;
  }
  for (size_t i = 0; i < sizeof(raw); i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[TOKEN_HEX_LEN] = '\0';
  explicit_bzero(raw, sizeof(raw));
  return 0;
}

int token_valid(const char *t)
{
  size_t n = t ? strlen(t) : 0;
  if (n == 0 || n > TOKEN_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (t[i] < 0x21 || t[i] > 0x7e)
      return 0;
  return 1;
}

void token_free(char *token)
{
  if (token)
    explicit_bzero(token, strlen(token));
  free(token);
}

/* Returns the first line of buf with white space around it removed (in place).
 */
static char *token_trim(char *buf)
{
  buf[strcspn(buf, "\r\n")] = '\0';
  while (isspace((unsigned char)*buf))
    buf++;
  size_t n = strlen(buf);
  while (n > 0 && isspace((unsigned char)buf[n - 1]))
    buf[--n] = '\0';
  return buf;
}

static int token_fail(char **err, int rc, char *msg)
{
  if (err)
    *err = msg;
  else
    free(msg);
  return rc;
}

int token_read_file(const char *path, char **out, char **err)
{
  char buf[TOKEN_MAX + 64];
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int rc = -errno;
    if (fd >= 0)
      close(fd);
    return token_fail(err, rc, xasprintf("cannot read the token file %s: %s", path, strerror(-rc)));
  }
  ssize_t n = S_ISREG(st.st_mode) ? read(fd, buf, sizeof(buf) - 1) : -1;
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  char *t = token_trim(buf);
  int ok = token_valid(t);
  if (ok && (st.st_mode & 077))
    log_warn("the token file %s may be read by other users (mode %03o): chmod "
             "600 it",
             path, (unsigned)(st.st_mode & 0777));
  if (ok)
    *out = xstrdup(t);
  explicit_bzero(buf, sizeof(buf));
  if (!ok)
    return token_fail(err, RAYC_EINVALID_ARGUMENT,
                      xasprintf("the token file %s holds no token (one line of up to %d printable "
                                "characters without spaces)",
                                path, TOKEN_MAX));
  return 0;
}

int token_write_file(const char *path, const char *token)
{
  char *line = xasprintf("%s\n", token);
  int rc = write_file_atomic(path, line, strlen(line));
  free(line);
  return rc;
}

/* One step of the rule: a file that may be missing (1: used, 0: absent, < 0:
 * broken). */
static int token_try_file(const char *path, int must_exist, char **out, char **where, char **err)
{
  if (!must_exist && access(path, F_OK) != 0)
    return 0;
  int rc = token_read_file(path, out, err);
  if (rc < 0)
    return rc;
  if (where)
    *where = xstrdup(path);
  return 1;
}

int token_find(const char *file, const char *temp_dir, char **out, char **where, char **err)
{
  *out = NULL;
  if (where)
    *where = NULL;
  if (err)
    *err = NULL;
  if (!file || !*file)
    file = getenv("RAYC_TOKEN_FILE");
  if (file && *file) {
    int rc = token_try_file(file, 1, out, where, err);
    return rc < 0 ? rc : 0;
  }
  const char *env = getenv("RAYC_TOKEN");
  if (env && *env) {
    if (!token_valid(env))
      return token_fail(err, RAYC_EINVALID_ARGUMENT,
                        xstrdup("RAYC_TOKEN is not a token (printable "
                                "characters without spaces)"));
    *out = xstrdup(env);
    if (where)
      *where = xstrdup("RAYC_TOKEN");
    return 0;
  }
  if (!temp_dir || !*temp_dir)
    temp_dir = getenv("RAYC_TEMP_DIR");
  if (!temp_dir || !*temp_dir)
    temp_dir = TOKEN_DEFAULT_TEMP_DIR;
  char *latest = xasprintf("%s/session_latest/" TOKEN_FILE_NAME, temp_dir);
  char *head = xasprintf("%s/" TOKEN_FILE_NAME, temp_dir);
  int rc = token_try_file(latest, 0, out, where, err);
  if (rc == 0)
    rc = token_try_file(head, 0, out, where, err);
  if (rc == 0)
    rc = token_fail(err, RAYC_ENOT_FOUND,
                    xasprintf("no cluster token: no --token-file, "
                              "RAYC_TOKEN_FILE or RAYC_TOKEN, and "
                              "neither %s nor %s exists",
                              latest, head));
  free(latest);
  free(head);
  return rc < 0 ? rc : 0;
}
