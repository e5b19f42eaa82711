/*
 * Spilling primary copies to disk and restoring them, with the blocking work on the store's I/O
 * threads (store_io.h) and the bookkeeping on the loop (store_core.h).
 *
 * When to spill. Primary copies (created on this node, pinned until their owner deletes them)
 * are spilled, least recently used first, while the bytes of sealed primaries in memory without a
 * disk copy pass spill_threshold (80%) of the capacity, and whenever a request waiting for room
 * needs more than the free and evictable bytes (plus what is being spilled) can give. Only
 * unreferenced copies are spilled (as Ray does): a copy a client is reading stays as it is.
 * A spilled copy stays in memory, readable, until room is needed: then eviction drops its memory
 * at no cost (store_evict.c), and a later get restores it.
 *
 * Files. Each batch fuses up to STORE_SPILL_MAX_OBJECTS objects, about spill_file_target bytes,
 * into one file <spill_dir>/store-<pid>-<nonce>-<n>, written by one I/O thread. Each object is a record:
 * a 64-byte header (magic, id, sizes) followed by its data and metadata; a restore checks the
 * header before trusting the bytes. A file is removed when its last object is freed (the core
 * calls store_spill_file_unused), and every file of this store when it exits. Files left by a
 * store that died (its pid gone) are removed when a store starts on the same spill dir.
 *
 * Threads. While an object is SPILLING or RESTORING the core will not free its memory, so the
 * I/O thread may read or write the region there; the job carries a snapshot of everything else
 * it needs. Results are applied on the loop, which then retries the waiting requests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

#define SPILL_MAGIC "RAYCSPL1"

typedef struct spill_header {
  char magic[8];
  uint8_t id[ID_OBJECT_SIZE];
  uint8_t pad[4];
  uint64_t data_size, metadata_size;
  uint8_t reserved[8];
} spill_header_t;

_Static_assert(sizeof(spill_header_t) == 64, "spill record header is 64 bytes");

typedef struct spill_item {
  store_obj_t *o; /* loop only */
  spill_header_t hdr;
  const uint8_t *src;
  uint64_t file_off;
} spill_item_t;

typedef struct spill_job {
  store_server_t *s;
  store_spill_file_t *f;
  size_t n;
  spill_item_t *items;
  int err; /* set by the I/O thread */
} spill_job_t;

typedef struct restore_job {
  store_server_t *s;
  store_obj_t *o; /* loop only */
  char *path;
  uint64_t file_off;
  spill_header_t want;
  uint8_t *dst;
  int err; /* set by the I/O thread */
} restore_job_t;

/* Writes all of buf at off; 0 or a negative errno. */
static int spill_pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
  while (len > 0) {
    size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
    ssize_t w = pwrite(fd, buf, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? -errno : -EIO;
    buf += w;
    len -= (uint64_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

/* Reads all of buf at off; 0, a negative errno, or RAYC_EIO at a short file. */
static int spill_pread_all(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
  while (len > 0) {
    size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
    ssize_t r = pread(fd, buf, n, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? -errno : RAYC_EIO;
    buf += r;
    len -= (uint64_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

/* ---- spilling ---- */

static void spill_work(void *arg, int cancelled)
{
  spill_job_t *j = arg;
  if (cancelled) {
    j->err = RAYC_ECANCELLED;
    return;
  }
  int fd = open(j->f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    j->err = -errno;
    return;
  }
  for (size_t i = 0; i < j->n && !j->err; i++) {
    spill_item_t *it = &j->items[i];
    j->err = spill_pwrite_all(fd, (const uint8_t *)&it->hdr, sizeof(it->hdr), it->file_off);
    if (!j->err)
      j->err = spill_pwrite_all(fd, it->src, it->hdr.data_size + it->hdr.metadata_size, it->file_off + sizeof(it->hdr));
  }
  if (close(fd) < 0 && !j->err)
    j->err = -errno;
  if (j->err)
    unlink(j->f->path);
}

static void spill_done(void *arg)
{
  spill_job_t *j = arg;
  store_server_t *s = j->s;
  s->spill_inflight--;
  if (j->err) {
    if (j->err != RAYC_ECANCELLED)
      log_error("cannot write spill file %s (%zu objects, %" PRIu64 " bytes): %s; retrying in %d ms", j->f->path, j->n,
                j->f->size, rayc_strerror(j->err), STORE_SPILL_BACKOFF_MS);
    s->spill_backoff_until = now_ms() + STORE_SPILL_BACKOFF_MS;
    for (size_t i = 0; i < j->n; i++)
      store_core_spill_done(&s->core, j->items[i].o, NULL, 0);
    store_spill_file_destroy(j->f);
  } else {
    log_debug("spilled %zu objects (%" PRIu64 " bytes) to %s", j->n, j->f->size, j->f->path);
    s->spill_files++;
    s->spill_file_bytes += j->f->size;
    for (size_t i = 0; i < j->n; i++) {
      store_jobs_count(s, j->items[i].o->id, STORE_JOBS_SPILLED, store_obj_size(j->items[i].o));
      store_core_spill_done(&s->core, j->items[i].o, j->f, j->items[i].file_off);
    }
  }
  free(j->items);
  free(j);
  store_kick(s); /* spilled copies can now be evicted to make room */
}

/* Bytes the spiller should start on now (0: none). */
static uint64_t spill_want(const store_server_t *s)
{
  const store_core_t *c = &s->core;
  uint64_t cap = store_core_capacity(c), threshold = (uint64_t)((double)cap * s->spill_threshold);
  uint64_t want = c->st.bytes_unspilled_primary > threshold ? c->st.bytes_unspilled_primary - threshold : 0;
  uint64_t head = store_room_head_need(s);
  if (head) {
    uint64_t avail = cap - store_core_used(c) + c->evictable.bytes + c->st.bytes_spilling;
    uint64_t short_by = head > avail ? head - avail : 0;
    if (c->evictable.count == 0 && c->st.bytes_spilling == 0)
      short_by = head; /* room exists but not in one piece: free more */
    if (short_by > want)
      want = short_by;
  }
  return want;
}

static void spill_item_fill(store_server_t *s, spill_item_t *it, store_obj_t *o, uint64_t file_off)
{
  memset(it, 0, sizeof(*it));
  it->o = o;
  memcpy(it->hdr.magic, SPILL_MAGIC, sizeof(it->hdr.magic));
  memcpy(it->hdr.id, o->id, ID_OBJECT_SIZE);
  it->hdr.data_size = o->data_size;
  it->hdr.metadata_size = o->metadata_size;
  it->src = s->region.base + o->offset;
  it->file_off = file_off;
}

/* Starts one batch; 0 when nothing could be spilled. */
static int spill_start_batch(store_server_t *s)
{
  store_obj_t **objs = xcalloc(STORE_SPILL_MAX_OBJECTS, sizeof(*objs));
  size_t n = store_core_spill_pick(&s->core, s->spill_file_target, STORE_SPILL_MAX_OBJECTS, objs);
  if (n == 0) {
    free(objs);
    return 0;
  }
  spill_job_t *j = xcalloc(1, sizeof(*j));
  j->s = s;
  j->n = n;
  j->items = xcalloc(n, sizeof(*j->items));
  char *path = xasprintf("%s/%s%" PRIu64, s->spill_dir, s->spill_prefix, ++s->spill_seq);
  j->f = store_spill_file_create(path);
  free(path);
  uint64_t off = 0;
  for (size_t i = 0; i < n; i++) {
    spill_item_fill(s, &j->items[i], objs[i], off);
    off += sizeof(spill_header_t) + store_obj_size(objs[i]);
  }
  j->f->size = off;
  free(objs);
  s->spill_inflight++;
  store_io_submit(s->io, spill_work, spill_done, j);
  return 1;
}

void store_spill_maybe(store_server_t *s)
{
  if (s->shut_down || !s->io || now_ms() < s->spill_backoff_until)
    return;
  while (s->spill_inflight < STORE_SPILL_INFLIGHT && spill_want(s) > 0)
    if (!spill_start_batch(s))
      break;
}

/* ---- restoring ---- */

static void restore_work(void *arg, int cancelled)
{
  restore_job_t *j = arg;
  spill_header_t h;
  if (cancelled) {
    j->err = RAYC_ECANCELLED;
    return;
  }
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    j->err = -errno;
    return;
  }
  j->err = spill_pread_all(fd, (uint8_t *)&h, sizeof(h), j->file_off);
  if (!j->err && memcmp(&h, &j->want, sizeof(h)) != 0)
    j->err = RAYC_EIO; /* not the record we wrote there */
  if (!j->err)
    j->err = spill_pread_all(fd, j->dst, h.data_size + h.metadata_size, j->file_off + sizeof(h));
  close(fd);
}

static void restore_done(void *arg)
{
  restore_job_t *j = arg;
  store_server_t *s = j->s;
  char name[16];
  if (j->err && j->err != RAYC_ECANCELLED)
    log_error("object %s: cannot restore it from %s at %" PRIu64 ": %s", store_obj_name(j->o, name), j->path,
              j->file_off, rayc_strerror(j->err));
  store_core_restore_done(&s->core, j->o, j->err ? (j->err == RAYC_ECANCELLED ? RAYC_EUNAVAILABLE : RAYC_EIO) : 0);
  free(j->path);
  free(j);
  store_kick(s);
}

int store_restore_now(store_server_t *s, store_obj_t *o)
{
  if (s->shut_down || !s->io)
    return RAYC_EUNAVAILABLE;
  int rc = store_core_restore_begin(&s->core, o);
  if (rc)
    return rc;
  restore_job_t *j = xcalloc(1, sizeof(*j));
  j->s = s;
  j->o = o;
  j->path = xstrdup(o->spill_file->path);
  j->file_off = o->spill_offset;
  memcpy(j->want.magic, SPILL_MAGIC, sizeof(j->want.magic));
  memcpy(j->want.id, o->id, ID_OBJECT_SIZE);
  j->want.data_size = o->data_size;
  j->want.metadata_size = o->metadata_size;
  j->dst = s->region.base + o->offset;
  store_io_submit(s->io, restore_work, restore_done, j);
  return 0;
}

int store_restore_pending(const store_server_t *s, const store_obj_t *o)
{
  return o->state == STORE_OBJ_RESTORING ||
         (o->state == STORE_OBJ_SPILLED && hmap_get(&s->restores, o->id, ID_OBJECT_SIZE) != NULL);
}

void store_restore_request(store_server_t *s, store_obj_t *o)
{
  if (s->shut_down || o->state != STORE_OBJ_SPILLED || store_restore_pending(s, o))
    return;
  /* Requests already waiting for room go first; else try now. */
  if (!s->rooms_head && store_restore_now(s, o) != RAYC_EOUT_OF_MEMORY)
    return;
  store_room_wait_restore(s, o->id, store_obj_size(o));
}

void store_restore_fail(store_server_t *s, store_obj_t *o, int err)
{
  char name[16];
  log_warn("object %s: cannot restore it: no room for %" PRIu64 " bytes within %d ms", store_obj_name(o, name),
           store_obj_size(o), STORE_RESTORE_ROOM_MS);
  o->restore_err = err;
  s->restore_retry = 1; /* parked gets that still have time ask again */
  store_gets_on_object(s, o->id);
  store_om_on_restored(s, o);
}

/* ---- files ---- */

static void unlink_work(void *arg, int cancelled)
{
  store_spill_file_t *f = arg;
  (void)cancelled; /* removing is always worth it */
  if (unlink(f->path) < 0 && errno != ENOENT)
    log_warn("cannot remove spill file %s: %s", f->path, strerror(errno));
}

static void unlink_done(void *arg)
{
  store_spill_file_destroy(arg);
}

void store_spill_file_unused(void *ctx, store_spill_file_t *f)
{
  store_server_t *s = ctx;
  s->spill_files--;
  s->spill_file_bytes -= f->size;
  log_debug("spill file %s: its last object is gone; removing it", f->path);
  if (s->io) {
    store_io_submit(s->io, unlink_work, unlink_done, f);
  } else {
    unlink_work(f, 0);
    store_spill_file_destroy(f);
  }
}

/* 1 when name is a spill file of a store that is gone (or of this one when ours is set). */
static int spill_name_removable(const store_server_t *s, const char *name, int ours)
{
  if (ours)
    return strncmp(name, s->spill_prefix, strlen(s->spill_prefix)) == 0;
  int pid = 0, len = 0;
  if (sscanf(name, "store-%d-%n", &pid, &len) != 1 || len == 0 || pid <= 0)
    return 0;
  return kill(pid, 0) < 0 && errno == ESRCH;
}

static void spill_remove_matching(store_server_t *s, int ours)
{
  DIR *d = opendir(s->spill_dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!spill_name_removable(s, e->d_name, ours))
      continue;
    if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
      log_warn("cannot remove spill file %s/%s: %s", s->spill_dir, e->d_name, strerror(errno));
    else if (!ours)
      log_info("removed %s/%s, left by a store that is gone", s->spill_dir, e->d_name);
  }
  closedir(d);
}

void store_spill_remove_all(store_server_t *s)
{
  spill_remove_matching(s, 1);
}

void store_spill_remove_stale(store_server_t *s)
{
  spill_remove_matching(s, 0);
}
