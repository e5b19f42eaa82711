/*
 * Borrowing, the owner's side: the borrowers of the objects this process owns (AddBorrower,
 * RemoveBorrower, the WaitOwnerExit poll that notices a borrower's death) and GetObjectStatus, which
 * borrowers call to get an owned object. cw_borrow.c is the borrower's side and describes the
 * protocol. Everything runs under cw->mu.
 */
#include "worker/cw.h"
#include "worker/cw_borrow_int.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ---- borrowers of owned objects ---- */

void cw_peer_poll(cw_t *cw, cw_peer_t *p);

void cw_borrower_add(cw_t *cw, cw_object_t *o, cw_peer_t *p)
{
  cw_obj_ext_t *x = cw_obj_x(o);
  for (size_t i = 0; i < x->nborrowers; i++)
    if (x->borrowers[i].peer == p) {
      x->borrowers[i].count++;
      return;
    }
  x->borrowers = xrealloc(x->borrowers, (x->nborrowers + 1) * sizeof(*x->borrowers));
  x->borrowers[x->nborrowers++] = (cw_borrower_t){.peer = p, .count = 1};
  p->nborrows++;
  cw_peer_poll(cw, p);
}

/* Drops count registrations of p on o; 1 if o had any. */
static int borrower_remove(cw_object_t *o, cw_peer_t *p, int64_t count)
{
  cw_obj_ext_t *x = o->x;
  for (size_t i = 0; x && i < x->nborrowers; i++) {
    if (x->borrowers[i].peer != p)
      continue;
    if (count < 0 || (x->borrowers[i].count -= (int)(count > INT32_MAX ? INT32_MAX : count)) <= 0) {
      x->borrowers[i] = x->borrowers[--x->nborrowers];
      p->nborrows--;
    }
    return 1;
  }
  return 0;
}

/* Holds each object, then drops the holds: frees what nothing else keeps, without a cascade
 * freeing an object of the list before its turn. */
static void unref_all(cw_t *cw, cw_object_t **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    cw_obj_unref(cw, v[i]);
  free(v);
}

/* p exited or died: every registration it had here goes, and refs it owns fail from now on. */
void cw_peer_set_dead(cw_t *cw, cw_peer_t *p, const char *why)
{
  char name[160];
  if (p->dead)
    return;
  p->dead = 1;
  p->dead_msg = xasprintf("%s is gone (%s)", cw_peer_name(p, name, sizeof(name)), why && *why ? why : "unreachable");
  log_info("borrowing: %s", p->dead_msg);
  p->nrm = 0;
  if (p->nborrows == 0)
    return;
  cw_object_t **v = NULL;
  size_t n = 0;
  for (hmap_iter_t it = hmap_iter(&cw->objects); hmap_next(&it);) {
    cw_object_t *o = it.value;
    if (o->owner || !o->x || !o->x->nborrowers || !borrower_remove(o, p, -1))
      continue;
    v = xrealloc(v, (n + 1) * sizeof(*v));
    v[n++] = o;
    o->local_refs++;
  }
  p->nborrows = 0;
  unref_all(cw, v, n);
}

static void poll_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_peer_t *p = arg;
  cw_t *cw = p->cw;
  pb_free(resp);
  if (!cw)
    return;
  pthread_mutex_lock(&cw->mu);
  p->polling = 0;
  if (cw->client_closing || cw->stopping || status == RAYC_ECANCELLED) {
    /* shutting down */
  } else if (status == 0) {
    cw_peer_set_dead(cw, p, "it exited");
  } else if (status == RAYC_ETIMEOUT) {
    p->failures = 0;
    cw_peer_poll(cw, p);
  } else if (status == RAYC_ENOT_FOUND || ++p->failures >= CW_BORROW_POLL_FAILURES) {
    cw_peer_set_dead(cw, p, detail);
  } else {
    p->retry_at_ms = now_ms() + CW_BORROW_POLL_RETRY_MS;
    cw->npoll_retry++;
  }
  pthread_mutex_unlock(&cw->mu);
}

/* Holds a WaitOwnerExit call on p while it borrows anything from us. */
void cw_peer_poll(cw_t *cw, cw_peer_t *p)
{
  if (p->polling || p->dead || p->nborrows == 0 || p->retry_at_ms || cw->stopping || cw->client_closing || !cw->client)
    return;
  Rayc__WaitOwnerExitRequest req = RAYC__WAIT_OWNER_EXIT_REQUEST__INIT;
  req.owner_worker_id = pb_bytes(p->id.b, ID_WORKER_SIZE);
  if (rpc_call(cw_peer_ch(cw, p), &rayc__actor_worker_service__descriptor, "WaitOwnerExit", &req.base,
               CW_BORROW_POLL_MS, poll_done, p) == 0)
    p->polling = 1;
}

/* ---- GetObjectStatus (owner side) ---- */

static void status_fill(cw_t *cw, const id_object_t *id, int state_only, Rayc__ReturnObject *r, cw_nested_msg_t *nm,
                        Rayc__ErrorInfo *e, char **msg)
{
  cw_object_t *o = cw_obj_get(cw, id);
  rayc__return_object__init(r);
  r->object_id = pb_bytes(id->b, ID_OBJECT_SIZE);
  if (!o || o->owner) {
    char hex[9], me[9];
    rayc__error_info__init(e);
    e->code = RAYC_EOBJECT_LOST;
    *msg = xasprintf("object %s is not owned by worker %s (any more): it was freed",
                     id_short(id->b, ID_OBJECT_SIZE, hex), id_short(cw->worker_id.b, ID_WORKER_SIZE, me));
    e->message = *msg;
    r->error = e;
    return;
  }
  switch (o->state) {
    case OBJ_PENDING:
      r->pending = 1;
      return;
    case OBJ_INLINE:
      if (!state_only)
        r->data = pb_bytes(o->blob->data, o->blob->len);
      break;
    case OBJ_IN_STORE:
      r->in_store = 1;
      r->node_id = pb_bytes(o->node.b, ID_NODE_SIZE);
      r->store_address = o->location ? o->location : (char *)"";
      r->size = o->size;
      break;
    default:
      rayc__error_info__init(e);
      e->code = o->err ? o->err : RAYC_EINTERNAL;
      e->message = o->err_msg ? o->err_msg : (char *)"";
      r->error = e;
      return;
  }
  if (state_only)
    return;
  if (o->x)
    cw_nested_msg_build(cw, o->x->nested, o->x->nnested, nm);
  r->nested_refs = nm->groups;
  r->n_nested_refs = nm->n;
}

static void status_reply(cw_t *cw, rpc_call_t *call, const id_object_t *ids, size_t n, int state_only)
{
  Rayc__GetObjectStatusReply rep = RAYC__GET_OBJECT_STATUS_REPLY__INIT;
  Rayc__ReturnObject *rs = xcalloc(n, sizeof(*rs)), **ptrs = xcalloc(n, sizeof(*ptrs));
  cw_nested_msg_t *nm = xcalloc(n, sizeof(*nm));
  Rayc__ErrorInfo *es = xcalloc(n, sizeof(*es));
  char **msgs = xcalloc(n, sizeof(*msgs));
  for (size_t i = 0; i < n; i++) {
    status_fill(cw, &ids[i], state_only, &rs[i], &nm[i], &es[i], &msgs[i]);
    ptrs[i] = &rs[i];
  }
  rep.objects = ptrs;
  rep.n_objects = n;
  rpc_reply(call, &rep.base);
  for (size_t i = 0; i < n; i++) {
    cw_nested_msg_free(&nm[i]);
    free(msgs[i]);
  }
  free(msgs);
  free(es);
  free(nm);
  free(ptrs);
  free(rs);
}

void cw_swait_unlink(cw_t *cw, cw_status_wait_t *sw)
{
  if (sw->prev)
    sw->prev->next = sw->next;
  else
    cw->swaits = sw->next;
  if (sw->next)
    sw->next->prev = sw->prev;
}

void cw_swait_free(cw_status_wait_t *sw)
{
  free(sw->ids);
  free(sw);
}

void cw_status_ready(cw_t *cw, cw_object_t *o)
{
  if (!o->x)
    return;
  cw_status_wait_t **v = o->x->swaits;
  size_t n = o->x->nswaits;
  o->x->swaits = NULL;
  o->x->nswaits = 0;
  for (size_t i = 0; i < n; i++) {
    cw_status_wait_t *sw = v[i];
    if (--sw->npending > 0)
      continue;
    cw_swait_unlink(cw, sw);
    status_reply(cw, sw->call, sw->ids, sw->n, sw->state_only);
    cw_swait_free(sw);
  }
  free(v);
}

/* Answers sw as things stand (some objects still pending), taking it off every object. */
void cw_swait_expire(cw_t *cw, cw_status_wait_t *sw)
{
  for (size_t i = 0; i < sw->n; i++) {
    cw_object_t *o = cw_obj_get(cw, &sw->ids[i]);
    for (size_t k = 0; o && o->x && k < o->x->nswaits;)
      if (o->x->swaits[k] == sw)
        o->x->swaits[k] = o->x->swaits[--o->x->nswaits];
      else
        k++;
  }
  cw_swait_unlink(cw, sw);
  status_reply(cw, sw->call, sw->ids, sw->n, sw->state_only);
  cw_swait_free(sw);
}

/* The request names this process? Replies NOT_FOUND and returns 0 if not. */
static int check_owner(cw_t *cw, rpc_call_t *call, const ProtobufCBinaryData *owner)
{
  char me[9], them[9];
  if (owner->len == ID_WORKER_SIZE && memcmp(owner->data, cw->worker_id.b, ID_WORKER_SIZE) == 0)
    return 1;
  rpc_reply_error(call, RAYC_ENOT_FOUND, "this process is worker %s, not worker %s (which is gone)",
                  id_short(cw->worker_id.b, ID_WORKER_SIZE, me),
                  owner->len == ID_WORKER_SIZE ? id_short(owner->data, ID_WORKER_SIZE, them) : "?");
  return 0;
}

static int check_ids(rpc_call_t *call, const ProtobufCBinaryData *ids, int allow_empty)
{
  if (ids->len % ID_OBJECT_SIZE == 0 && (allow_empty || ids->len) && ids->len / ID_OBJECT_SIZE <= STATUS_MAX_IDS)
    return 1;
  rpc_reply_error(call, RAYC_EINVALID_ARGUMENT,
                  "object_ids must be 1 to %d ids of %d bytes, concatenated (got %zu bytes)", STATUS_MAX_IDS,
                  ID_OBJECT_SIZE, ids->len);
  return 0;
}

void cw_on_get_object_status(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__GetObjectStatusRequest *req = (const Rayc__GetObjectStatusRequest *)m;
  if (!check_owner(cw, call, &req->owner_worker_id) || !check_ids(call, &req->object_ids, 0))
    return;
  size_t n = req->object_ids.len / ID_OBJECT_SIZE;
  const id_object_t *ids = (const id_object_t *)req->object_ids.data;
  pthread_mutex_lock(&cw->mu);
  int npending = 0;
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = cw_obj_get(cw, &ids[i]);
    npending += o && !o->owner && o->state == OBJ_PENDING;
  }
  if (npending == 0 || req->timeout_ms == 0 || cw->stopping) {
    status_reply(cw, call, ids, n, req->state_only);
    pthread_mutex_unlock(&cw->mu);
    return;
  }
  cw_status_wait_t *sw = xcalloc(1, sizeof(*sw));
  sw->call = call;
  sw->n = n;
  sw->ids = xmalloc(n * sizeof(*sw->ids));
  memcpy(sw->ids, ids, n * sizeof(*sw->ids));
  sw->npending = npending;
  sw->state_only = req->state_only;
  sw->deadline_ms = req->timeout_ms > 0 ? now_ms() + req->timeout_ms : 0;
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = cw_obj_get(cw, &ids[i]);
    if (!o || o->owner || o->state != OBJ_PENDING)
      continue;
    cw_obj_ext_t *x = cw_obj_x(o);
    x->swaits = xrealloc(x->swaits, (x->nswaits + 1) * sizeof(*x->swaits));
    x->swaits[x->nswaits++] = sw;
  }
  sw->next = cw->swaits;
  if (cw->swaits)
    cw->swaits->prev = sw;
  cw->swaits = sw;
  pthread_mutex_unlock(&cw->mu);
}

/* ---- AddBorrower / RemoveBorrower (owner side) ---- */

void cw_on_add_borrower(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__AddBorrowerRequest *req = (const Rayc__AddBorrowerRequest *)m;
  if (!check_owner(cw, call, &req->owner_worker_id) || !check_ids(call, &req->object_ids, 0))
    return;
  if (!cw_addr_is_self(cw, req->borrower) && !cw_addr_ok(req->borrower)) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "borrower must be an address with a worker id, an ip and a port");
    return;
  }
  size_t n = req->object_ids.len / ID_OBJECT_SIZE, nmissing = 0;
  const id_object_t *ids = (const id_object_t *)req->object_ids.data;
  uint8_t *missing = NULL;
  pthread_mutex_lock(&cw->mu);
  cw_peer_t *p = cw_peer_get(cw, req->borrower); /* NULL: ourselves (a result in transit) */
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = cw_obj_get(cw, &ids[i]);
    if (!o || o->owner || (p && p->dead)) {
      missing = xrealloc(missing, (nmissing + 1) * ID_OBJECT_SIZE);
      memcpy(missing + nmissing++ * ID_OBJECT_SIZE, ids[i].b, ID_OBJECT_SIZE);
    } else if (p) {
      cw_borrower_add(cw, o, p);
    } else {
      cw_obj_x(o)->transit++;
    }
  }
  pthread_mutex_unlock(&cw->mu);
  Rayc__AddBorrowerReply rep = RAYC__ADD_BORROWER_REPLY__INIT;
  rep.missing_ids = pb_bytes(missing, nmissing * ID_OBJECT_SIZE);
  rpc_reply(call, &rep.base);
  free(missing);
}

void cw_on_remove_borrower(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__RemoveBorrowerRequest *req = (const Rayc__RemoveBorrowerRequest *)m;
  if (!check_owner(cw, call, &req->owner_worker_id) || !check_ids(call, &req->object_ids, 1))
    return;
  size_t n = req->object_ids.len / ID_OBJECT_SIZE;
  if (req->borrower_worker_id.len != ID_WORKER_SIZE || (req->n_counts && req->n_counts != n)) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "borrower_worker_id must be %d bytes, and counts empty or one per id",
                    ID_WORKER_SIZE);
    return;
  }
  const id_object_t *ids = (const id_object_t *)req->object_ids.data;
  pthread_mutex_lock(&cw->mu);
  cw_peer_t *p = hmap_get(&cw->peers, req->borrower_worker_id.data, ID_WORKER_SIZE);
  cw_object_t **touched = xcalloc(n ? n : 1, sizeof(*touched));
  size_t nt = 0;
  for (size_t i = 0; p && i < n; i++) {
    cw_object_t *o = cw_obj_get(cw, &ids[i]);
    int64_t count = req->n_counts ? req->counts[i] : 1;
    if (o && !o->owner && count > 0 && borrower_remove(o, p, count)) {
      o->local_refs++;
      touched[nt++] = o;
    }
  }
  unref_all(cw, touched, nt);
  pthread_mutex_unlock(&cw->mu);
  rpc_reply(call, NULL);
}
