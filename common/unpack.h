/*
 * Safe unpacking of a job's working directory: a tar archive (POSIX ustar, with
 * pax 'x' and GNU 'L'/'K' long names, as `tar -c` writes by default) held in
 * memory, unpacked into a new directory. For `rayc job submit --working-dir`,
 * whose archive arrives from the GCS KV (content-addressed) and is unpacked on
 * each node; nothing calls it before the job API lands.
 *
 * The archive is untrusted. The whole archive is refused, and the directory
 * removed, when any entry:
 *   - has an absolute name, a ".." component, an empty or over-long name
 * (limits below);
 *   - would be written through a symbolic link, or over an existing entry
 * (duplicates);
 *   - is a symbolic link whose target is absolute, or climbs (leading ".."
 * components, the only place ".." is allowed) above the directory, or has ".."
 * after its first other component;
 *   - is a hard link, a device, a FIFO or another type (only files, directories
 * and symbolic links are unpacked);
 *   - pushes the entry count, one file's size or the sum of file sizes past the
 * limits;
 *   - has a bad header checksum, a malformed number, or data cut short.
 * Every file is created with O_EXCL|O_NOFOLLOW by openat() relative to
 * directories opened with O_NOFOLLOW, so no link (from the archive or planted
 * by a racing process) is ever followed while unpacking. Modes are reduced to
 * 0700/0600 (owner's execute bit kept): no setuid, setgid, sticky, group or
 * other bits; owners and times are not restored.
 */
#ifndef RAYC_COMMON_UNPACK_H
#define RAYC_COMMON_UNPACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct unpack_limits {
  uint64_t
      max_total; /* bytes of file contents in all; 0: UNPACK_DEFAULT_TOTAL */
  uint64_t max_file;    /* bytes of one file; 0: max_total */
  uint32_t max_entries; /* entries (files, directories, links); 0:
                           UNPACK_DEFAULT_ENTRIES */
} unpack_limits_t;

enum {
  UNPACK_DEFAULT_ENTRIES = 100000,
  UNPACK_NAME_MAX = 1024, /* bytes of an entry's path */
};
#define UNPACK_DEFAULT_TOTAL (512ull << 20)

/* Unpacks the archive data[0..len) into dir, which must not exist yet (its
 * parent must): dir is created 0700. lim may be NULL (the defaults). Returns 0,
 * or a negative code (RAYC_EINVALID_ARGUMENT for a refused archive,
 * RAYC_EALREADY_EXISTS when dir exists, a negative errno for I/O) with *err (if
 * not NULL) a new message naming the entry and the reason; dir is then removed
 * again. */
int unpack_tar(const void *data, size_t len, const char *dir,
               const unpack_limits_t *lim, char **err);

#endif
