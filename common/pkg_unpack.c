/*
 * Safe unpacking of working-directory packages (see pkg.h for what is refused and why).
 *
 * Design. libarchive reads the archive (tar in every dialect: ustar, pax, GNU long names); this file
 * decides what may be written and writes it. Each entry's path is normalised (leading "./" and "."
 * components dropped, ".." and absolute paths refused), then its parent directories are walked from
 * the root with openat(O_DIRECTORY|O_NOFOLLOW), made 0700 when missing, so that a link anywhere on
 * the way fails the entry instead of being followed. Invariant: every directory on an entry's path
 * is a real directory under the root, which is what makes the lexical check of link targets
 * (leading ".." only, never above the root) sound. Sizes are checked against the limits before any
 * byte is written, and against the bytes the archive really holds.
 */
#include "common/pkg.h"

#include "common/status.h"
#include "common/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct unpack {
  struct archive *a;
  size_t len; /* of the archive */
  int root;   /* the destination directory */
  unpack_limits_t lim;
  uint64_t total;
  uint32_t entries;
  char *err;
} unpack_t;

static int up_fail(unpack_t *u, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int up_fail(unpack_t *u, int rc, const char *fmt, ...)
{
  if (!u->err) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&u->err, fmt, ap) < 0)
      u->err = NULL;
    va_end(ap);
  }
  return rc;
}

/* Normalises an entry name in place into "a/b/c" (no "", "." or leading "./");
 * returns NULL, or a static reason why it is refused. *depth is the number of
 * components. */
static const char *path_clean(char *name, int *depth)
{
  if (strlen(name) > UNPACK_NAME_MAX)
    return "its name is too long";
  if (name[0] == '/')
    return "its name is absolute";
  char *out = name, *save = NULL;
  size_t used = 0;
  *depth = 0;
  char *copy = xstrdup(name);
  for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0) {
      free(copy);
      return "its name has a '..' component";
    }
    if (strlen(c) > 255) {
      free(copy);
      return "a component of its name is longer than 255 bytes";
    }
    used += (size_t)sprintf(out + used, "%s%s", used ? "/" : "", c);
    (*depth)++;
  }
  free(copy);
  out[used] = '\0';
  return NULL;
}

/* A symbolic link target: relative, ".." only as leading components, never
 * climbing above the root from a link at depth (its parent has depth - 1
 * components). NULL or the reason. */
const char *pkg_link_target_check(const char *target, int depth)
{
  if (!target[0])
    return "its link target is empty";
  if (target[0] == '/')
    return "its link target is absolute";
  if (strlen(target) > UNPACK_NAME_MAX)
    return "its link target is too long";
  int up = 0, down = 0;
  for (const char *c = target; *c;) {
    size_t n = strcspn(c, "/");
    if (n == 2 && c[0] == '.' && c[1] == '.') {
      if (down)
        return "its link target has '..' after a name";
      up++;
    } else if (n && !(n == 1 && c[0] == '.')) {
      down++;
    }
    c += n;
    c += *c == '/';
  }
  if (up > depth - 1)
    return "its link target points outside the directory";
  return NULL;
}

/* Opens the directory holding path's last component, creating missing
 * directories (0700) and following no link; *last points into path. Returns the
 * fd or a negative errno. */
static int path_open_parent(unpack_t *u, char *path, const char **last)
{
  int fd = dup(u->root);
  char *c = path;
  for (char *slash; fd >= 0 && (slash = strchr(c, '/'));) {
    *slash = '\0';
    if (mkdirat(fd, c, 0700) != 0 && errno != EEXIST) {
      int rc = -errno;
      close(fd);
      *slash = '/';
      return rc;
    }
    int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = next < 0 ? -errno : 0;
    close(fd);
    *slash = '/';
    if (rc < 0)
      return rc == -ELOOP || rc == -ENOTDIR ? -ENOTDIR : rc;
    fd = next;
    c = slash + 1;
  }
  *last = c;
  return fd < 0 ? -errno : fd;
}

/* ---- entries ---- */

static int entry_file(unpack_t *u, int dfd, const char *last, const char *name, unsigned mode)
{
  int fd = openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode & 0100) ? 0700 : 0600);
  if (fd < 0)
    return up_fail(u, errno == EEXIST ? RAYC_EINVALID_ARGUMENT : -errno, "%s: cannot create it: %s", name,
                   errno == EEXIST ? "it is in the archive twice (or over a directory or link)" : strerror(errno));
  int rc = 0;
  char buf[65536];
  for (;;) {
    la_ssize_t n = archive_read_data(u->a, buf, sizeof(buf));
    if (n == 0)
      break;
    if (n < 0) {
      rc = up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: the archive is cut short or damaged: %s", name,
                   archive_error_string(u->a));
      break;
    }
    for (la_ssize_t done = 0; done < n && rc == 0;) {
      ssize_t w = write(fd, buf + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        rc = up_fail(u, w < 0 ? -errno : -EIO, "%s: write failed: %s", name, w < 0 ? strerror(errno) : "no progress");
      else
        done += w;
    }
    if (rc != 0)
      break;
  }
  if (close(fd) != 0 && rc == 0)
    rc = up_fail(u, -errno, "%s: close failed: %s", name, strerror(errno));
  return rc;
}

static int entry_dir(unpack_t *u, int dfd, const char *last, const char *name)
{
  struct stat st;
  if (mkdirat(dfd, last, 0700) == 0)
    return 0;
  if (errno == EEXIST && fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    return 0; /* made earlier as a file's parent, or listed twice: harmless for
                 a directory */
  return up_fail(u, errno == EEXIST ? RAYC_EINVALID_ARGUMENT : -errno, "%s: cannot make the directory: %s", name,
                 errno == EEXIST ? "a file or link of that name exists" : strerror(errno));
}

static int entry_symlink(unpack_t *u, int dfd, const char *last, const char *name, const char *target, int depth)
{
  const char *why = pkg_link_target_check(target ? target : "", depth);
  if (why)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: refused: %s (%s)", name, why, target ? target : "");
  if (symlinkat(target, dfd, last) != 0)
    return up_fail(u, errno == EEXIST ? RAYC_EINVALID_ARGUMENT : -errno, "%s: cannot make the link: %s", name,
                   errno == EEXIST ? "it is in the archive twice" : strerror(errno));
  return 0;
}

/* Checks an entry's type and size against the limits and the bytes the archive holds. */
static int entry_check(unpack_t *u, struct archive_entry *e, const char *name)
{
  mode_t type = archive_entry_filetype(e);
  if (archive_entry_hardlink(e))
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: refused: hard links are not unpacked", name);
  if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: refused: only files, directories and symbolic links are unpacked",
                   name);
  if (++u->entries > u->lim.max_entries)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "the archive has more than %u entries", u->lim.max_entries);
  if (type != AE_IFREG)
    return 0;
  uint64_t size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ? (uint64_t)archive_entry_size(e) : 0;
  la_int64_t pos = archive_read_header_position(u->a);
  if (pos < 0 || size > u->len - (uint64_t)pos)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: the archive is cut short (an entry of %llu bytes)", name,
                   (unsigned long long)size);
  if (size > u->lim.max_file)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: a file of %llu bytes is larger than the limit (%llu)", name,
                   (unsigned long long)size, (unsigned long long)u->lim.max_file);
  if ((u->total += size) > u->lim.max_total)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "the files add up to more than the limit (%llu bytes)",
                   (unsigned long long)u->lim.max_total);
  return 0;
}

/* Unpacks one entry (the archive is positioned at its data). */
static int entry_unpack(unpack_t *u, struct archive_entry *e)
{
  const char *raw = archive_entry_pathname(e);
  char *name = xstrdup(raw ? raw : "");
  int depth, rc;
  const char *why = path_clean(name, &depth);
  if (why) {
    rc = up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: refused: %s", name, why);
    goto out;
  }
  if (depth == 0) {
    rc = archive_entry_filetype(e) == AE_IFDIR ? 0 : up_fail(u, RAYC_EINVALID_ARGUMENT, "an entry has an empty name");
    goto out;
  }
  if ((rc = entry_check(u, e, name)) < 0)
    goto out;
  const char *last = name;
  int dfd = path_open_parent(u, name, &last);
  if (dfd < 0) {
    rc = up_fail(u, dfd == -ENOTDIR ? RAYC_EINVALID_ARGUMENT : dfd, "%s: refused: %s", name,
                 dfd == -ENOTDIR ? "it would be written through a link or a file" : strerror(-dfd));
    goto out;
  }
  mode_t type = archive_entry_filetype(e);
  if (type == AE_IFDIR)
    rc = entry_dir(u, dfd, last, name);
  else if (type == AE_IFLNK)
    rc = entry_symlink(u, dfd, last, name, archive_entry_symlink(e), depth);
  else
    rc = entry_file(u, dfd, last, name, (unsigned)archive_entry_perm(e));
  close(dfd);
out:
  free(name);
  return rc;
}

static int unpack_walk(unpack_t *u)
{
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(u->a, &e);
    if (r == ARCHIVE_EOF)
      return 0;
    if (r != ARCHIVE_OK) /* a warning too: malformed pax records, names that do not convert */
      return up_fail(u, RAYC_EINVALID_ARGUMENT, "not a valid tar or zip archive: %s", archive_error_string(u->a));
    int rc = entry_unpack(u, e);
    if (rc < 0)
      return rc;
  }
}

/* Removes everything under the directory fd (which it closes), following no
 * link. */
static void remove_under(int fd)
{
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  for (struct dirent *e; (e = readdir(d));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) {
      remove_under(sub);
      unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    } else {
      unlinkat(dirfd(d), e->d_name, 0);
    }
  }
  closedir(d);
}

void pkg_remove_tree(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    remove_under(fd);
    rmdir(path);
  } else {
    unlink(path);
  }
}

int pkg_unpack(const void *data, size_t len, const char *dir, const unpack_limits_t *lim, char **err)
{
  unpack_t u = {.len = len, .root = -1};
  u.lim = lim ? *lim : (unpack_limits_t){0};
  if (!u.lim.max_total)
    u.lim.max_total = UNPACK_DEFAULT_TOTAL;
  if (!u.lim.max_file || u.lim.max_file > u.lim.max_total)
    u.lim.max_file = u.lim.max_total;
  if (!u.lim.max_entries)
    u.lim.max_entries = UNPACK_DEFAULT_ENTRIES;
  int rc = 0;
  if (mkdir(dir, 0700) != 0)
    rc = up_fail(&u, errno == EEXIST ? RAYC_EALREADY_EXISTS : -errno, "cannot make %s: %s", dir, strerror(errno));
  else if ((u.root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    rc = up_fail(&u, -errno, "cannot open %s: %s", dir, strerror(errno));
  if (rc == 0) {
    u.a = archive_read_new();
    archive_read_support_format_tar(u.a);
    archive_read_support_format_zip(u.a); /* packages Ray's job clients upload (/api/packages/) */
    if (archive_read_open_memory(u.a, data, len) != ARCHIVE_OK)
      rc = up_fail(&u, RAYC_EINVALID_ARGUMENT, "not a valid tar or zip archive: %s", archive_error_string(u.a));
    else
      rc = unpack_walk(&u);
    archive_read_free(u.a);
  }
  if (rc < 0 && u.root >= 0) {
    remove_under(dup(u.root));
    rmdir(dir);
  }
  if (u.root >= 0)
    close(u.root);
  if (err)
    *err = u.err;
  else
    free(u.err);
  return rc;
}
