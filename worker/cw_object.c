/*
 * Objects owned by this process: the table, their states (PENDING -> INLINE | IN_STORE | ERROR),
 * reference counts and freeing; and the public put/get/wait/release calls. The table also holds
 * the refs this process borrows (OBJ_BORROWED, cw_borrow.c).
 *
 * An owned object is freed everywhere when no local handle, pending task, containing object,
 * borrower or result in transit refers to it and it is no longer pending: its inline value is
 * dropped, its store copy deleted, and the refs it contains released.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cw_blob_t *cw_blob_new(const void *data, size_t len)
{
  cw_blob_t *b = xmalloc(sizeof(*b) + len);
  b->refs = 1;
  b->len = len;
  if (len && data)
    memcpy(b->data, data, len);
  return b;
}

void cw_blob_unref(cw_blob_t *b)
{
  if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
    free(b);
}

static void cw_blob_ref(cw_blob_t *b)
{
  __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
}

cw_object_t *cw_obj_new(cw_t *cw, const id_object_t *id)
{
  cw_object_t *o = xcalloc(1, sizeof(*o));
  o->id = *id;
  o->state = OBJ_PENDING;
  hmap_put(&cw->objects, id->b, ID_OBJECT_SIZE, o);
  return o;
}

cw_obj_ext_t *cw_obj_x(cw_object_t *o)
{
  if (!o->x)
    o->x = xcalloc(1, sizeof(*o->x));
  return o->x;
}

cw_object_t *cw_obj_get(cw_t *cw, const id_object_t *id)
{
  return hmap_get(&cw->objects, id->b, ID_OBJECT_SIZE);
}

void cw_wake_hold(cw_t *cw)
{
  if (cw->wake_held++ == 0)
    cw->wake_holder = pthread_self();
}

int cw_wake_take(cw_t *cw)
{
  int pending = --cw->wake_held == 0 && cw->wake_pending;
  if (cw->wake_held == 0)
    cw->wake_pending = 0;
  return pending;
}

void cw_wake_release(cw_t *cw, int pending)
{
  if (pending) {
    pthread_cond_broadcast(&cw->cv);
    cw_get_kick(cw);
  }
}

/* Wakes the tasks waiting for o and every thread blocked in get/wait (now, or at cw_wake_release). */
static void cw_obj_ready(cw_t *cw, cw_object_t *o)
{
  if (o->wait_mark)
    cw_memo_cut(cw, o);
  cw_task_t **w = o->waiters;
  size_t n = o->nwaiters;
  o->waiters = NULL;
  o->nwaiters = o->capwaiters = 0;
  for (size_t i = 0; i < n; i++) {
    if (o->state == OBJ_ERROR && !w[i]->dep_err) {
      w[i]->dep_err = o->err;
      w[i]->dep_err_msg = xstrdup(o->err_msg ? o->err_msg : "");
    }
    if (--w[i]->deps_pending == 0)
      cw_task_ready(cw, w[i]);
  }
  free(w);
  cw->ready_gen++;
  if (cw->wake_held && pthread_equal(cw->wake_holder, pthread_self())) { /* cw->mu may have been let go meanwhile */
    cw->wake_pending = 1;
  } else {
    pthread_cond_broadcast(&cw->cv);
    cw_get_kick(cw);
  }
  cw_status_ready(cw, o);
  cw_obj_maybe_free(cw, o);
}

void cw_obj_set_inline(cw_t *cw, cw_object_t *o, const void *data, size_t len)
{
  o->state = OBJ_INLINE;
  o->blob = cw_blob_new(data, len);
  o->size = len;
  cw_obj_ready(cw, o);
}

void cw_obj_set_store(cw_t *cw, cw_object_t *o, const id_node_t *node, uint64_t size, const char *location)
{
  o->state = OBJ_IN_STORE;
  o->node = *node;
  free(o->location);
  o->location = location && *location ? xstrdup(location) : NULL;
  o->size = size;
  cw_obj_ready(cw, o);
}

void cw_obj_set_error(cw_t *cw, cw_object_t *o, int err, const char *msg)
{
  o->state = OBJ_ERROR;
  o->err = err;
  o->err_msg = xstrdup(msg ? msg : rayc_strerror(err));
  cw_obj_ready(cw, o);
}

static void cw_free_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_debug("FreeObjects failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

/* Frees the primary copy of an object that lives in another node's store, through its object
 * manager (copies pulled to other nodes are secondary and evicted by their stores). */
static void cw_free_remote(cw_t *cw, cw_object_t *o)
{
  if (!o->location || !cw->client || cw->client_closing)
    return;
  Rayc__FreeObjectsRequest req = RAYC__FREE_OBJECTS_REQUEST__INIT;
  ProtobufCBinaryData id = pb_bytes(o->id.b, ID_OBJECT_SIZE);
  req.object_ids = &id;
  req.n_object_ids = 1;
  rpc_call(rpc_channel_get(cw->client, o->location), &rayc__object_manager_service__descriptor, "FreeObjects",
           &req.base, 5000, cw_free_done, NULL);
}

static void cw_obj_free(cw_t *cw, cw_object_t *o)
{
  if (o->wait_mark) /* freed while pending: rayc_wait's memo must not answer for its id any more */
    cw_memo_cut(cw, o);
  hmap_del(&cw->objects, o->id.b, ID_OBJECT_SIZE);
  if (cw->streams) /* a generator: the items nobody took go with it */
    cw_stream_forget(cw, &o->id);
  if (o->owner) { /* a borrowed entry: nothing else to it */
    free(o->x);
    free(o->err_msg);
    free(o);
    return;
  }
  if (o->state == OBJ_IN_STORE && cw->store && memcmp(o->node.b, cw->node_id.b, ID_NODE_SIZE) == 0)
    store_client_delete(cw->store, o->id.b, 1);
  else if (o->state == OBJ_IN_STORE)
    cw_free_remote(cw, o);
  cw_lineage_drop(cw, o);
  cw_blob_unref(o->blob);
  if (o->x) {
    cw_nested_drop(cw, o->x->nested, o->x->nnested, CW_HOLD_CONTAINED); /* may free what it contained */
    free(o->x->borrowers);
    free(o->x->swaits);
    free(o->x);
  }
  free(o->location);
  free(o->err_msg);
  free(o->waiters);
  free(o);
}

void cw_obj_maybe_free(cw_t *cw, cw_object_t *o)
{
  if (cw->releasing)
    return;
  if (o->owner) {
    if (o->local_refs <= 0 && o->submitted_refs <= 0 && o->contained <= 0)
      cw_borrowed_release(cw, o);
    return;
  }
  if (o->local_refs <= 0 && o->submitted_refs <= 0 && o->contained <= 0 &&
      (!o->x || (o->x->transit <= 0 && o->x->nborrowers == 0)) && o->state != OBJ_PENDING)
    cw_obj_free(cw, o);
}

void cw_obj_unref(cw_t *cw, cw_object_t *o)
{
  if (cw->releasing)
    return;
  o->local_refs--;
  cw_obj_maybe_free(cw, o);
}

void cw_objects_release_all(cw_t *cw)
{
  cw->releasing = 1; /* from now on nothing cascades: everything goes, and pointers may dangle */
  /* Detach lineage first: freeing a kept task releases its arguments, which would free other
   * objects of the table while it is being walked. */
  cw_task_t **kept = NULL;
  size_t nkept = 0;
  for (hmap_iter_t it = hmap_iter(&cw->objects); hmap_next(&it);) {
    cw_object_t *o = it.value;
    cw_task_t *t = o->lineage;
    o->lineage = NULL;
    if (t && --t->live_returns == 0) {
      kept = xrealloc(kept, (nkept + 1) * sizeof(*kept));
      kept[nkept++] = t;
    }
  }
  for (hmap_iter_t it = hmap_iter(&cw->objects); hmap_next(&it);) {
    cw_object_t *o = it.value;
    o->state = o->state == OBJ_PENDING ? OBJ_ERROR : o->state;
    cw_obj_free(cw, o);
  }
  for (size_t i = 0; i < nkept; i++)
    cw_task_free(cw, kept[i]);
  free(kept);
}

/* ---- public API ---- */

static id_object_t cw_put_id(cw_t *cw)
{
  return id_object_for_task(cw->current_task, ID_PUT_INDEX_FLAG | ++cw->put_index);
}

int rayc_put(const void *data, size_t len, rayc_ref *out)
{
  return rayc_put_with_refs(data, len, NULL, 0, out);
}

int rayc_put_with_refs(const void *data, size_t len, const rayc_ref *refs, size_t nrefs, rayc_ref *out)
{
  if (!data && len)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_put: data, refs and out must not be NULL");
  rayc_part part = {.offset = 0, .data = data, .len = len};
  return rayc_put_parts(len, &part, 1, refs, nrefs, out);
}

int cw_parts_check(const char *what, size_t len, const rayc_part *parts, size_t nparts)
{
  size_t at = 0;
  if (nparts && !parts)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "%s: parts must not be NULL", what);
  for (size_t i = 0; i < nparts; i++) {
    if (parts[i].offset < at || parts[i].len > len || parts[i].offset > len - parts[i].len ||
        (parts[i].len && !parts[i].data))
      return cw_set_error(RAYC_EINVALID_ARGUMENT,
                          "%s: part %zu (offset %zu, %zu bytes) is out of order or outside the object's %zu bytes",
                          what, i, parts[i].offset, parts[i].len, len);
    at = parts[i].offset + parts[i].len;
  }
  return 0;
}

/* A store object of len bytes written from parts (one copy, straight into shared memory). */
static int cw_put_store(cw_t *cw, const id_object_t *id, size_t len, const rayc_part *parts, size_t nparts)
{
  Rayc__Address owner = RAYC__ADDRESS__INIT;
  cw_fill_address(cw, &owner);
  uint8_t meta[256], *dst = NULL;
  size_t olen = rayc__address__pack(&owner, meta);
  int rc = store_client_create(cw->store, id->b, len, 0, meta, olen, cw->put_timeout_ms, &dst);
  if (rc == 0) {
    cw_copy_parts(cw->copy, dst, len, parts, nparts);
    rc = store_client_seal_release(cw->store, id->b);
    if (rc != 0)
      (void)store_client_abort(cw->store, id->b);
  }
  return rc;
}

int rayc_put_parts(size_t len, const rayc_part *parts, size_t nparts, const rayc_ref *refs, size_t nrefs, rayc_ref *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!out || (!parts && nparts) || (!refs && nrefs))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_put: data, refs and out must not be NULL");
  if (cw_parts_check("rayc_put_parts", len, parts, nparts) != 0)
    return RAYC_EINVALID_ARGUMENT;
  cw_nested_t *nested = NULL;
  pthread_mutex_lock(&cw->mu);
  int rc = cw_nested_from_refs(cw, refs, nrefs, CW_HOLD_CONTAINED, &nested, "rayc_put_with_refs");
  id_object_t id = cw_put_id(cw);
  pthread_mutex_unlock(&cw->mu);
  if (rc != 0)
    return rc;
  uint8_t *flat = NULL;
  if (len > CW_INLINE_MAX) {
    rc = cw_put_store(cw, &id, len, parts, nparts);
    if (rc != 0) {
      pthread_mutex_lock(&cw->mu);
      cw_nested_drop(cw, nested, nrefs, CW_HOLD_CONTAINED);
      pthread_mutex_unlock(&cw->mu);
      const char *why = store_client_last_error();
      return cw_set_error(rc,
                          "rayc_put of %zu bytes into the object store failed: %s (%s; a put waits up to %d ms "
                          "for room: object_store_put_timeout_ms)",
                          len, rayc_strerror(rc), why && *why ? why : "no detail", cw->put_timeout_ms);
    }
  }
  pthread_mutex_lock(&cw->mu);
  cw_object_t *o = cw_obj_new(cw, &id);
  o->local_refs = 1;
  if (nrefs) {
    cw_obj_x(o)->nested = nested;
    o->x->nnested = nrefs;
  }
  if (len > CW_INLINE_MAX) {
    cw_obj_set_store(cw, o, &cw->node_id, len, cw->store_address);
  } else if (nparts == 1 && parts[0].offset == 0 && parts[0].len == len) {
    cw_obj_set_inline(cw, o, parts[0].data, len);
  } else {
    flat = xmalloc(len ? len : 1);
    cw_copy_parts(NULL, flat, len, parts, nparts); /* inline: small */
    cw_obj_set_inline(cw, o, flat, len);
  }
  pthread_mutex_unlock(&cw->mu);
  free(flat);
  memcpy(out->id, id.b, ID_OBJECT_SIZE);
  return 0;
}

/* Waits (cw->mu held) until every object is ready; 0, RAYC_ETIMEOUT or RAYC_ENOT_FOUND. A worker
 * whose task would block tells its raylet, which lends the task's CPUs out meanwhile. */
static int cw_wait_all_inner(cw_t *cw, const rayc_ref *refs, size_t n, int64_t timeout_ms, int *blocked);

static int cw_wait_all(cw_t *cw, const rayc_ref *refs, size_t n, int64_t timeout_ms)
{
  int blocked = 0;
  int rc = cw_wait_all_inner(cw, refs, n, timeout_ms, &blocked);
  if (blocked)
    cw_notify_blocked(cw, 0);
  return rc;
}

static int cw_wait_all_inner(cw_t *cw, const rayc_ref *refs, size_t n, int64_t timeout_ms, int *blocked)
{
  struct timespec dl = realtime_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
  int flushed = 0;
  for (size_t i = 0; i < n; i++) {
    for (;;) {
      cw_object_t *o = cw_obj_get(cw, (const id_object_t *)refs[i].id);
      if (!o) {
        char hex[57];
        return cw_set_error(RAYC_ENOT_FOUND, "object %s is not known to this process (released, or owned elsewhere)",
                            rayc_ref_hex(&refs[i], hex));
      }
      if (o->state != OBJ_PENDING)
        break;
      if (!*blocked && cw->is_worker && timeout_ms != 0)
        *blocked = 1, cw_notify_blocked(cw, 1);
      if (!flushed && timeout_ms != 0)
        flushed = 1, cw_actors_flush(cw, refs + i, n - i); /* what was held for a batch goes before we wait */
      if (cw_get_block(cw, timeout_ms < 0 ? NULL : &dl) == ETIMEDOUT) /* cw_get_poll.c */
        return cw_set_error(RAYC_ETIMEOUT, "rayc_get timed out after %lld ms", (long long)timeout_ms);
    }
  }
  return 0;
}

/* Takes what each ready owned object holds (borrowed ones are left to cw_borrow_get); IN_STORE
 * objects are marked for a store read. The refs an object contains go into its buffer. */
static int cw_collect(cw_t *cw, const rayc_ref *refs, size_t n, rayc_buf *out, int *in_store, char **locations)
{
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = cw_obj_get(cw, (const id_object_t *)refs[i].id);
    in_store[i] = 0;
    if (o->owner)
      continue;
    if (o->x)
      cw_buf_set_refs(cw, &out[i], o->x->nested, o->x->nnested);
    if (o->state == OBJ_ERROR) {
      cw_set_error(o->err, "%s", o->err_msg);
      return o->err;
    }
    if (o->state == OBJ_IN_STORE) {
      /* 1: in this node's store; 2: on another node, pulled here first */
      in_store[i] = memcmp(o->node.b, cw->node_id.b, ID_NODE_SIZE) == 0 ? 1 : 2;
      if (in_store[i] == 2)
        locations[i] = o->location ? xstrdup(o->location) : NULL;
      continue;
    }
    cw_buf_priv_t *p = out[i].priv ? out[i].priv : xcalloc(1, sizeof(*p));
    p->blob = o->blob;
    cw_blob_ref(o->blob);
    out[i].data = o->blob->data;
    out[i].len = o->blob->len;
    out[i].priv = p;
  }
  return 0;
}

/* Registers this process with the owners of the borrowed refs the buffers contain (those it is
 * not registered for yet), while the buffers still hold them. */
static void cw_register_bufs(cw_t *cw, rayc_buf *out, size_t n)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += out[i].priv ? ((cw_buf_priv_t *)out[i].priv)->nrefs : 0;
  if (total == 0)
    return;
  cw_object_t **objs = xmalloc(total * sizeof(*objs));
  size_t k = 0;
  pthread_mutex_lock(&cw->mu);
  for (size_t i = 0; i < n; i++) {
    cw_buf_priv_t *p = out[i].priv;
    for (size_t j = 0; p && j < p->nrefs; j++)
      if (p->objs[j] && p->objs[j]->owner && !p->objs[j]->registered)
        objs[k++] = p->objs[j];
  }
  if (k)
    cw_borrow_register(cw, objs, k, NULL);
  pthread_mutex_unlock(&cw->mu);
  free(objs);
}

/* One pass of rayc_get: wait, collect, ask the owners of borrowed refs, then read store objects
 * (pulling remote ones), and register with the owners of the refs the objects contain. Sets *lost
 * to the index of an owned object whose copies are gone, if that was the failure. */
static int cw_get_once(cw_t *cw, const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_buf *out, size_t *lost,
                       int register_nested)
{
  enum { SMALL = 8 }; /* the common case of a few refs allocates nothing */
  int in_store_s[SMALL] = {0};
  char *locations_s[SMALL] = {0};
  cw_object_t *borrowed_s[SMALL] = {0};
  int *in_store = n <= SMALL ? in_store_s : xcalloc(n, sizeof(int));
  char **locations = n <= SMALL ? locations_s : xcalloc(n, sizeof(char *));
  cw_object_t **borrowed = n <= SMALL ? borrowed_s : xcalloc(n, sizeof(*borrowed));
  int64_t start = 0;
  int nborrowed = 0, rc = 0;
  pthread_mutex_lock(&cw->mu);
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = cw_obj_get(cw, (const id_object_t *)refs[i].id);
    if (o && o->owner) {
      borrowed[i] = o;
      o->local_refs++; /* kept while the lock is released */
      nborrowed++;
    }
  }
  if (nborrowed && timeout_ms >= 0)
    start = now_ms();
  rc = cw_wait_all(cw, refs, n, timeout_ms);
  if (rc == 0)
    rc = cw_collect(cw, refs, n, out, in_store, locations);
  pthread_mutex_unlock(&cw->mu);
  if (rc == 0 && nborrowed)
    rc = cw_borrow_get(cw, borrowed, n, timeout_ms < 0 ? -1 : start + timeout_ms, out);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (in_store[i])
      rc = cw_buf_from_store(cw, refs[i].id, in_store[i] == 2, locations[i], 2000, &out[i]);
    if (rc == RAYC_EOBJECT_LOST || rc == RAYC_ENOT_FOUND || (rc == RAYC_EUNAVAILABLE && in_store[i] == 2))
      *lost = i;
  }
  if (rc == 0 && register_nested)
    cw_register_bufs(cw, out, n);
  if (nborrowed) {
    pthread_mutex_lock(&cw->mu);
    for (size_t i = 0; i < n; i++)
      if (borrowed[i])
        cw_obj_unref(cw, borrowed[i]);
    pthread_mutex_unlock(&cw->mu);
  }
  for (size_t i = 0; i < n; i++)
    free(locations[i]);
  if (n > SMALL) {
    free(locations);
    free(in_store);
    free(borrowed);
  }
  if (rc != 0)
    rayc_buf_release(out, n);
  return rc;
}

int cw_get(cw_t *cw, const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_buf *out, int register_nested)
{
  memset(out, 0, n * sizeof(*out));
  for (int round = 0;; round++) {
    size_t lost = n;
    int rc = cw_get_once(cw, refs, n, timeout_ms, out, &lost, register_nested);
    if (rc == 0 || lost == n || round >= 3)
      return rc;
    pthread_mutex_lock(&cw->mu); /* every copy is gone: rebuild it from its lineage, then wait again */
    cw_object_t *o = cw_obj_get(cw, (const id_object_t *)refs[lost].id);
    int rr = o && !o->owner && o->state == OBJ_IN_STORE ? cw_reconstruct(cw, o) : rc;
    pthread_mutex_unlock(&cw->mu);
    if (rr != 0)
      return rr;
  }
}

int rayc_get(const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_buf *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if ((!refs || !out) && n)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_get: refs and out must not be NULL");
  return cw_get(cw, refs, n, timeout_ms, out, 1);
}

void rayc_buf_release(rayc_buf *bufs, size_t n)
{
  cw_t *cw = cw_proc.cw; /* no error to report: a no-op before rayc_init */
  int any_refs = 0;
  for (size_t i = 0; bufs && i < n; i++) {
    cw_buf_priv_t *p = bufs[i].priv;
    if (!p)
      continue;
    if (p->blob)
      cw_blob_unref(p->blob);
    if (p->in_store && cw && cw->store)
      store_client_release(cw->store, p->store_id.b);
    any_refs |= p->nrefs > 0;
  }
  if (any_refs && cw) {
    pthread_mutex_lock(&cw->mu);
    for (size_t i = 0; i < n; i++) {
      cw_buf_priv_t *p = bufs[i].priv;
      for (size_t k = 0; p && k < p->nrefs; k++)
        if (p->objs[k])
          cw_obj_unref(cw, p->objs[k]);
    }
    pthread_mutex_unlock(&cw->mu);
  }
  for (size_t i = 0; bufs && i < n; i++) {
    cw_buf_priv_t *p = bufs[i].priv;
    if (p) {
      free(p->refs);
      free(p->objs);
      free(p);
    }
    bufs[i] = (rayc_buf){0};
  }
}

void rayc_ref_release(const rayc_ref *ref)
{
  cw_t *cw = cw_proc.cw; /* no error to report: a no-op before rayc_init */
  if (!cw || !ref)
    return;
  pthread_mutex_lock(&cw->mu);
  cw_object_t *o = cw_obj_get(cw, (const id_object_t *)ref->id);
  if (o)
    cw_obj_unref(cw, o);
  pthread_mutex_unlock(&cw->mu);
}

void rayc_ref_retain(const rayc_ref *ref)
{
  cw_t *cw = cw_proc.cw; /* no error to report: a no-op before rayc_init */
  if (!cw || !ref)
    return;
  pthread_mutex_lock(&cw->mu);
  cw_object_t *o = cw_obj_get(cw, (const id_object_t *)ref->id);
  if (o)
    o->local_refs++;
  pthread_mutex_unlock(&cw->mu);
}

char *rayc_ref_hex(const rayc_ref *ref, char *out)
{
  return id_hex(ref->id, RAYC_OBJECT_ID_SIZE, out);
}

int rayc_buf_dup(const rayc_buf *in, rayc_buf *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!in || !out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_buf_dup: in and out must not be NULL");
  const cw_buf_priv_t *p = in->priv;
  *out = (rayc_buf){0};
  if (p && p->in_store) /* the store holds it for this buffer too: the same shared bytes */
    return cw_buf_from_store(cw, p->store_id.b, 0, NULL, 1000, out);
  cw_buf_priv_t *q = xcalloc(1, sizeof(*q));
  if (p && p->blob) {
    cw_blob_ref(p->blob);
    q->blob = p->blob;
    out->data = in->data;
  } else { /* a value argument's bytes live only during the call: copied */
    q->blob = cw_blob_new(in->data, in->len);
    out->data = q->blob->data;
  }
  out->len = in->len;
  out->priv = q;
  return 0;
}
