/*
 * Requests that wait, parked on the store's loop.
 *
 * Gets. A get takes a reference to each object that is readable when it arrives; for the others
 * it is parked and indexed by the ids it still lacks (s->get_index: id -> the parked gets and
 * positions waiting for it), so a seal or a finished restore touches only the gets that wait for
 * that object. Each object's reference is taken the moment it becomes readable, so an object
 * cannot be evicted between becoming readable and the reply; the reply reports exactly the
 * objects referenced. Spilled objects are restored on the way: a get whose time is up (or that
 * asked not to wait at all) while some of its objects are being restored turns "restore-only"
 * and is answered as soon as no restore of its objects is pending, so a get of a spilled object
 * never reports it missing just because the disk was slower than the timeout.
 *
 * Room. Creates that found no room, the local copies of pulls, and restores wait in one queue,
 * oldest first. They are retried whenever memory may have been made (a free, a finished spill, a
 * disconnect), stopping at the first that still does not fit, so a large request is not starved
 * by a stream of small ones; meanwhile the spiller is told how much the head needs. Each has a
 * timer: a client create fails with OUT_OF_MEMORY (naming the sizes and the time waited), a pull
 * fails, a restore gives up (its gets report OUT_OF_MEMORY). When the head leaves, the queue is
 * retried, since what waited behind it may fit.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

/* ---- the index of parked gets by missing id ---- */

typedef struct store_get_entry {
  store_get_wait_t *w;
  size_t i;
} store_get_entry_t;

typedef struct store_get_index {
  size_t n, cap;
  store_get_entry_t *e;
} store_get_index_t;

static void index_add(store_server_t *s, const uint8_t *id, store_get_wait_t *w, size_t i)
{
  store_get_index_t *x = hmap_get(&s->get_index, id, ID_OBJECT_SIZE);
  if (!x) {
    x = xcalloc(1, sizeof(*x));
    hmap_put(&s->get_index, id, ID_OBJECT_SIZE, x);
  }
  if (x->n == x->cap) {
    x->cap = x->cap ? 2 * x->cap : 2;
    x->e = xrealloc(x->e, x->cap * sizeof(*x->e));
  }
  x->e[x->n++] = (store_get_entry_t){w, i};
}

static void index_remove(store_server_t *s, const uint8_t *id, const store_get_wait_t *w, size_t i)
{
  store_get_index_t *x = hmap_get(&s->get_index, id, ID_OBJECT_SIZE);
  if (!x)
    return;
  for (size_t k = 0; k < x->n; k++) {
    if (x->e[k].w == w && x->e[k].i == i) {
      x->e[k] = x->e[--x->n];
      break;
    }
  }
  if (x->n == 0) {
    hmap_del(&s->get_index, id, ID_OBJECT_SIZE);
    free(x->e);
    free(x);
  }
}

static const uint8_t *get_id(const store_get_wait_t *w, size_t i)
{
  return w->ids + i * ID_OBJECT_SIZE;
}

/* ---- parked gets ---- */

static void get_on_closed(uv_handle_t *h)
{
  store_get_wait_t *w = h->data;
  free(w->ids);
  free(w->got);
  free(w);
}

static void get_unlink(store_server_t *s, store_get_wait_t *w)
{
  if (w->prev)
    w->prev->next = w->next;
  else
    s->gets_head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    s->gets_tail = w->prev;
}

/* Takes a reference to object i for the get when it is readable; 1 when it did. */
static int get_take(store_server_t *s, store_get_wait_t *w, size_t i)
{
  if (w->got[i] || !store_core_get(&s->core, get_id(w, i), local_conn_id(w->conn)))
    return 0;
  w->got[i] = 1;
  w->remaining--;
  return 1;
}

/* 1 when an object the get lacks is being restored (or waits for room to be). */
static int get_restoring(const store_server_t *s, const store_get_wait_t *w)
{
  for (size_t i = 0; i < w->n; i++) {
    if (w->got[i])
      continue;
    const store_obj_t *o = store_table_find(&s->core.table, get_id(w, i));
    if (o && store_restore_pending(s, o))
      return 1;
  }
  return 0;
}

static void get_location(const store_server_t *s, const store_get_wait_t *w, size_t i, Rayc__StoreObjectLocation *l)
{
  const store_obj_t *o = store_table_find(&s->core.table, get_id(w, i));
  rayc__store_object_location__init(l);
  l->object_id = pb_bytes(get_id(w, i), ID_OBJECT_SIZE);
  if (w->got[i] && o) {
    l->found = 1;
    l->offset = o->offset;
    l->data_size = o->data_size;
    l->metadata_size = o->metadata_size;
  } else if (o && o->state == STORE_OBJ_SPILLED) {
    l->error = o->restore_err;
  }
}

static void get_reply(store_server_t *s, const store_get_wait_t *w)
{
  Rayc__StoreObjectLocation *locs = xcalloc(w->n, sizeof(*locs));
  Rayc__StoreObjectLocation **ptrs = xcalloc(w->n, sizeof(*ptrs));
  for (size_t i = 0; i < w->n; i++) {
    get_location(s, w, i, &locs[i]);
    ptrs[i] = &locs[i];
  }
  Rayc__StoreGetReply r = RAYC__STORE_GET_REPLY__INIT;
  r.n_objects = w->n;
  r.objects = ptrs;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_GET_REPLY;
  m.store_get_reply = &r;
  store_reply(w->conn, w->seq, &m, -1);
  free(ptrs);
  free(locs);
}

/* Unindexes, unlinks and closes a parked get (freed by the close callback). */
static void get_remove(store_server_t *s, store_get_wait_t *w)
{
  w->finished = 1;
  for (size_t i = 0; i < w->n; i++)
    if (!w->got[i])
      index_remove(s, get_id(w, i), w, i);
  get_unlink(s, w);
  uv_close((uv_handle_t *)&w->timer, get_on_closed);
}

static void get_finish(store_server_t *s, store_get_wait_t *w)
{
  if (w->finished)
    return;
  get_reply(s, w);
  get_remove(s, w);
}

static void get_on_timeout(uv_timer_t *t)
{
  store_get_wait_t *w = t->data;
  if (get_restoring(w->srv, w))
    w->restore_only = 1; /* answered when the restores end */
  else
    get_finish(w->srv, w);
}

static void get_park(store_server_t *s, store_get_wait_t *w, int64_t timeout_ms)
{
  uv_timer_init(s->loop, &w->timer);
  w->timer.data = w;
  if (timeout_ms > 0)
    uv_timer_start(&w->timer, get_on_timeout, (uint64_t)timeout_ms, 0);
  w->restore_only = timeout_ms == 0;
  w->prev = s->gets_tail;
  if (s->gets_tail)
    s->gets_tail->next = w;
  else
    s->gets_head = w;
  s->gets_tail = w;
  for (size_t i = 0; i < w->n; i++)
    if (!w->got[i])
      index_add(s, get_id(w, i), w, i);
}

void store_get_start(store_server_t *s, local_conn_t *c, uint64_t seq, const uint8_t *ids, size_t n, int64_t timeout_ms)
{
  store_get_wait_t *w = xcalloc(1, sizeof(*w));
  w->srv = s;
  w->conn = c;
  w->seq = seq;
  w->n = w->remaining = n;
  w->ids = xmemdup(ids, n * ID_OBJECT_SIZE);
  w->got = xcalloc(n ? n : 1, 1);
  for (size_t i = 0; i < n; i++) {
    if (get_take(s, w, i))
      continue;
    store_obj_t *o = store_table_find(&s->core.table, get_id(w, i));
    if (o && o->state == STORE_OBJ_SPILLED)
      store_restore_request(s, o);
  }
  if (w->remaining == 0 || (timeout_ms == 0 && !get_restoring(s, w))) {
    get_reply(s, w);
    free(w->ids);
    free(w->got);
    free(w);
    return;
  }
  get_park(s, w, timeout_ms);
}

void store_gets_on_object(store_server_t *s, const uint8_t *id)
{
  store_get_index_t *x = hmap_get(&s->get_index, id, ID_OBJECT_SIZE);
  if (!x)
    return;
  size_t n = x->n;
  store_get_entry_t *e = xmemdup(x->e, n * sizeof(*e)); /* the index changes below */
  for (size_t k = 0; k < n; k++)
    if (get_take(s, e[k].w, e[k].i))
      index_remove(s, id, e[k].w, e[k].i);
  for (size_t k = 0; k < n; k++) {
    store_get_wait_t *w = e[k].w;
    if (!w->finished && (w->remaining == 0 || (w->restore_only && !get_restoring(s, w))))
      get_finish(s, w);
  }
  free(e);
}

void store_gets_retry_restores(store_server_t *s)
{
  for (store_get_wait_t *w = s->gets_head; w; w = w->next) {
    for (size_t i = 0; i < w->n; i++) {
      store_obj_t *o = store_table_find(&s->core.table, get_id(w, i));
      if (!w->got[i] && o && o->state == STORE_OBJ_SPILLED && !store_restore_pending(s, o))
        store_restore_request(s, o);
    }
  }
}

/* ---- requests waiting for room ---- */

static void room_on_closed(uv_handle_t *h)
{
  store_room_wait_t *w = h->data;
  free(w->owner);
  free(w);
}

static void room_remove(store_server_t *s, store_room_wait_t *w)
{
  if (w->prev)
    w->prev->next = w->next;
  else
    s->rooms_head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    s->rooms_tail = w->prev;
  if (w->kind == STORE_ROOM_RESTORE)
    hmap_del(&s->restores, w->id, ID_OBJECT_SIZE);
  uv_close((uv_handle_t *)&w->timer, room_on_closed);
}

static void room_on_timeout(uv_timer_t *t);

static store_room_wait_t *room_new(store_server_t *s, store_room_kind_t kind, const uint8_t *id, uint64_t need,
                                   int64_t timeout_ms)
{
  store_room_wait_t *w = xcalloc(1, sizeof(*w));
  w->srv = s;
  w->kind = kind;
  w->need = need;
  memcpy(w->id, id, ID_OBJECT_SIZE);
  w->start_ms = now_ms();
  uv_timer_init(s->loop, &w->timer);
  w->timer.data = w;
  if (timeout_ms >= 0)
    uv_timer_start(&w->timer, room_on_timeout, (uint64_t)timeout_ms, 0);
  w->prev = s->rooms_tail;
  if (s->rooms_tail)
    s->rooms_tail->next = w;
  else
    s->rooms_head = w;
  s->rooms_tail = w;
  return w;
}

int store_create_now(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a)
{
  store_obj_t *o;
  int rc = store_core_create(&s->core, a->id, a->data_size, a->metadata_size, a->owner, a->owner_len, local_conn_id(c),
                             0, &o);
  if (rc)
    return rc;
  Rayc__StoreCreateReply r = RAYC__STORE_CREATE_REPLY__INIT;
  r.offset = o->offset;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE_REPLY;
  m.store_create_reply = &r;
  store_reply(c, seq, &m, -1);
  return 0;
}

static store_create_args_t room_create_args(const store_room_wait_t *w)
{
  store_create_args_t a = {w->id, w->data_size, w->metadata_size, w->owner, w->owner_len};
  return a;
}

void store_room_wait_create(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a,
                            int timeout_ms)
{
  store_room_wait_t *w = room_new(s, STORE_ROOM_CREATE, a->id, a->data_size + a->metadata_size, timeout_ms);
  w->conn = c;
  w->seq = seq;
  w->data_size = a->data_size;
  w->metadata_size = a->metadata_size;
  if (a->owner_len) {
    w->owner = xmemdup(a->owner, a->owner_len);
    w->owner_len = a->owner_len;
  }
  store_spill_maybe(s);
}

store_room_wait_t *store_room_wait_pull(store_server_t *s, store_pull_t *p, uint64_t need, int64_t timeout_ms)
{
  static const uint8_t no_id[ID_OBJECT_SIZE];
  store_room_wait_t *w = room_new(s, STORE_ROOM_PULL, no_id, need, timeout_ms);
  w->pull = p;
  store_spill_maybe(s);
  return w;
}

store_room_wait_t *store_room_wait_restore(store_server_t *s, const uint8_t *id, uint64_t need)
{
  store_room_wait_t *w = room_new(s, STORE_ROOM_RESTORE, id, need, STORE_RESTORE_ROOM_MS);
  hmap_put(&s->restores, id, ID_OBJECT_SIZE, w);
  store_spill_maybe(s);
  return w;
}

void store_room_cancel(store_server_t *s, store_room_wait_t *w)
{
  room_remove(s, w);
  store_room_retry(s); /* those queued behind it may fit */
}

uint64_t store_room_head_need(const store_server_t *s)
{
  return s->rooms_head ? s->rooms_head->need : 0;
}

/* Runs w once: 0 when it is done (answered, started or failed), RAYC_EOUT_OF_MEMORY to wait on. */
static int room_try(store_server_t *s, store_room_wait_t *w)
{
  store_obj_t *o;
  switch (w->kind) {
    case STORE_ROOM_CREATE: {
      store_create_args_t a = room_create_args(w);
      int rc = store_create_now(s, w->conn, w->seq, &a);
      if (rc == RAYC_EOUT_OF_MEMORY)
        return rc;
      if (rc)
        store_reply_error(w->conn, w->seq, rc, store_core_error(&s->core));
      return 0;
    }
    case STORE_ROOM_PULL:
      return store_pull_room_try(w->pull);
    case STORE_ROOM_RESTORE:
      o = store_table_find(&s->core.table, w->id);
      if (!o || o->state != STORE_OBJ_SPILLED)
        return 0;
      return store_restore_now(s, o);
  }
  return 0;
}

void store_room_retry(store_server_t *s)
{
  store_room_wait_t *w;
  while ((w = s->rooms_head) != NULL && !s->shut_down) {
    if (room_try(s, w) == RAYC_EOUT_OF_MEMORY)
      return;
    room_remove(s, w);
  }
}

static void room_timeout_create(store_server_t *s, store_room_wait_t *w)
{
  store_create_args_t a = room_create_args(w);
  int rc = store_create_now(s, w->conn, w->seq, &a);
  if (rc) {
    char *msg = xasprintf("%s (after waiting %" PRId64 " ms for room)", store_core_error(&s->core),
                          now_ms() - w->start_ms);
    store_reply_error(w->conn, w->seq, rc, msg);
    free(msg);
  }
}

static void room_on_timeout(uv_timer_t *t)
{
  store_room_wait_t *w = t->data;
  store_server_t *s = w->srv;
  room_remove(s, w); /* out of the queue first: what runs below may queue again */
  switch (w->kind) {
    case STORE_ROOM_CREATE:
      room_timeout_create(s, w);
      break;
    case STORE_ROOM_PULL:
      store_pull_room_timeout(w->pull);
      break;
    case STORE_ROOM_RESTORE: {
      store_obj_t *o = store_table_find(&s->core.table, w->id);
      if (o && o->state == STORE_OBJ_SPILLED)
        store_restore_fail(s, o, RAYC_EOUT_OF_MEMORY);
      break;
    }
  }
  store_room_retry(s);
}

/* ---- dropping ---- */

void store_wait_drop(store_server_t *s, local_conn_t *c)
{
  store_get_wait_t *gnext;
  for (store_get_wait_t *g = s->gets_head; g; g = gnext) {
    gnext = g->next;
    if (!c || g->conn == c)
      get_remove(s, g);
  }
  store_room_wait_t *rnext;
  for (store_room_wait_t *r = s->rooms_head; r; r = rnext) {
    rnext = r->next;
    if (!c || (r->kind == STORE_ROOM_CREATE && r->conn == c))
      room_remove(s, r);
  }
}
