/*
 * Working-directory packages: SHA-256, packing a directory (libarchive, deterministic) and
 * installing a package once per node. Unpacking is in pkg_unpack.c. See pkg.h.
 */
#include "common/pkg.h"

#include "common/ids.h"
#include "common/status.h"
#include "common/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void pkg_hex(const unsigned char *md, char out[65])
{
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hx[md[i] >> 4];
    out[2 * i + 1] = hx[md[i] & 15];
  }
  out[64] = '\0';
}

void pkg_sha256_hex(const void *data, size_t len, char out[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  pkg_hex(md, out);
}

void pkg_entrypoint_reservation_id(const char *submission_id, uint8_t out[18])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  char *text = xasprintf("entrypoint:%s", submission_id);
  EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
  memcpy(out, md, 18);
  free(text);
}

int pkg_name_valid(const char *name)
{
  if (strncmp(name, "pkg_", 4) != 0 || strlen(name) != 68)
    return 0;
  for (const char *p = name + 4; *p; p++)
    if (!strchr("0123456789abcdef", *p))
      return 0;
  return 1;
}

/* ---- packing ---- */

typedef struct packer {
  struct archive *a;
  pkg_t *out;
  size_t cap;
  const char *root;
  char **ignore; /* .raycignore patterns */
  size_t nignore;
  uint64_t max;
  char *err;
  int rc;
} packer_t;

static la_ssize_t pack_write(struct archive *a, void *arg, const void *buf, size_t n)
{
  (void)a;
  packer_t *p = arg;
  if (p->out->len + n > p->cap) {
    while (p->out->len + n > p->cap)
      p->cap = p->cap ? 2 * p->cap : 1 << 16;
    p->out->data = xrealloc(p->out->data, p->cap);
  }
  memcpy(p->out->data + p->out->len, buf, n);
  p->out->len += n;
  return (la_ssize_t)n;
}

static int pack_fail(packer_t *p, int rc, char *msg)
{
  if (!p->err)
    p->err = msg;
  else
    free(msg);
  p->rc = rc;
  return rc;
}

static void pack_load_ignore(packer_t *p)
{
  char *path = xasprintf("%s/.raycignore", p->root), line[1024];
  FILE *f = fopen(path, "r");
  free(path);
  while (f && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!*line || *line == '#')
      continue;
    p->ignore = xrealloc(p->ignore, (p->nignore + 1) * sizeof(*p->ignore));
    p->ignore[p->nignore++] = xstrdup(line);
  }
  if (f)
    fclose(f);
}

/* 1 when rel (name = its last component) is left out of the package. */
static int pack_ignored(const packer_t *p, const char *rel, const char *name, int is_dir)
{
  if (strcmp(name, ".git") == 0)
    return 1;
  for (size_t i = 0; i < p->nignore; i++) {
    char pat[1024];
    snprintf(pat, sizeof(pat), "%s", p->ignore[i]);
    size_t n = strlen(pat);
    int dir_only = n > 1 && pat[n - 1] == '/';
    if (dir_only)
      pat[n - 1] = '\0';
    if (dir_only && !is_dir)
      continue;
    const char *pp = pat[0] == '/' ? pat + 1 : pat;
    int anchored = strchr(pat, '/') != NULL;
    if (fnmatch(pp, anchored ? rel : name, FNM_PATHNAME) == 0)
      return 1;
  }
  return 0;
}

/* Adds the regular file at abs as rel: header, data, and its SHA-256 in the file list. */
static int pack_file(packer_t *p, struct archive_entry *e, const char *abs, const char *rel, const struct stat *st)
{
  if ((p->out->bytes += (uint64_t)st->st_size) > p->max)
    return pack_fail(p, RAYC_EINVALID_ARGUMENT,
                     xasprintf("the working directory %s holds more than the limit of %llu bytes (at least %llu "
                               "bytes of files; leave files out with .raycignore, or raise the limit)",
                               p->root, (unsigned long long)p->max, (unsigned long long)p->out->bytes));
  int fd = open(abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return pack_fail(p, -errno, xasprintf("cannot read %s: %s", abs, strerror(errno)));
  archive_entry_set_size(e, st->st_size);
  archive_entry_set_perm(e, (st->st_mode & 0100) ? 0755 : 0644);
  archive_write_header(p->a, e);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  char buf[65536];
  ssize_t n;
  off_t done = 0;
  while (done < st->st_size && (n = read(fd, buf, sizeof(buf))) > 0) {
    if (n > st->st_size - done)
      n = (ssize_t)(st->st_size - done); /* the file grew while we read it: keep the size announced */
    archive_write_data(p->a, buf, (size_t)n);
    EVP_DigestUpdate(md, buf, (size_t)n);
    done += n;
  }
  close(fd);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dn = 0;
  EVP_DigestFinal_ex(md, d, &dn);
  EVP_MD_CTX_free(md);
  if (done != st->st_size)
    return pack_fail(p, RAYC_EIO, xasprintf("%s changed size while it was packed", abs));
  p->out->files = xrealloc(p->out->files, (p->out->nfiles + 1) * sizeof(*p->out->files));
  pkg_file_t *f = &p->out->files[p->out->nfiles++];
  f->path = xstrdup(rel);
  f->size = (uint64_t)st->st_size;
  pkg_hex(d, f->sha256);
  return 0;
}

static int pack_dir(packer_t *p, const char *rel);

/* Adds one directory entry (abs, rel). */
static int pack_one(packer_t *p, const char *abs, const char *rel, const char *name)
{
  struct stat st;
  if (lstat(abs, &st) != 0)
    return pack_fail(p, -errno, xasprintf("cannot stat %s: %s", abs, strerror(errno)));
  if (pack_ignored(p, rel, name, S_ISDIR(st.st_mode)))
    return 0;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
    return pack_fail(p, RAYC_EINVALID_ARGUMENT,
                     xasprintf("%s is not a file, directory or symbolic link (a device, FIFO or socket): leave it "
                               "out with .raycignore",
                               abs));
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, rel);
  archive_entry_set_filetype(e, S_ISREG(st.st_mode) ? AE_IFREG : S_ISDIR(st.st_mode) ? AE_IFDIR : AE_IFLNK);
  archive_entry_set_mtime(e, 0, 0);
  int rc = 0;
  if (S_ISREG(st.st_mode)) {
    rc = pack_file(p, e, abs, rel, &st);
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(abs, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    int depth = 1;
    for (const char *c = rel; *c; c++)
      depth += *c == '/';
    const char *why = pkg_link_target_check(target, depth);
    if (why) {
      archive_entry_free(e);
      return pack_fail(p, RAYC_EINVALID_ARGUMENT,
                       xasprintf("the working directory's link %s is refused: %s (%s): links must stay inside it", rel,
                                 why, target));
    }
    archive_entry_set_perm(e, 0777);
    archive_entry_set_symlink(e, target);
    archive_write_header(p->a, e);
  } else {
    archive_entry_set_perm(e, 0755);
    archive_write_header(p->a, e);
    rc = pack_dir(p, rel);
  }
  archive_entry_free(e);
  return rc;
}

/* Adds the entries of root/rel, sorted by name (so the same tree packs to the same bytes). */
static int pack_dir(packer_t *p, const char *rel)
{
  char *abs = *rel ? xasprintf("%s/%s", p->root, rel) : xstrdup(p->root);
  struct dirent **names = NULL;
  int n = scandir(abs, &names, NULL, alphasort);
  if (n < 0) {
    int rc = pack_fail(p, -errno, xasprintf("cannot read the directory %s: %s", abs, strerror(errno)));
    free(abs);
    return rc;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    const char *nm = names[i]->d_name;
    if (rc == 0 && strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0) {
      char *cabs = xasprintf("%s/%s", abs, nm), *crel = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
      rc = pack_one(p, cabs, crel, nm);
      free(cabs);
      free(crel);
    }
    free(names[i]);
  }
  free(names);
  free(abs);
  return rc;
}

int pkg_pack_dir(const char *dir, uint64_t max_bytes, pkg_t *out, char **err)
{
  memset(out, 0, sizeof(*out));
  packer_t p = {.out = out, .root = dir, .max = max_bytes ? max_bytes : PKG_DEFAULT_MAX_BYTES};
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    pack_fail(&p, RAYC_EINVALID_ARGUMENT, xasprintf("the working directory %s is not a directory", dir));
  } else {
    pack_load_ignore(&p);
    p.a = archive_write_new();
    archive_write_set_format_pax_restricted(p.a);
    archive_write_set_bytes_in_last_block(p.a, 1);
    archive_write_open(p.a, &p, NULL, pack_write, NULL);
    pack_dir(&p, "");
    archive_write_close(p.a);
    archive_write_free(p.a);
  }
  for (size_t i = 0; i < p.nignore; i++)
    free(p.ignore[i]);
  free(p.ignore);
  if (p.rc == 0) {
    char h[65];
    pkg_sha256_hex(out->data, out->len, h);
    snprintf(out->name, sizeof(out->name), "pkg_%s", h);
  } else {
    pkg_release(out);
  }
  if (err)
    *err = p.err;
  else
    free(p.err);
  return p.rc;
}

void pkg_release(pkg_t *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->nfiles; i++)
    free(p->files[i].path);
  free(p->files);
  free(p->data);
  memset(p, 0, sizeof(*p));
}

/* ---- installing ---- */

int pkg_install(const char *runtime_env_dir, const char *name, const void *data, size_t len, char **path, char **err)
{
  *path = NULL;
  if (err)
    *err = NULL;
  char h[65];
  pkg_sha256_hex(data, len, h);
  if (!pkg_name_valid(name) || strcmp(name + 4, h) != 0) {
    if (err)
      *err = xasprintf("package %s: its bytes hash to %s: refused", name, h);
    return RAYC_EINVALID_ARGUMENT;
  }
  char *dir = xasprintf("%s/%s", runtime_env_dir, name);
  struct stat st;
  int rc = mkdir_p(runtime_env_dir, 0700);
  if (rc == 0 && lstat(dir, &st) != 0) {
    uint8_t r[8];
    id_random(r, sizeof(r));
    char *tmp = xasprintf("%s/.tmp-%s-%d-%02x%02x%02x%02x", runtime_env_dir, name, (int)getpid(), r[0], r[1], r[2],
                          r[3]);
    rc = pkg_unpack(data, len, tmp, NULL, err);
    if (rc == 0 && rename(tmp, dir) != 0) {
      rc = errno == EEXIST || errno == ENOTEMPTY ? 0 : -errno; /* another process won the race: use its copy */
      pkg_remove_tree(tmp);
    }
    free(tmp);
  }
  if (rc == 0)
    *path = dir;
  else
    free(dir);
  return rc;
}
