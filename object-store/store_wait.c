/*
 * Requests that wait, parked on the store's loop: gets whose objects are not all sealed yet, and
 * creates that found no room.
 *
 * A parked get is answered when a seal completes it (store_wait_on_sealed) or when its timer
 * fires, whichever comes first; the reply is built at that moment, so an object deleted while the
 * get waited is reported not found. Parked creates are retried oldest first whenever memory is
 * freed, stopping at the first that still does not fit, so a large create is not starved by a
 * stream of small ones; each fails with OUT_OF_MEMORY when its timer fires. When the head of the
 * queue leaves (timer, disconnect), the queue is retried too, since what waited behind it may fit.
 *
 * Skeleton costs, to revisit with eviction: a seal scans every parked get, and a free retries the
 * queue from its head.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

static void wait_list_append(store_wait_list_t *l, store_wait_t *w)
{
  w->next = NULL;
  w->prev = l->tail;
  if (l->tail)
    l->tail->next = w;
  else
    l->head = w;
  l->tail = w;
}

static void wait_on_closed(uv_handle_t *h)
{
  store_wait_t *w = h->data;
  free(w->ids);
  free(w->owner);
  free(w);
}

/* Unlinks w and frees it once its timer handle is closed. */
static void wait_remove(store_wait_list_t *l, store_wait_t *w)
{
  if (w->prev)
    w->prev->next = w->next;
  else
    l->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    l->tail = w->prev;
  uv_close((uv_handle_t *)&w->timer, wait_on_closed);
}

static store_wait_t *wait_new(store_server_t *s, local_conn_t *c, uint64_t seq, int64_t timeout_ms,
                              uv_timer_cb on_timeout)
{
  store_wait_t *w = xcalloc(1, sizeof(*w));
  w->srv = s;
  w->conn = c;
  w->seq = seq;
  w->start_ms = now_ms();
  uv_timer_init(s->loop, &w->timer);
  w->timer.data = w;
  if (timeout_ms >= 0)
    uv_timer_start(&w->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return w;
}

void store_get_reply(store_server_t *s, local_conn_t *c, uint64_t seq, const uint8_t *ids, size_t n)
{
  Rayc__StoreObjectLocation *locs = xcalloc(n, sizeof(*locs));
  Rayc__StoreObjectLocation **ptrs = xcalloc(n, sizeof(*ptrs));
  uint64_t client = local_conn_id(c);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *id = ids + i * ID_OBJECT_SIZE;
    rayc__store_object_location__init(&locs[i]);
    locs[i].object_id = pb_bytes(id, ID_OBJECT_SIZE);
    store_obj_t *o = store_core_get(&s->core, id, client);
    if (o) {
      locs[i].found = 1;
      locs[i].offset = o->offset;
      locs[i].data_size = o->data_size;
      locs[i].metadata_size = o->metadata_size;
    }
    ptrs[i] = &locs[i];
  }
  Rayc__StoreGetReply r = RAYC__STORE_GET_REPLY__INIT;
  r.n_objects = n;
  r.objects = ptrs;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_GET_REPLY;
  m.store_get_reply = &r;
  store_reply(c, seq, &m, -1);
  free(ptrs);
  free(locs);
}

static void wait_get_timeout(uv_timer_t *t)
{
  store_wait_t *w = t->data;
  store_get_reply(w->srv, w->conn, w->seq, w->ids, w->n);
  wait_remove(&w->srv->gets, w);
}

void store_wait_get(store_server_t *s, local_conn_t *c, uint64_t seq, const uint8_t *ids, size_t n,
                    int64_t timeout_ms)
{
  store_wait_t *w = wait_new(s, c, seq, timeout_ms, wait_get_timeout);
  w->ids = xmemdup(ids, n * ID_OBJECT_SIZE);
  w->n = n;
  wait_list_append(&s->gets, w);
}

/* 1 when w waits for id and every object it waits for is now readable. */
static int wait_get_complete(const store_server_t *s, const store_wait_t *w, const uint8_t *id)
{
  int mentions = 0;
  for (size_t i = 0; i < w->n; i++) {
    const uint8_t *x = w->ids + i * ID_OBJECT_SIZE;
    if (memcmp(x, id, ID_OBJECT_SIZE) == 0)
      mentions = 1;
    else if (!store_core_contains(&s->core, x))
      return 0;
  }
  return mentions;
}

void store_wait_on_sealed(void *ctx, const store_obj_t *o)
{
  store_server_t *s = ctx;
  if (s->shut_down)
    return;
  store_wait_t *next;
  for (store_wait_t *w = s->gets.head; w; w = next) {
    next = w->next;
    if (!wait_get_complete(s, w, o->id))
      continue;
    store_get_reply(s, w->conn, w->seq, w->ids, w->n);
    wait_remove(&s->gets, w);
  }
}

int store_create_now(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a)
{
  store_obj_t *o;
  int rc = store_core_create(&s->core, a->id, a->data_size, a->metadata_size, a->owner, a->owner_len,
                             local_conn_id(c), &o);
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

static store_create_args_t wait_create_args(const store_wait_t *w)
{
  store_create_args_t a = {w->id, w->data_size, w->metadata_size, w->owner, w->owner_len};
  return a;
}

static void wait_create_timeout(uv_timer_t *t)
{
  store_wait_t *w = t->data;
  store_server_t *s = w->srv;
  store_create_args_t a = wait_create_args(w);
  int rc = store_create_now(s, w->conn, w->seq, &a);
  if (rc) {
    char *msg = xasprintf("%s (after waiting %" PRId64 " ms for room)", store_core_error(&s->core),
                          now_ms() - w->start_ms);
    store_reply_error(w->conn, w->seq, rc, msg);
    free(msg);
  }
  wait_remove(&s->creates, w);
  store_wait_retry_creates(s); /* those queued behind it may fit */
}

void store_wait_create(store_server_t *s, local_conn_t *c, uint64_t seq, const store_create_args_t *a,
                       int timeout_ms)
{
  store_wait_t *w = wait_new(s, c, seq, timeout_ms, wait_create_timeout);
  memcpy(w->id, a->id, ID_OBJECT_SIZE);
  w->data_size = a->data_size;
  w->metadata_size = a->metadata_size;
  if (a->owner_len) {
    w->owner = xmemdup(a->owner, a->owner_len);
    w->owner_len = a->owner_len;
  }
  wait_list_append(&s->creates, w);
}

void store_wait_retry_creates(store_server_t *s)
{
  store_wait_t *w;
  while ((w = s->creates.head) != NULL) {
    store_create_args_t a = wait_create_args(w);
    int rc = store_create_now(s, w->conn, w->seq, &a);
    if (rc == RAYC_EOUT_OF_MEMORY)
      return;
    if (rc)
      store_reply_error(w->conn, w->seq, rc, store_core_error(&s->core));
    wait_remove(&s->creates, w);
  }
}

static void wait_drop_list(store_wait_list_t *l, local_conn_t *c)
{
  store_wait_t *next;
  for (store_wait_t *w = l->head; w; w = next) {
    next = w->next;
    if (!c || w->conn == c)
      wait_remove(l, w);
  }
}

void store_wait_drop(store_server_t *s, local_conn_t *c)
{
  wait_drop_list(&s->gets, c);
  wait_drop_list(&s->creates, c);
}
