/*
 * Safe tar unpacking (see unpack.h for what is refused and why).
 *
 * Design. The archive is walked block by block (512 bytes). Meta entries (pax
 * 'x', GNU 'L'/'K') set the name or link target of the next real entry; pax 'g'
 * is skipped. Each real entry's path is normalised (leading "./" and "."
 * components dropped, ".." and absolute paths refused), then its parent
 * directories are walked from the root with openat(O_DIRECTORY|O_NOFOLLOW),
 * made 0700 when missing, so that a link anywhere on the way fails the entry
 * instead of being followed. Invariant: every directory on an entry's path is a
 * real directory under the root, which is what makes the lexical check of link
 * targets (leading ".." only, never above the root) sound.
 */
#include "common/unpack.h"

#include "common/status.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BLOCK = 512, META_MAX = 64 << 10 };

/* ustar header field offsets and sizes */
enum {
  H_NAME = 0,
  H_NAME_LEN = 100,
  H_MODE = 100,
  H_SIZE = 124,
  H_SIZE_LEN = 12,
  H_CHKSUM = 148,
  H_CHKSUM_LEN = 8,
  H_TYPE = 156,
  H_LINK = 157,
  H_LINK_LEN = 100,
  H_MAGIC = 257,
  H_PREFIX = 345,
  H_PREFIX_LEN = 155,
};

typedef struct unpack {
  const uint8_t *p;
  size_t len, off;
  int root; /* the destination directory */
  unpack_limits_t lim;
  uint64_t total;
  uint32_t entries;
  char *long_name,
      *long_link; /* from a pax or GNU header, for the next entry */
  int has_pax_size;
  uint64_t pax_size;
  char *err;
} unpack_t;

static int up_fail(unpack_t *u, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int up_fail(unpack_t *u, int rc, const char *fmt, ...) {
  if (!u->err) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&u->err, fmt, ap) < 0)
      u->err = NULL;
    va_end(ap);
  }
  return rc;
}

/* ---- header fields ---- */

/* Parses a numeric field: octal (NUL/space padded) or GNU base-256; 0, or -1
 * when malformed. */
static int tar_num(const uint8_t *f, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (f[0] &
      0x80) { /* base-256: big-endian, first byte's high bit is the marker */
    if (f[0] != 0x80)
      return -1; /* negative or too large */
    for (size_t i = 1; i < n; i++) {
      if (v >> 56)
        return -1;
      v = (v << 8) | f[i];
    }
    *out = v;
    return 0;
  }
  size_t i = 0;
  while (i < n && f[i] == ' ')
    i++;
  size_t digits = 0;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
    if (v >> 60)
      return -1;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  for (; i < n; i++)
    if (f[i] != ' ' && f[i] != '\0')
      return -1;
  *out = v;
  return digits ? 0 : -1;
}

static int tar_checksum_ok(const uint8_t *h) {
  uint64_t want;
  if (tar_num(h + H_CHKSUM, H_CHKSUM_LEN, &want) < 0)
    return 0;
  uint64_t sum = 0;
  int64_t ssum = 0; /* some old tars summed signed chars */
  for (size_t i = 0; i < BLOCK; i++) {
    uint8_t c = i >= H_CHKSUM && i < H_CHKSUM + H_CHKSUM_LEN ? ' ' : h[i];
    sum += c;
    ssum += (signed char)c;
  }
  return sum == want || (uint64_t)ssum == want;
}

static int block_is_zero(const uint8_t *h) {
  for (size_t i = 0; i < BLOCK; i++)
    if (h[i])
      return 0;
  return 1;
}

/* Copies a NUL-padded field of n bytes into a new string. */
static char *tar_str(const uint8_t *f, size_t n) {
  size_t len = strnlen((const char *)f, n);
  char *s = xmalloc(len + 1);
  memcpy(s, f, len);
  s[len] = '\0';
  return s;
}

/* The entry's name: a long name from a meta entry, else ustar prefix/name (new
 * string). */
static char *tar_name(unpack_t *u, const uint8_t *h) {
  if (u->long_name) {
    char *n = u->long_name;
    u->long_name = NULL;
    return n;
  }
  char *name = tar_str(h + H_NAME, H_NAME_LEN);
  if (memcmp(h + H_MAGIC, "ustar\0", 6) == 0 &&
      h[H_PREFIX]) { /* POSIX only: GNU uses it otherwise */
    char *prefix = tar_str(h + H_PREFIX, H_PREFIX_LEN),
         *full = xasprintf("%s/%s", prefix, name);
    free(prefix);
    free(name);
    name = full;
  }
  return name;
}

/* ---- paths ---- */

/* Normalises an entry name in place into "a/b/c" (no "", "." or leading "./");
 * returns NULL, or a static reason why it is refused. *depth is the number of
 * components. */
static const char *path_clean(char *name, int *depth) {
  if (strlen(name) > UNPACK_NAME_MAX)
    return "its name is too long";
  if (name[0] == '/')
    return "its name is absolute";
  char *out = name, *save = NULL;
  size_t used = 0;
  *depth = 0;
  char *copy = xstrdup(name);
  for (char *c = strtok_r(copy, "/", &save); c;
       c = strtok_r(NULL, "/", &save)) {
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
static const char *link_target_check(const char *target, int depth) {
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
static int path_open_parent(unpack_t *u, char *path, const char **last) {
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

static int entry_file(unpack_t *u, int dfd, const char *last, const char *name,
                      uint64_t mode, const uint8_t *data, uint64_t size) {
  int fd =
      openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             (mode & 0100) ? 0700 : 0600);
  if (fd < 0)
    return up_fail(
        u, errno == EEXIST ? RAYC_EINVALID_ARGUMENT : -errno,
        "%s: cannot create it: %s", name,
        errno == EEXIST
            ? "it is in the archive twice (or over a directory or link)"
            : strerror(errno));
  int rc = 0;
  for (uint64_t done = 0; done < size && rc == 0;) {
    ssize_t n =
        write(fd, data + done,
              size - done > (1u << 20) ? (1u << 20) : (size_t)(size - done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      rc = up_fail(u, n < 0 ? -errno : -EIO, "%s: write failed: %s", name,
                   n < 0 ? strerror(errno) : "no progress");
    else
      done += (uint64_t)n;
  }
  if (close(fd) != 0 && rc == 0)
    rc = up_fail(u, -errno, "%s: close failed: %s", name, strerror(errno));
  return rc;
}

static int entry_dir(unpack_t *u, int dfd, const char *last, const char *name) {
  struct stat st;
  if (mkdirat(dfd, last, 0700) == 0)
    return 0;
  if (errno == EEXIST && fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode))
    return 0; /* made earlier as a file's parent, or listed twice: harmless for
                 a directory */
  return up_fail(u, errno == EEXIST ? RAYC_EINVALID_ARGUMENT : -errno,
                 "%s: cannot make the directory: %s", name,
                 errno == EEXIST ? "a file or link of that name exists"
                                 : strerror(errno));
}

static int entry_symlink(unpack_t *u, int dfd, const char *last,
                         const char *name, const char *target, int depth) {
  const char *why = link_target_check(target, depth);
  if (why)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: refused: %s (%s)", name, why,
                   target);
  if (symlinkat(target, dfd, last) != 0)
    return up_fail(u, errno == EEXIST ? RAYC_EINVALID_ARGUMENT : -errno,
                   "%s: cannot make the link: %s", name,
                   errno == EEXIST ? "it is in the archive twice"
                                   : strerror(errno));
  return 0;
}

/* Unpacks one real entry whose header is h and whose data (size bytes) follows.
 */
static int entry_unpack(unpack_t *u, const uint8_t *h, char *name,
                        const uint8_t *data, uint64_t size) {
  char type = (char)h[H_TYPE];
  uint64_t mode = 0644;
  int depth, rc;
  const char *why = path_clean(name, &depth);
  if (why)
    return up_fail(u, RAYC_EINVALID_ARGUMENT, "%s: refused: %s", name, why);
  if (depth == 0)
    return type == '5' ? 0
                       : up_fail(u, RAYC_EINVALID_ARGUMENT,
                                 "an entry has an empty name");
  if (++u->entries > u->lim.max_entries)
    return up_fail(u, RAYC_EINVALID_ARGUMENT,
                   "the archive has more than %u entries", u->lim.max_entries);
  tar_num(h + H_MODE, 8, &mode);
  if (type != '0' && type != '\0' && type != '7' && type != '5' && type != '2')
    return up_fail(
        u, RAYC_EINVALID_ARGUMENT, "%s: refused: %s", name,
        type == '1'
            ? "hard links are not unpacked"
            : "only files, directories and symbolic links are unpacked");
  const char *last = name;
  int dfd = path_open_parent(u, name, &last);
  if (dfd < 0)
    return up_fail(u, dfd == -ENOTDIR ? RAYC_EINVALID_ARGUMENT : dfd,
                   "%s: refused: %s", name,
                   dfd == -ENOTDIR
                       ? "it would be written through a link or a file"
                       : strerror(-dfd));
  if (type == '5') {
    rc = entry_dir(u, dfd, last, name);
  } else if (type == '2') {
    char *target =
        u->long_link ? u->long_link : tar_str(h + H_LINK, H_LINK_LEN);
    u->long_link = NULL;
    rc = entry_symlink(u, dfd, last, name, target, depth);
    free(target);
  } else {
    rc = entry_file(u, dfd, last, name, mode, data, size);
  }
  close(dfd);
  return rc;
}

/* ---- meta entries ---- */

/* Applies the pax records of an 'x' entry ("LEN key=value\n" each) to the next
 * entry. */
static int pax_parse(unpack_t *u, const uint8_t *d, uint64_t size) {
  uint64_t off = 0;
  while (off < size) {
    uint64_t len = 0;
    uint64_t i = off;
    while (i < size && d[i] >= '0' && d[i] <= '9' && len < META_MAX)
      len = len * 10 + (uint64_t)(d[i++] - '0');
    if (i >= size || d[i] != ' ' || len == 0 || len > size - off ||
        d[off + len - 1] != '\n')
      return up_fail(u, RAYC_EINVALID_ARGUMENT, "a pax header is malformed");
    const char *kv = (const char *)d + i + 1;
    size_t kvlen = (size_t)(off + len - 1 - (i + 1));
    const char *eq = memchr(kv, '=', kvlen);
    if (!eq)
      return up_fail(u, RAYC_EINVALID_ARGUMENT, "a pax record has no '='");
    size_t klen = (size_t)(eq - kv), vlen = kvlen - klen - 1;
    char *val = xmalloc(vlen + 1);
    memcpy(val, eq + 1, vlen);
    val[vlen] = '\0';
    if (klen == 4 && memcmp(kv, "path", 4) == 0) {
      free(u->long_name);
      u->long_name = val, val = NULL;
    } else if (klen == 8 && memcmp(kv, "linkpath", 8) == 0) {
      free(u->long_link);
      u->long_link = val, val = NULL;
    } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
      char *end;
      errno = 0;
      u->pax_size = strtoull(val, &end, 10);
      if (errno || *end || !*val) {
        free(val);
        return up_fail(u, RAYC_EINVALID_ARGUMENT, "a pax size is malformed");
      }
      u->has_pax_size = 1;
    }
    free(val);
    off += len;
  }
  return 0;
}

/* Handles a meta entry (type x, g, L, K) with its data; 1 if h was one, 0 if
 * not, < 0 on error. */
static int meta_entry(unpack_t *u, const uint8_t *h, const uint8_t *data,
                      uint64_t size) {
  char type = (char)h[H_TYPE];
  if (type != 'x' && type != 'g' && type != 'L' && type != 'K')
    return 0;
  if (size > META_MAX)
    return up_fail(u, RAYC_EINVALID_ARGUMENT,
                   "a long-name or pax header is larger than %d bytes",
                   META_MAX);
  if (type == 'g')
    return 1;
  if (type == 'x')
    return pax_parse(u, data, size) < 0 ? RAYC_EINVALID_ARGUMENT : 1;
  char **slot = type == 'L' ? &u->long_name : &u->long_link;
  free(*slot);
  *slot = tar_str(data, (size_t)size);
  return 1;
}

/* ---- the walk ---- */

/* Reads the header at u->off: its data size, checked against the archive and
 * the limits. */
static int header_size(unpack_t *u, const uint8_t *h, uint64_t *size) {
  if (!tar_checksum_ok(h))
    return up_fail(
        u, RAYC_EINVALID_ARGUMENT,
        "a header at offset %zu has a bad checksum (not a tar archive?)",
        u->off);
  if (tar_num(h + H_SIZE, H_SIZE_LEN, size) < 0)
    return up_fail(u, RAYC_EINVALID_ARGUMENT,
                   "a header at offset %zu has a malformed size", u->off);
  char type = (char)h[H_TYPE];
  if (u->has_pax_size && type != 'x' && type != 'g' && type != 'L' &&
      type != 'K') {
    *size = u->pax_size;
    u->has_pax_size = 0;
  }
  if (type == '5' || type == '2' || type == '1')
    *size = 0; /* carry no data (whatever the field says) */
  uint64_t room = u->len - u->off - BLOCK;
  if (*size > room)
    return up_fail(
        u, RAYC_EINVALID_ARGUMENT,
        "the archive is cut short (an entry of %llu bytes at offset %zu)",
        (unsigned long long)*size, u->off);
  int data = type == '0' || type == '\0' || type == '7';
  if (data && *size > u->lim.max_file)
    return up_fail(u, RAYC_EINVALID_ARGUMENT,
                   "a file of %llu bytes is larger than the limit (%llu)",
                   (unsigned long long)*size,
                   (unsigned long long)u->lim.max_file);
  if (data && (u->total += *size) > u->lim.max_total)
    return up_fail(u, RAYC_EINVALID_ARGUMENT,
                   "the files add up to more than the limit (%llu bytes)",
                   (unsigned long long)u->lim.max_total);
  return 0;
}

static int unpack_walk(unpack_t *u) {
  while (u->off + BLOCK <= u->len) {
    const uint8_t *h = u->p + u->off;
    if (block_is_zero(h))
      return 0; /* end of archive */
    uint64_t size;
    int rc = header_size(u, h, &size);
    if (rc < 0)
      return rc;
    const uint8_t *data = h + BLOCK;
    rc = meta_entry(u, h, data, size);
    if (rc == 0) {
      char *name = tar_name(u, h);
      rc = entry_unpack(u, h, name, data, size);
      free(name);
      free(u->long_link); /* meta entries apply to the next real entry only */
      u->long_link = NULL;
    }
    if (rc < 0)
      return rc;
    u->off += BLOCK + (size_t)((size + BLOCK - 1) / BLOCK * BLOCK);
    if (u->off > u->len)
      u->off = u->len;
  }
  if (u->off != u->len)
    return up_fail(u, RAYC_EINVALID_ARGUMENT,
                   "the archive ends inside a header");
  return 0;
}

/* Removes everything under the directory fd (which it closes), following no
 * link. */
static void remove_under(int fd) {
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  for (struct dirent *e; (e = readdir(d));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    int sub = openat(dirfd(d), e->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) {
      remove_under(sub);
      unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    } else {
      unlinkat(dirfd(d), e->d_name, 0);
    }
  }
  closedir(d);
}

int unpack_tar(const void *data, size_t len, const char *dir,
               const unpack_limits_t *lim, char **err) {
  unpack_t u = {.p = data, .len = len, .root = -1};
  u.lim = lim ? *lim : (unpack_limits_t){0};
  if (!u.lim.max_total)
    u.lim.max_total = UNPACK_DEFAULT_TOTAL;
  if (!u.lim.max_file || u.lim.max_file > u.lim.max_total)
    u.lim.max_file = u.lim.max_total;
  if (!u.lim.max_entries)
    u.lim.max_entries = UNPACK_DEFAULT_ENTRIES;
  int rc = 0;
  if (mkdir(dir, 0700) != 0)
    rc = up_fail(&u, errno == EEXIST ? RAYC_EALREADY_EXISTS : -errno,
                 "cannot make %s: %s", dir, strerror(errno));
  else if ((u.root =
                open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    rc = up_fail(&u, -errno, "cannot open %s: %s", dir, strerror(errno));
  else
    rc = unpack_walk(&u);
  if (rc < 0 && u.root >= 0) {
    remove_under(dup(u.root));
    rmdir(dir);
  }
  if (u.root >= 0)
    close(u.root);
  free(u.long_name);
  free(u.long_link);
  if (err)
    *err = u.err;
  else
    free(u.err);
  return rc;
}
