/*
 * The object manager's client half: pulling an object from another node's store into this one.
 *
 * A local client asks with StorePullRequest{object_id, sources, timeout_ms}. One pull per object
 * runs at a time (s->pulls); later requests for the same object join it as waiters and add their
 * sources. A pull is a state machine (pull_set_state logs each change):
 *
 *   AWAIT_LOCAL  a local client is creating the object: answered by its seal (if that create is
 *                aborted, the timer starts fetching instead)
 *   SIZING       the first chunk (offset 0) is in flight; its reply gives the object's sizes
 *   ROOM         creating the local copy (a secondary copy, created by the pull's own internal
 *                client id) waits for room in the queue of store_wait.c
 *   FETCHING     the local copy exists: up to STORE_PULL_WINDOW GetChunk calls of STORE_CHUNK_SIZE
 *                in flight, each reply copied straight into the region at its offset
 *   DONE         sealed (or failed, or abandoned) and answered; the record lives on only until
 *                the calls still in flight come back
 *
 * Failures. A failed chunk call is retried after STORE_PULL_RETRY_MS times the failures so far;
 * after STORE_PULL_ATTEMPTS failures on one source (at once when the source says NOT_FOUND) the
 * pull moves to the next source; when none is left it fails, the local copy is aborted, and every
 * waiter gets the last error. A waiter's own timeout answers it with TIMEOUT; a pull with no
 * waiters left (timed out, disconnected) is abandoned. Every reply is checked: sizes must agree
 * with the first chunk and the data must be exactly the range asked for.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

typedef enum pull_state {
  PULL_AWAIT_LOCAL,
  PULL_SIZING,
  PULL_ROOM,
  PULL_FETCHING,
  PULL_DONE,
} pull_state_t;

typedef struct pull_waiter {
  struct pull_waiter *next;
  store_pull_t *p;
  local_conn_t *conn;
  uint64_t seq;
  uv_timer_t timer;
} pull_waiter_t;

typedef struct pull_chunk {
  struct pull_chunk *next;
  store_pull_t *p;
  uint64_t offset, len;
} pull_chunk_t;

struct store_pull {
  store_server_t *s;
  uint8_t id[ID_OBJECT_SIZE];
  char name[16];
  uint64_t client; /* creates and references the local copy */
  pull_state_t state;
  char **sources;
  size_t nsources, src;
  int failures; /* on the current source */
  int last_err;
  char last_detail[256];
  uint64_t data_size, metadata_size, total;
  uint8_t *owner;
  size_t owner_len;
  Rayc__GetChunkReply *first; /* held until the local copy exists */
  store_obj_t *obj;           /* the local copy while FETCHING */
  uint64_t next_off, received;
  int inflight;
  pull_chunk_t *ready, *waiting; /* to send now; to send when the retry timer fires */
  uv_timer_t retry_timer;
  int closing;
  store_room_wait_t *room;
  pull_waiter_t *waiters;
  int64_t start_ms;
};

static const char *pull_state_name(pull_state_t st)
{
  static const char *names[] = {"AWAIT_LOCAL", "SIZING", "ROOM", "FETCHING", "DONE"};
  return names[st];
}

static void pull_set_state(store_pull_t *p, pull_state_t st)
{
  log_debug("pull of %s: %s -> %s", p->name, pull_state_name(p->state), pull_state_name(st));
  p->state = st;
}

static const char *pull_source(const store_pull_t *p)
{
  return p->sources[p->src];
}

/* ---- lifetime ---- */

static void pull_on_closed(uv_handle_t *h)
{
  store_pull_t *p = h->data;
  for (size_t i = 0; i < p->nsources; i++)
    free(p->sources[i]);
  free(p->sources);
  free(p->owner);
  free(p);
}

static void pull_free_chunks(pull_chunk_t **list)
{
  while (*list) {
    pull_chunk_t *c = *list;
    *list = c->next;
    free(c);
  }
}

/* Frees a DONE pull once no call of it is in flight. */
static void pull_maybe_free(store_pull_t *p)
{
  if (p->state != PULL_DONE || p->inflight > 0 || p->closing)
    return;
  p->closing = 1;
  uv_close((uv_handle_t *)&p->retry_timer, pull_on_closed);
}

static void waiter_on_closed(uv_handle_t *h)
{
  free(h->data);
}

static void waiter_free(pull_waiter_t *w)
{
  uv_close((uv_handle_t *)&w->timer, waiter_on_closed);
}

/* Answers every waiter (code 0: ok) and ends the pull; the record goes once its calls are back. */
static void pull_finish(store_pull_t *p, int code, const char *msg)
{
  store_server_t *s = p->s;
  while (p->waiters) {
    pull_waiter_t *w = p->waiters;
    p->waiters = w->next;
    if (code)
      store_reply_error(w->conn, w->seq, code, msg);
    else
      store_reply_ok(w->conn, w->seq);
    waiter_free(w);
  }
  if (p->room) {
    store_room_wait_t *room = p->room;
    p->room = NULL;
    store_room_cancel(s, room);
  }
  pb_free(p->first);
  p->first = NULL;
  pull_free_chunks(&p->ready);
  pull_free_chunks(&p->waiting);
  uv_timer_stop(&p->retry_timer);
  if (hmap_get(&s->pulls, p->id, ID_OBJECT_SIZE) == p)
    hmap_del(&s->pulls, p->id, ID_OBJECT_SIZE);
  pull_set_state(p, PULL_DONE);
  pull_maybe_free(p);
}

static void pull_fail(store_pull_t *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void pull_fail(store_pull_t *p, int code, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (p->state == PULL_DONE)
    return;
  log_warn("pull of %s failed: %s", p->name, msg);
  if (p->obj) {
    store_core_abort(&p->s->core, p->id, p->client);
    p->obj = NULL;
  }
  pull_finish(p, code, msg);
}

/* ---- chunks ---- */

static void pull_on_chunk(void *arg, int status, const char *detail, ProtobufCMessage *resp);

static void pull_send(store_pull_t *p, pull_chunk_t *c)
{
  Rayc__GetChunkRequest req = RAYC__GET_CHUNK_REQUEST__INIT;
  req.object_id = pb_bytes(p->id, ID_OBJECT_SIZE);
  req.offset = c->offset;
  req.length = c->len;
  rpc_channel_t *ch = rpc_channel_get(p->s->om_client, pull_source(p));
  int rc = rpc_call(ch, &rayc__object_manager_service__descriptor, "GetChunk", &req.base, STORE_CHUNK_TIMEOUT_MS,
                    pull_on_chunk, c);
  if (rc < 0) { /* the client is closing */
    free(c);
    return;
  }
  p->inflight++;
}

/* Sends chunks up to the window: retried ones first, then new ranges (only once FETCHING). */
static void pull_issue(store_pull_t *p)
{
  while (p->inflight < STORE_PULL_WINDOW && p->state != PULL_DONE) {
    pull_chunk_t *c = p->ready;
    if (c) {
      p->ready = c->next;
    } else if (p->state == PULL_FETCHING && p->next_off < p->total) {
      c = xcalloc(1, sizeof(*c));
      c->p = p;
      c->offset = p->next_off;
      c->len = p->total - p->next_off < STORE_CHUNK_SIZE ? p->total - p->next_off : STORE_CHUNK_SIZE;
      p->next_off += c->len;
    } else {
      return;
    }
    c->next = NULL;
    pull_send(p, c);
  }
}

static void pull_on_retry(uv_timer_t *t)
{
  store_pull_t *p = t->data;
  while (p->waiting) { /* move all of them to ready, keeping order */
    pull_chunk_t *c = p->waiting;
    p->waiting = c->next;
    c->next = p->ready;
    p->ready = c;
  }
  pull_issue(p);
}

/* A chunk call failed: retry it later, on this source or the next, or fail the pull. */
static void pull_chunk_failed(store_pull_t *p, pull_chunk_t *c, int status, const char *detail)
{
  p->last_err = status;
  snprintf(p->last_detail, sizeof(p->last_detail), "%s", detail);
  p->failures = status == RAYC_ENOT_FOUND ? STORE_PULL_ATTEMPTS : p->failures + 1;
  log_debug("pull of %s: chunk at %" PRIu64 " from %s failed (%d of %d): %s", p->name, c->offset, pull_source(p),
            p->failures, STORE_PULL_ATTEMPTS, detail);
  if (p->failures >= STORE_PULL_ATTEMPTS) {
    if (p->src + 1 >= p->nsources) {
      free(c);
      pull_fail(p, status, "no source could serve it; %s said: %s", pull_source(p), detail);
      return;
    }
    log_info("pull of %s: moving from %s to %s after: %s", p->name, pull_source(p), p->sources[p->src + 1], detail);
    p->src++;
    p->failures = 0;
  }
  c->next = p->waiting;
  p->waiting = c;
  if (!uv_is_active((uv_handle_t *)&p->retry_timer))
    uv_timer_start(&p->retry_timer, pull_on_retry, (uint64_t)STORE_PULL_RETRY_MS * (p->failures + 1), 0);
}

/* Checks a reply against what the pull knows and asked for; 0 or RAYC_EPROTOCOL (*why set). */
static int pull_check(const store_pull_t *p, const pull_chunk_t *c, const Rayc__GetChunkReply *r, char *why, size_t n)
{
  uint64_t total = r->data_size + r->metadata_size;
  if (r->data_size > UINT64_MAX - r->metadata_size) {
    snprintf(why, n, "sizes %" PRIu64 " + %" PRIu64 " overflow", r->data_size, r->metadata_size);
    return RAYC_EPROTOCOL;
  }
  if (p->state != PULL_SIZING && (r->data_size != p->data_size || r->metadata_size != p->metadata_size)) {
    snprintf(why, n, "sizes %" PRIu64 "+%" PRIu64 " differ from the first chunk's %" PRIu64 "+%" PRIu64, r->data_size,
             r->metadata_size, p->data_size, p->metadata_size);
    return RAYC_EPROTOCOL;
  }
  uint64_t want = c->offset >= total ? 0 : total - c->offset < c->len ? total - c->offset : c->len;
  if (r->data.len != want) {
    snprintf(why, n, "%zu bytes at offset %" PRIu64 ", expected %" PRIu64, r->data.len, c->offset, want);
    return RAYC_EPROTOCOL;
  }
  return 0;
}

static void pull_write(store_pull_t *p, uint64_t offset, ProtobufCBinaryData data)
{
  if (data.len)
    memcpy(p->s->region.base + p->obj->offset + offset, data.data, data.len);
  p->received += data.len;
}

static void pull_complete(store_pull_t *p)
{
  store_server_t *s = p->s;
  int64_t ms = now_ms() - p->start_ms;
  p->obj = NULL;
  store_core_seal(&s->core, p->id, p->client); /* wakes gets, notifies subscribers */
  store_core_release_ref(&s->core, p->id, p->client);
  s->pulled_objects++;
  s->pulled_bytes += p->total;
  store_jobs_count(s, p->id, STORE_JOBS_PULLED, p->total);
  log_msg(p->total >= (64u << 20) ? LOG_INFO : LOG_DEBUG,
          "pulled %s (%" PRIu64 " bytes) from %s in %" PRId64 " ms (%.2f GB/s)", p->name, p->total, pull_source(p), ms,
          ms > 0 ? (double)p->total / 1e6 / (double)ms : 0.0);
  pull_finish(p, 0, NULL);
}

static void pull_progress(store_pull_t *p)
{
  if (p->state == PULL_FETCHING && p->received == p->total)
    pull_complete(p);
  else
    pull_issue(p);
}

static void pull_sized(store_pull_t *p, Rayc__GetChunkReply *r);

static void pull_on_chunk(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  pull_chunk_t *c = arg;
  store_pull_t *p = c->p;
  store_server_t *s = p->s;
  char why[256];
  p->inflight--;
  if (p->state == PULL_DONE || s->shut_down) {
    free(c);
    pb_free(resp);
    pull_maybe_free(p);
    return;
  }
  Rayc__GetChunkReply *r = (Rayc__GetChunkReply *)resp;
  if (status == 0 && (status = pull_check(p, c, r, why, sizeof(why))) != 0)
    detail = why;
  if (status) {
    pb_free(resp);
    pull_chunk_failed(p, c, status, detail);
  } else if (p->state == PULL_SIZING) {
    free(c);
    pull_sized(p, r);
  } else {
    pull_write(p, c->offset, r->data);
    free(c);
    pb_free(resp);
    pull_progress(p);
  }
  if (store_core_take_freed(&s->core))
    store_kick(s);
}

/* ---- the local copy ---- */

typedef struct pull_populate {
  const store_region_t *region;
  uint64_t offset, len;
} pull_populate_t;

static void populate_work(void *arg, int cancelled)
{
  pull_populate_t *j = arg;
  if (!cancelled)
    (void)store_region_populate(j->region, j->offset, j->len);
}

static void populate_done(void *arg)
{
  free(arg);
}

/* Faults in the rest of the local copy on an I/O thread while the chunks travel, so the loop's
 * copies land in warm memory (first touch runs at ~1 GB/s here). Only the copy's own range: the
 * region as a whole is never pre-faulted. Populating never changes bytes, so it is harmless even
 * if the pull fails and the range is reused meanwhile. */
static void pull_prefault(store_pull_t *p, uint64_t from)
{
  store_server_t *s = p->s;
  if (!s->io || p->total <= from)
    return;
  pull_populate_t *j = xcalloc(1, sizeof(*j));
  j->region = &s->region;
  j->offset = p->obj->offset + from;
  j->len = p->total - from;
  store_io_submit(s->io, populate_work, populate_done, j);
}

int store_pull_room_try(store_pull_t *p)
{
  store_server_t *s = p->s;
  store_obj_t *o;
  int rc = store_core_create(&s->core, p->id, p->data_size, p->metadata_size, p->owner, p->owner_len, p->client,
                             STORE_CREATE_SECONDARY, &o);
  if (rc == RAYC_EOUT_OF_MEMORY && store_core_can_ever_fit(&s->core, p->data_size, p->metadata_size))
    return rc;
  p->room = NULL; /* the queue drops its wait when this returns */
  if (rc) {
    pull_fail(p, rc, "%s", store_core_error(&s->core));
    return 0;
  }
  p->obj = o;
  pull_set_state(p, PULL_FETCHING);
  Rayc__GetChunkReply *first = p->first;
  p->first = NULL;
  pull_prefault(p, first->data.len);
  pull_write(p, 0, first->data);
  p->next_off = first->data.len;
  pb_free(first);
  pull_progress(p);
  return 0;
}

void store_pull_room_timeout(store_pull_t *p)
{
  p->room = NULL; /* already out of the queue */
  pull_fail(p, RAYC_EOUT_OF_MEMORY, "no room for %" PRIu64 " bytes: %s", p->total, store_core_error(&p->s->core));
}

/* The first chunk arrived: the sizes are known; make the local copy (waiting for room if need be). */
static void pull_sized(store_pull_t *p, Rayc__GetChunkReply *r)
{
  store_server_t *s = p->s;
  p->first = r;
  p->data_size = r->data_size;
  p->metadata_size = r->metadata_size;
  p->total = r->data_size + r->metadata_size;
  if (r->owner.len) {
    p->owner = xmemdup(r->owner.data, r->owner.len);
    p->owner_len = r->owner.len;
  }
  pull_set_state(p, PULL_ROOM);
  if (!s->rooms_head && store_pull_room_try(p) != RAYC_EOUT_OF_MEMORY)
    return;
  p->room = store_room_wait_pull(s, p, p->total, -1);
}

/* ---- requests ---- */

static void waiter_on_timeout(uv_timer_t *t)
{
  pull_waiter_t *w = t->data;
  store_pull_t *p = w->p;
  pull_waiter_t **pp = &p->waiters;
  while (*pp != w)
    pp = &(*pp)->next;
  *pp = w->next;
  char *msg = xasprintf("pull of %s from %s: not here after %" PRId64 " ms (%" PRIu64 " of %" PRIu64 " bytes, %s)",
                        p->name, pull_source(p), now_ms() - p->start_ms, p->received, p->total,
                        pull_state_name(p->state));
  store_reply_error(w->conn, w->seq, RAYC_ETIMEOUT, msg);
  free(msg);
  waiter_free(w);
  if (!p->waiters)
    pull_fail(p, RAYC_ETIMEOUT, "abandoned: every request for it timed out");
}

static void pull_add_waiter(store_pull_t *p, local_conn_t *c, uint64_t seq, int64_t timeout_ms)
{
  pull_waiter_t *w = xcalloc(1, sizeof(*w));
  w->p = p;
  w->conn = c;
  w->seq = seq;
  uv_timer_init(p->s->loop, &w->timer);
  w->timer.data = w;
  if (timeout_ms >= 0)
    uv_timer_start(&w->timer, waiter_on_timeout, (uint64_t)timeout_ms, 0);
  w->next = p->waiters;
  p->waiters = w;
}

static void pull_add_sources(store_pull_t *p, char **sources, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < p->nsources && strcmp(p->sources[k], sources[i]) != 0)
      k++;
    if (k < p->nsources || p->nsources >= STORE_PULL_MAX_SOURCES)
      continue;
    p->sources = xrealloc(p->sources, (p->nsources + 1) * sizeof(*p->sources));
    p->sources[p->nsources++] = xstrdup(sources[i]);
  }
}

static store_pull_t *pull_new(store_server_t *s, const uint8_t *id, pull_state_t st)
{
  store_pull_t *p = xcalloc(1, sizeof(*p));
  p->s = s;
  memcpy(p->id, id, ID_OBJECT_SIZE);
  id_short(id, ID_OBJECT_SIZE, p->name);
  p->client = store_internal_client(s);
  p->state = st;
  p->start_ms = now_ms();
  uv_timer_init(s->loop, &p->retry_timer);
  p->retry_timer.data = p;
  hmap_put(&s->pulls, id, ID_OBJECT_SIZE, p);
  log_debug("pull of %s: started in %s", p->name, pull_state_name(st));
  return p;
}

/* Asks the current source for the first chunk, which tells the sizes. */
static void pull_begin_fetch(store_pull_t *p)
{
  pull_set_state(p, PULL_SIZING);
  pull_chunk_t *c = xcalloc(1, sizeof(*c));
  c->p = p;
  c->len = STORE_CHUNK_SIZE;
  c->next = p->ready;
  p->ready = c;
  pull_issue(p);
}

static int pull_check_request(store_server_t *s, const Rayc__StorePullRequest *r)
{
  if (r->n_sources > STORE_PULL_MAX_SOURCES)
    return store_fail(s, RAYC_EINVALID_ARGUMENT, "%zu sources; the limit is %d", r->n_sources, STORE_PULL_MAX_SOURCES);
  for (size_t i = 0; i < r->n_sources; i++)
    if (!r->sources[i][0] || strlen(r->sources[i]) > 255)
      return store_fail(s, RAYC_EINVALID_ARGUMENT, "source %zu is not a host:port", i);
  if (!s->om_client)
    return store_fail(s, RAYC_EUNAVAILABLE, "this store has no object manager (no --node-ip-address)");
  return 0;
}

int store_pull_request(store_server_t *s, local_conn_t *c, uint64_t seq, const Rayc__StorePullRequest *r)
{
  int rc = pull_check_request(s, r);
  if (rc)
    return rc;
  const uint8_t *id = r->object_id.data;
  store_obj_t *o = store_table_find(&s->core.table, id);
  store_pull_t *p = hmap_get(&s->pulls, id, ID_OBJECT_SIZE);
  if (!p && o && o->state != STORE_OBJ_CREATED) {
    char name[16];
    if (o->delete_pending)
      return store_fail(s, RAYC_EUNAVAILABLE, "object %s is being deleted here; pull it again later",
                        store_obj_name(o, name));
    store_reply_ok(c, seq); /* here already, in memory or on disk */
    return 0;
  }
  if (!p && !o && r->n_sources == 0)
    return store_fail(s, RAYC_EINVALID_ARGUMENT, "a pull needs at least one source");
  if (!p) {
    p = pull_new(s, id, o ? PULL_AWAIT_LOCAL : PULL_SIZING);
    pull_add_sources(p, r->sources, r->n_sources);
    if (!o)
      pull_begin_fetch(p);
  } else {
    pull_add_sources(p, r->sources, r->n_sources);
  }
  if (p->state != PULL_DONE)
    pull_add_waiter(p, c, seq, r->timeout_ms < 0 ? -1 : r->timeout_ms);
  return 0;
}

void store_pull_on_sealed(store_server_t *s, const store_obj_t *o)
{
  store_pull_t *p = hmap_get(&s->pulls, o->id, ID_OBJECT_SIZE);
  if (p && p->state == PULL_AWAIT_LOCAL)
    pull_finish(p, 0, NULL);
}

void store_pull_cron(store_server_t *s)
{
  for (hmap_iter_t it = hmap_iter(&s->pulls); hmap_next(&it);) {
    store_pull_t *p = it.value;
    if (p->state != PULL_AWAIT_LOCAL || store_table_find(&s->core.table, p->id))
      continue;
    if (p->nsources == 0)
      pull_fail(p, RAYC_ENOT_FOUND, "its local create was aborted and no source was given");
    else
      pull_begin_fetch(p);
  }
}

void store_pull_drop_conn(store_server_t *s, local_conn_t *c)
{
  size_t n = 0, cap = s->pulls.count;
  store_pull_t **abandoned = xcalloc(cap ? cap : 1, sizeof(*abandoned));
  for (hmap_iter_t it = hmap_iter(&s->pulls); hmap_next(&it);) {
    store_pull_t *p = it.value;
    pull_waiter_t **pp = &p->waiters;
    while (*pp) {
      pull_waiter_t *w = *pp;
      if (w->conn != c) {
        pp = &w->next;
        continue;
      }
      *pp = w->next;
      waiter_free(w);
    }
    if (!p->waiters)
      abandoned[n++] = p;
  }
  /* Failed outside the iteration: ending one pull may let another's local create proceed (and
   * end), which changes the map. A pull ended meanwhile stays valid until its close callback. */
  for (size_t i = 0; i < n; i++)
    pull_fail(abandoned[i], RAYC_ECANCELLED, "abandoned: its requester disconnected");
  free(abandoned);
}

void store_pull_shutdown(store_server_t *s)
{
  /* s->shut_down is set: ending a pull retries nothing, so the map changes only at its entry. */
  for (hmap_iter_t it = hmap_iter(&s->pulls); hmap_next(&it);)
    pull_fail(it.value, RAYC_EUNAVAILABLE, "the store is shutting down");
  rpc_client_destroy(s->om_client); /* runs the callbacks of calls in flight: they free their pulls */
  s->om_client = NULL;
}
