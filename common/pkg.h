/*
 * Working-directory packages (issue 12): a job's working directory packed into a tar archive
 * (libarchive, pax format, deterministic: sorted entries, no owners or times, modes reduced), named
 * by the SHA-256 of its bytes ("pkg_<64 hex>"), stored once per content in the GCS KV (namespace
 * "pkg"), and unpacked once per node under <session>/runtime_env/<name>/.
 *
 * Packing skips ".git" and whatever the directory's ".raycignore" lists (one fnmatch(3) pattern a
 * line, '#' comments; a pattern with no '/' matches a name at any depth, one with '/' the path
 * from the top; a trailing '/' matches directories only). It refuses devices, FIFOs and sockets,
 * and stops with an error naming the limit once the files add up to more than it allows.
 *
 * Unpacking treats the archive as hostile: the whole archive is refused, and the directory
 * removed, when any entry has an absolute name or a ".." component, would be written through a
 * link or over an existing entry, is a link whose target is absolute or climbs out, is a hard
 * link, device or FIFO, or pushes the entry count, a file's size or the total past the limits, or
 * when libarchive cannot read it. Every file is created with O_EXCL|O_NOFOLLOW by openat()
 * relative to directories opened with O_NOFOLLOW, so no link is ever followed while unpacking.
 * Modes are reduced to 0700/0600 (the owner's execute bit kept).
 *
 * Why libarchive (and OpenSSL's libcrypto for SHA-256): both are well-kept Debian libraries that
 * read every tar dialect real tools write; the project writes the policy (what is refused), not
 * the format parser.
 */
#ifndef RAYC_COMMON_PKG_H
#define RAYC_COMMON_PKG_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of data[0..len) as 64 lower-case hex digits + NUL into out. */
void pkg_sha256_hex(const void *data, size_t len, char out[65]);

/* One packed file. */
typedef struct pkg_file {
  char *path; /* owned; relative to the directory */
  char sha256[65];
  uint64_t size;
} pkg_file_t;

/* A packed directory. Release with pkg_release(). */
typedef struct pkg {
  uint8_t *data; /* owned: the tar archive */
  size_t len;
  char name[69];     /* "pkg_" + SHA-256 of data */
  pkg_file_t *files; /* owned: regular files, in archive order */
  size_t nfiles;
  uint64_t bytes; /* sum of the files' sizes */
} pkg_t;

#define PKG_DEFAULT_MAX_BYTES (100ull << 20)

/* Packs dir into out. max_bytes: the limit on the sum of file sizes (0: PKG_DEFAULT_MAX_BYTES);
 * past it the error names the limit and the size. 0, or a negative code with *err (if not NULL)
 * a new message. */
int pkg_pack_dir(const char *dir, uint64_t max_bytes, pkg_t *out, char **err);
void pkg_release(pkg_t *p);

typedef struct unpack_limits {
  uint64_t max_total;   /* bytes of file contents in all; 0: UNPACK_DEFAULT_TOTAL */
  uint64_t max_file;    /* bytes of one file; 0: max_total */
  uint32_t max_entries; /* entries (files, directories, links); 0: UNPACK_DEFAULT_ENTRIES */
} unpack_limits_t;

enum {
  UNPACK_DEFAULT_ENTRIES = 100000,
  UNPACK_NAME_MAX = 1024, /* bytes of an entry's path */
};
#define UNPACK_DEFAULT_TOTAL (512ull << 20)

/* Unpacks the tar archive data[0..len) into dir, which must not exist yet (its parent must): dir
 * is created 0700. lim may be NULL (the defaults). Returns 0, or a negative code
 * (RAYC_EINVALID_ARGUMENT for a refused archive, RAYC_EALREADY_EXISTS when dir exists, a negative
 * errno for I/O) with *err (if not NULL) a new message naming the entry and the reason; dir is then
 * removed again. */
int pkg_unpack(const void *data, size_t len, const char *dir, const unpack_limits_t *lim, char **err);

/* Makes sure package name (data[0..len), already fetched) is unpacked at
 * <runtime_env_dir>/<name>, once per node even with several processes racing (unpacked to a
 * private temporary directory, then renamed into place). Checks that data hashes to name. Sets
 * *path (new) to the directory. 0 or a negative code with *err (if not NULL) a new message. */
int pkg_install(const char *runtime_env_dir, const char *name, const void *data, size_t len, char **path, char **err);

/* Checks a symbolic link target for a link at depth (its path has depth components): relative,
 * ".." only as leading components, never climbing above the top. NULL, or a static reason. */
const char *pkg_link_target_check(const char *target, int depth);

/* Removes path and everything under it, following no link. */
void pkg_remove_tree(const char *path);

/* The placement-group id (18 bytes) under which a submitted job's --entrypoint-num-cpus are reserved
 * on the head's raylet (a one-bundle reservation, PrepareBundleResources): the first 18 bytes of
 * SHA-256("entrypoint:" + submission id), so the supervisor and the GCS agree on it. */
void pkg_entrypoint_reservation_id(const char *submission_id, uint8_t out[18]);

/* 1 when name is "pkg_" + 64 lower-case hex digits. */
int pkg_name_valid(const char *name);

#endif
