/*
 * Borrowing: refs held by processes that do not own them (Ray's ownership protocol, NSDI 2021;
 * docs/ARCHITECTURE.md "Borrowing").
 *
 * Every process keeps one table of the refs it knows (cw->objects): the objects it owns, and
 * borrowed entries (o->owner, a peer) for refs it holds but another process owns. Refs travel
 * inside objects, by-value task arguments and task results as NestedRefs (owner address + ids).
 *
 *   - Containment. An object that contains refs holds each of them (`contained`) until it is
 *     freed: in its owner's table, whether the inner refs are owned there or borrowed.
 *   - Registration. A process that keeps a ref it borrows past the life of the container it came
 *     in registers with the ref's owner (AddBorrower, one call per owner carrying every id) before
 *     the container can go away: in rayc_get before returning (the getter still holds the outer
 *     ref), and in a worker before it replies to PushTask (the submitter holds the arguments until
 *     the reply) for argument refs the task kept. For refs in a task's results, the worker
 *     registers the caller (who will own the result) with their owners before replying; the
 *     caller counts those registrations as its own when it applies the reply (for refs the caller
 *     owns itself, the worker's AddBorrower marks them `transit` until then).
 *   - Removal. When nothing in a borrower holds a ref any more, the entry waits CW_BORROW_IDLE_MS
 *     (a ref got again soon needs no new registration) and the background thread sends the owner
 *     one RemoveBorrower per owner with the counts to drop.
 *   - Liveness. An owner holds a WaitOwnerExit call on each process borrowing from it (as the GCS
 *     does on actor owners): answered when the borrower exits in order, failing when it dies;
 *     either way its registrations are dropped. A borrower's GetObjectStatus (its rayc_get) that
 *     cannot reach the owner, or reaches another process on its port, fails with OWNER_DIED.
 *
 * Everything runs under cw->mu, except the synchronous calls, which release it.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"
#include "worker/cw_borrow_int.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cw_addr_is_self(const cw_t *cw, const Rayc__Address *a)
{
  return a && a->worker_id.len == ID_WORKER_SIZE && memcmp(a->worker_id.data, cw->worker_id.b, ID_WORKER_SIZE) == 0;
}

int cw_addr_ok(const Rayc__Address *a)
{
  return a && a->worker_id.len == ID_WORKER_SIZE && a->ip && *a->ip && strlen(a->ip) < 64 && a->port > 0 &&
         a->port < 65536;
}

static int64_t obj_holds(const cw_object_t *o)
{
  return (int64_t)o->local_refs + o->submitted_refs + o->contained;
}

/* ---- peers ---- */

cw_peer_t *cw_peer_get(cw_t *cw, const Rayc__Address *a)
{
  if (!cw_addr_ok(a) || cw_addr_is_self(cw, a))
    return NULL;
  cw_peer_t *p = hmap_get(&cw->peers, a->worker_id.data, ID_WORKER_SIZE);
  if (p)
    return p;
  p = xcalloc(1, sizeof(*p));
  p->cw = cw;
  memcpy(p->id.b, a->worker_id.data, ID_WORKER_SIZE);
  if (a->node_id.len == ID_NODE_SIZE)
    memcpy(p->node.b, a->node_id.data, ID_NODE_SIZE);
  snprintf(p->ip, sizeof(p->ip), "%s", a->ip);
  p->port = a->port;
  int v6 = strchr(a->ip, ':') != NULL;
  snprintf(p->target, sizeof(p->target), "%s%s%s:%d", v6 ? "[" : "", a->ip, v6 ? "]" : "", a->port);
  hmap_put(&cw->peers, p->id.b, ID_WORKER_SIZE, p);
  return p;
}

void cw_peer_address(cw_peer_t *p, Rayc__Address *a)
{
  rayc__address__init(a);
  a->node_id = pb_bytes(p->node.b, ID_NODE_SIZE);
  a->ip = p->ip;
  a->port = p->port;
  a->worker_id = pb_bytes(p->id.b, ID_WORKER_SIZE);
}

rpc_channel_t *cw_peer_ch(cw_t *cw, cw_peer_t *p)
{
  if (!p->ch)
    p->ch = rpc_channel_get(cw->client, p->target);
  return p->ch;
}

char *cw_peer_name(const cw_peer_t *p, char *buf, size_t len)
{
  char hex[9];
  snprintf(buf, len, "worker %s at %s", id_short(p->id.b, ID_WORKER_SIZE, hex), p->target);
  return buf;
}

/* ---- entries and nested refs ---- */

cw_object_t *cw_ref_entry(cw_t *cw, const id_object_t *id, cw_peer_t *owner)
{
  cw_object_t *o = cw_obj_get(cw, id);
  if (o || !owner)
    return o;
  o = xcalloc(1, sizeof(*o));
  o->id = *id;
  o->state = OBJ_BORROWED;
  o->owner = owner;
  hmap_put(&cw->objects, id->b, ID_OBJECT_SIZE, o);
  return o;
}

/* The count a hold of kind is taken on; NULL for CW_HOLD_NONE. */
static int *hold_count(cw_object_t *o, cw_hold_t kind)
{
  switch (kind) {
    case CW_HOLD_LOCAL:
      return &o->local_refs;
    case CW_HOLD_SUBMITTED:
      return &o->submitted_refs;
    case CW_HOLD_CONTAINED:
      return &o->contained;
    case CW_HOLD_NONE:
      break;
  }
  return NULL;
}

static void hold(cw_object_t *o, cw_hold_t kind)
{
  int *c = hold_count(o, kind);
  if (c)
    (*c)++;
}

static void unhold(cw_t *cw, cw_object_t *o, cw_hold_t kind)
{
  int *c = hold_count(o, kind);
  if (c)
    (*c)--;
  cw_obj_maybe_free(cw, o);
}

int cw_nested_parse(cw_t *cw, Rayc__NestedRefs *const *groups, size_t ngroups, cw_hold_t kind, cw_nested_t **out,
                    size_t *n)
{
  size_t total = 0;
  *out = NULL;
  *n = 0;
  for (size_t g = 0; g < ngroups; g++) {
    const Rayc__NestedRefs *r = groups[g];
    if (!r || r->object_ids.len % ID_OBJECT_SIZE != 0 || (!cw_addr_is_self(cw, r->owner) && !cw_addr_ok(r->owner)))
      return RAYC_EINVALID_ARGUMENT;
    total += r->object_ids.len / ID_OBJECT_SIZE;
  }
  if (total == 0)
    return 0;
  cw_nested_t *v = xmalloc(total * sizeof(*v));
  size_t k = 0;
  for (size_t g = 0; g < ngroups; g++) {
    const Rayc__NestedRefs *r = groups[g];
    cw_peer_t *owner = cw_peer_get(cw, r->owner); /* NULL: this process */
    for (size_t off = 0; off < r->object_ids.len; off += ID_OBJECT_SIZE, k++) {
      memcpy(v[k].id.b, r->object_ids.data + off, ID_OBJECT_SIZE);
      v[k].obj = cw_ref_entry(cw, &v[k].id, owner);
      if (v[k].obj)
        hold(v[k].obj, kind);
    }
  }
  *out = v;
  *n = total;
  return 0;
}

int cw_nested_from_refs(cw_t *cw, const rayc_ref *refs, size_t n, cw_hold_t kind, cw_nested_t **out, const char *what)
{
  *out = NULL;
  if (n == 0)
    return 0;
  if (!refs)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "%s: refs must not be NULL", what);
  for (size_t i = 0; i < n; i++)
    if (!cw_obj_get(cw, (const id_object_t *)refs[i].id)) {
      char hex[57];
      return cw_set_error(RAYC_ENOT_FOUND,
                          "%s: ref %zu (%s) is not held by this process (released, or never "
                          "received)",
                          what, i, rayc_ref_hex(&refs[i], hex));
    }
  cw_nested_t *v = xmalloc(n * sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    memcpy(v[i].id.b, refs[i].id, ID_OBJECT_SIZE);
    v[i].obj = cw_obj_get(cw, &v[i].id);
    hold(v[i].obj, kind);
  }
  *out = v;
  return 0;
}

void cw_nested_drop(cw_t *cw, cw_nested_t *v, size_t n, cw_hold_t kind)
{
  for (size_t i = 0; i < n && !cw->releasing; i++) /* releasing: the entries may be gone already */
    if (v[i].obj)
      unhold(cw, v[i].obj, kind);
  free(v);
}

static cw_peer_t *nested_owner(const cw_nested_t *x)
{
  return x->obj ? x->obj->owner : NULL;
}

void cw_nested_msg_build(cw_t *cw, const cw_nested_t *v, size_t n, cw_nested_msg_t *m)
{
  memset(m, 0, sizeof(*m));
  if (n == 0)
    return;
  size_t runs = 1;
  for (size_t i = 1; i < n; i++)
    runs += nested_owner(&v[i]) != nested_owner(&v[i - 1]);
  m->g = xcalloc(runs, sizeof(*m->g));
  m->groups = xcalloc(runs, sizeof(*m->groups));
  m->addr = xcalloc(runs, sizeof(*m->addr));
  m->ids = xmalloc(n * ID_OBJECT_SIZE);
  for (size_t i = 0; i < n; i++)
    memcpy(m->ids + i * ID_OBJECT_SIZE, v[i].id.b, ID_OBJECT_SIZE);
  size_t start = 0;
  for (size_t r = 0; r < runs; r++) {
    size_t end = start + 1;
    while (end < n && nested_owner(&v[end]) == nested_owner(&v[start]))
      end++;
    cw_peer_t *p = nested_owner(&v[start]);
    if (p) {
      cw_peer_address(p, &m->addr[r]);
    } else {
      rayc__address__init(&m->addr[r]);
      cw_fill_address(cw, &m->addr[r]);
    }
    rayc__nested_refs__init(&m->g[r]);
    m->g[r].owner = &m->addr[r];
    m->g[r].object_ids = pb_bytes(m->ids + start * ID_OBJECT_SIZE, (end - start) * ID_OBJECT_SIZE);
    m->groups[r] = &m->g[r];
    start = end;
  }
  m->n = runs;
}

void cw_nested_msg_free(cw_nested_msg_t *m)
{
  free(m->g);
  free(m->groups);
  free(m->addr);
  free(m->ids);
  memset(m, 0, sizeof(*m));
}

/* ---- registering ---- */

/* A synchronous call to another process (cw->mu not held). UNAVAILABLE is tried once more after
 * CW_BORROW_POLL_RETRY_MS (a channel that lost its connection fails at once until it reconnects):
 * only a second failure means the process is gone. */
static int call_peer(rpc_channel_t *ch, const char *method, const ProtobufCMessage *req, int timeout_ms,
                     ProtobufCMessage **resp, char **detail)
{
  int rc = rpc_call_sync(ch, &rayc__core_worker_service__descriptor, method, req, timeout_ms, resp, detail);
  if (rc == RAYC_EUNAVAILABLE) {
    free(*detail);
    *detail = NULL;
    usleep(CW_BORROW_POLL_RETRY_MS * 1000);
    rc = rpc_call_sync(ch, &rayc__core_worker_service__descriptor, method, req, timeout_ms, resp, detail);
  }
  return rc;
}

typedef struct reg_group {
  cw_peer_t *owner;
  uint8_t *ids;
  size_t n, cap;
  int rc;
  char *detail;
  Rayc__AddBorrowerReply *rep;
} reg_group_t;

static reg_group_t *group_for(reg_group_t **gs, size_t *ng, cw_peer_t *owner)
{
  for (size_t i = *ng; i-- > 0;)
    if ((*gs)[i].owner == owner)
      return &(*gs)[i];
  *gs = xrealloc(*gs, (*ng + 1) * sizeof(**gs));
  reg_group_t *g = &(*gs)[(*ng)++];
  memset(g, 0, sizeof(*g));
  g->owner = owner;
  return g;
}

static void group_add(reg_group_t *g, const id_object_t *id)
{
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->ids = xrealloc(g->ids, g->cap * ID_OBJECT_SIZE);
  }
  memcpy(g->ids + g->n++ * ID_OBJECT_SIZE, id->b, ID_OBJECT_SIZE);
}

static void mark_lost(cw_object_t *o, const cw_peer_t *owner)
{
  char hex[9], name[160];
  o->state = OBJ_ERROR;
  o->err = RAYC_EOBJECT_LOST;
  free(o->err_msg);
  o->err_msg = xasprintf("object %s was already freed by its owner (%s) when this process borrowed it",
                         id_short(o->id.b, ID_OBJECT_SIZE, hex), cw_peer_name(owner, name, sizeof(name)));
}

void cw_borrow_register(cw_t *cw, cw_object_t **objs, size_t n, const Rayc__Address *borrower)
{
  int for_self = borrower == NULL;
  cw_peer_t *bpeer = NULL;
  if (!for_self) {
    if (cw_addr_is_self(cw, borrower) || !(bpeer = cw_peer_get(cw, borrower)) || bpeer->dead)
      return; /* a result for ourselves (never happens), a malformed caller, or one that is gone */
  }
  reg_group_t *gs = NULL;
  size_t ng = 0;
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = objs[i];
    if (!o)
      continue;
    if (!o->owner) {
      if (!for_self)
        cw_borrower_add(cw, o, bpeer);
      continue;
    }
    if (o->owner->dead || (for_self && (o->registered > 0 || o->state == OBJ_ERROR || o->scratch)))
      continue;
    if (for_self)
      o->scratch = 1; /* once per entry */
    group_add(group_for(&gs, &ng, o->owner), &o->id);
  }
  if (ng == 0) {
    free(gs);
    return;
  }
  Rayc__Address self = RAYC__ADDRESS__INIT;
  cw_fill_address(cw, &self);
  rpc_channel_t **chs = xcalloc(ng, sizeof(*chs));
  for (size_t g = 0; g < ng; g++)
    chs[g] = cw_peer_ch(cw, gs[g].owner);
  pthread_mutex_unlock(&cw->mu);
  for (size_t g = 0; g < ng; g++) {
    Rayc__AddBorrowerRequest req = RAYC__ADD_BORROWER_REQUEST__INIT;
    req.owner_worker_id = pb_bytes(gs[g].owner->id.b, ID_WORKER_SIZE);
    req.borrower = for_self ? &self : (Rayc__Address *)borrower;
    req.object_ids = pb_bytes(gs[g].ids, gs[g].n * ID_OBJECT_SIZE);
    ProtobufCMessage *resp = NULL;
    gs[g].rc = call_peer(chs[g], "AddBorrower", &req.base, CW_BORROW_RPC_MS, &resp, &gs[g].detail);
    gs[g].rep = (Rayc__AddBorrowerReply *)resp;
  }
  pthread_mutex_lock(&cw->mu);
  for (size_t g = 0; g < ng; g++) {
    reg_group_t *x = &gs[g];
    char name[160];
    if (x->rc == 0 && x->rep->missing_ids.len % ID_OBJECT_SIZE == 0) {
      for (size_t off = 0; off < x->rep->missing_ids.len; off += ID_OBJECT_SIZE) {
        cw_object_t *o = cw_obj_get(cw, (const id_object_t *)(x->rep->missing_ids.data + off));
        if (o && o->owner == x->owner)
          o->scratch = 2;
      }
      if (x->rep->missing_ids.len)
        log_warn("borrowing: %s no longer has %zu of the objects registered with it",
                 cw_peer_name(x->owner, name, sizeof(name)), x->rep->missing_ids.len / ID_OBJECT_SIZE);
    } else if (x->rc == RAYC_EUNAVAILABLE || x->rc == RAYC_ENOT_FOUND ||
               (x->rc == RAYC_ECANCELLED && !cw->client_closing)) {
      cw_peer_set_dead(cw, x->owner, x->detail);
    } else {
      log_warn("borrowing: AddBorrower at %s failed: %s (%s)", cw_peer_name(x->owner, name, sizeof(name)),
               rayc_strerror(x->rc), x->detail ? x->detail : "");
    }
    for (size_t k = 0; k < x->n; k++) {
      cw_object_t *o = cw_obj_get(cw, (const id_object_t *)(x->ids + k * ID_OBJECT_SIZE));
      if (!o || o->owner != x->owner)
        continue;
      if (for_self && x->rc == 0 && o->scratch == 2)
        mark_lost(o, x->owner);
      else if (for_self && x->rc == 0)
        o->registered++;
      o->scratch = 0;
    }
    pb_free(x->rep);
    free(x->detail);
    free(x->ids);
  }
  free(chs);
  free(gs);
}

/* ---- removing ---- */

static void rm_add(cw_t *cw, cw_peer_t *p, const id_object_t *id, int count)
{
  if (p->dead || count <= 0)
    return;
  if (p->nrm == p->caprm) {
    p->caprm = p->caprm ? 2 * p->caprm : 64;
    p->rm_ids = xrealloc(p->rm_ids, p->caprm * ID_OBJECT_SIZE);
    p->rm_counts = xrealloc(p->rm_counts, p->caprm * sizeof(*p->rm_counts));
  }
  memcpy(p->rm_ids + p->nrm * ID_OBJECT_SIZE, id->b, ID_OBJECT_SIZE);
  p->rm_counts[p->nrm++] = (uint32_t)count;
  if (!p->rm_listed) {
    if (cw->nrm_peers == cw->caprm_peers) {
      cw->caprm_peers = cw->caprm_peers ? 2 * cw->caprm_peers : 8;
      cw->rm_peers = xrealloc(cw->rm_peers, cw->caprm_peers * sizeof(*cw->rm_peers));
    }
    cw->rm_peers[cw->nrm_peers++] = p;
    p->rm_listed = 1;
  }
}

static void rm_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_debug("RemoveBorrower failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

static void rm_send(cw_t *cw, cw_peer_t *p, int sync)
{
  if (p->nrm && !p->dead && cw->client && !cw->client_closing) {
    Rayc__RemoveBorrowerRequest req = RAYC__REMOVE_BORROWER_REQUEST__INIT;
    req.owner_worker_id = pb_bytes(p->id.b, ID_WORKER_SIZE);
    req.borrower_worker_id = pb_bytes(cw->worker_id.b, ID_WORKER_SIZE);
    req.object_ids = pb_bytes(p->rm_ids, p->nrm * ID_OBJECT_SIZE);
    req.counts = p->rm_counts;
    req.n_counts = p->nrm;
    if (sync) {
      ProtobufCMessage *resp = NULL;
      rpc_call_sync(cw_peer_ch(cw, p), &rayc__core_worker_service__descriptor, "RemoveBorrower", &req.base, 1000, &resp,
                    NULL);
      pb_free(resp);
    } else {
      rpc_call(cw_peer_ch(cw, p), &rayc__core_worker_service__descriptor, "RemoveBorrower", &req.base, CW_BORROW_RPC_MS,
               rm_done, NULL);
    }
  }
  p->nrm = 0;
  p->rm_listed = 0;
}

static void borrowed_free(cw_t *cw, cw_object_t *o)
{
  hmap_del(&cw->objects, o->id.b, ID_OBJECT_SIZE);
  free(o->x);
  free(o->err_msg);
  free(o);
}

static void idle_push(cw_t *cw, cw_object_t *o)
{
  if (cw->idle_len == cw->idle_cap) {
    size_t cap = cw->idle_cap ? 2 * cw->idle_cap : 256;
    struct cw_idle *v = xmalloc(cap * sizeof(*v));
    for (size_t i = 0; i < cw->idle_len; i++)
      v[i] = cw->idle[(cw->idle_head + i) % cw->idle_cap];
    free(cw->idle);
    cw->idle = v;
    cw->idle_cap = cap;
    cw->idle_head = 0;
  }
  cw->idle[(cw->idle_head + cw->idle_len++) % cw->idle_cap] = (struct cw_idle){.id = o->id,
                                                                               .since = o->x->idle_since_ms};
}

void cw_borrowed_release(cw_t *cw, cw_object_t *o)
{
  if (obj_holds(o) > 0 || (o->x && o->x->idle_since_ms))
    return;
  if (o->registered > 0 && !o->owner->dead && !cw->releasing) {
    cw_obj_x(o)->idle_since_ms = now_ms();
    idle_push(cw, o);
    return;
  }
  borrowed_free(cw, o);
}

/* ---- task results ---- */

void cw_borrow_apply_result(cw_t *cw, cw_object_t *o, Rayc__NestedRefs *const *groups, size_t ngroups)
{
  cw_nested_t *v = NULL;
  size_t n = 0;
  if (ngroups == 0)
    return;
  if (cw_nested_parse(cw, groups, ngroups, CW_HOLD_CONTAINED, &v, &n) != 0) {
    log_warn("a task result carries malformed refs: ignored");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    cw_object_t *e = v[i].obj;
    if (e && !e->owner && e->x && e->x->transit > 0)
      e->x->transit--; /* the worker's AddBorrower for us, now a containment */
    else if (e && e->owner)
      e->registered++; /* the worker registered us with the owner */
  }
  if (o && !(o->x && o->x->nested)) {
    cw_obj_x(o)->nested = v;
    o->x->nnested = n;
  } else {
    cw_nested_drop(cw, v, n, CW_HOLD_CONTAINED);
  }
}

/* ---- getting borrowed objects ---- */

void cw_buf_set_refs(cw_t *cw, rayc_buf *buf, const cw_nested_t *v, size_t n)
{
  cw_buf_priv_t *p = buf->priv;
  if (n == 0)
    return;
  if (!p)
    buf->priv = p = xcalloc(1, sizeof(*p));
  p->refs = xmalloc(n * sizeof(*p->refs));
  p->objs = xmalloc(n * sizeof(*p->objs));
  p->nrefs = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(p->refs[i].id, v[i].id.b, ID_OBJECT_SIZE);
    p->objs[i] = v[i].obj;
    if (v[i].obj)
      v[i].obj->local_refs++;
  }
  buf->refs = p->refs;
  buf->nrefs = n;
  (void)cw;
}

int cw_buf_from_store(cw_t *cw, const uint8_t *id, int remote, const char *location, int64_t timeout_ms, rayc_buf *buf)
{
  int rc = remote ? cw_fetch_remote(cw, id, location) : 0;
  if (rc != 0)
    return rc;
  store_object_t so;
  rc = store_client_get(cw->store, id, 1, timeout_ms, &so); /* sealed before we heard of it */
  if (rc == 0 && !so.found)
    rc = RAYC_EOBJECT_LOST;
  if (rc != 0) {
    char hex[9];
    return cw_set_error(rc, "object %s could not be read from the object store: %s", id_short(id, ID_OBJECT_SIZE, hex),
                        rayc_strerror(rc));
  }
  cw_buf_priv_t *p = buf->priv;
  if (!p)
    buf->priv = p = xcalloc(1, sizeof(*p));
  memcpy(p->store_id.b, id, ID_OBJECT_SIZE);
  p->in_store = 1;
  buf->data = so.data;
  buf->len = so.data_size;
  return 0;
}

static int owner_died(const cw_peer_t *p, const id_object_t *id)
{
  char hex[9];
  return cw_set_error(RAYC_EOWNER_DIED, "object %s cannot be read: its owner died: %s",
                      id_short(id->b, ID_OBJECT_SIZE, hex), p->dead_msg ? p->dead_msg : "unreachable");
}

/* One GetObjectStatus call for n ids, all owned by p; a failure to reach p is OWNER_DIED. */
static int status_call(cw_t *cw, cw_peer_t *p, rpc_channel_t *ch, const uint8_t *ids, size_t n, int64_t timeout_ms,
                       int state_only, Rayc__GetObjectStatusReply **rep)
{
  Rayc__GetObjectStatusRequest req = RAYC__GET_OBJECT_STATUS_REQUEST__INIT;
  req.state_only = state_only;
  req.owner_worker_id = pb_bytes(p->id.b, ID_WORKER_SIZE);
  req.object_ids = pb_bytes(ids, n * ID_OBJECT_SIZE);
  req.timeout_ms = timeout_ms;
  int64_t rpc_ms = timeout_ms < 0 ? 0 : timeout_ms + STATUS_SLACK_MS;
  if (rpc_ms > INT32_MAX)
    rpc_ms = 0;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = call_peer(ch, "GetObjectStatus", &req.base, (int)rpc_ms, &resp, &detail);
  *rep = (Rayc__GetObjectStatusReply *)resp;
  char name[160];
  if (rc == 0 && (*rep)->n_objects != n) {
    size_t got = (*rep)->n_objects;
    pb_free(resp);
    *rep = NULL;
    free(detail);
    return cw_set_error(RAYC_EPROTOCOL, "the owner (%s) answered about %zu objects, not %zu",
                        cw_peer_name(p, name, sizeof(name)), got, n);
  }
  if (rc == RAYC_ECANCELLED && !cw->client_closing)
    rc = RAYC_EUNAVAILABLE; /* the owner's server is shutting down: it exits */
  if (rc == RAYC_EUNAVAILABLE || rc == RAYC_ENOT_FOUND) {
    pthread_mutex_lock(&cw->mu);
    cw_peer_set_dead(cw, p, detail);
    pthread_mutex_unlock(&cw->mu);
    rc = owner_died(p, (const id_object_t *)ids);
  } else if (rc != 0) {
    cw_set_error(rc, "asking the owner (%s) about an object failed: %s (%s)", cw_peer_name(p, name, sizeof(name)),
                 rayc_strerror(rc), detail ? detail : "");
  }
  free(detail);
  return rc;
}

int cw_borrow_get(cw_t *cw, cw_object_t **objs, size_t n, int64_t deadline_ms, rayc_buf *out)
{
  reg_group_t *gs = NULL;
  size_t ng = 0;
  size_t **idx = NULL;
  int rc = 0;
  pthread_mutex_lock(&cw->mu);
  for (size_t i = 0; i < n && rc == 0; i++) {
    cw_object_t *o = objs[i];
    if (!o)
      continue;
    if (o->owner->dead)
      rc = owner_died(o->owner, &o->id);
    else if (o->state == OBJ_ERROR)
      rc = cw_set_error(o->err, "%s", o->err_msg ? o->err_msg : rayc_strerror(o->err));
    if (rc)
      break;
    reg_group_t *g = group_for(&gs, &ng, o->owner);
    size_t gi = (size_t)(g - gs);
    idx = xrealloc(idx, ng * sizeof(*idx));
    if (g->n == 0)
      idx[gi] = NULL;
    if (g->n == g->cap) /* group_add grows ids; idx grows alongside */
      idx[gi] = xrealloc(idx[gi], (g->cap ? 2 * g->cap : 64) * sizeof(**idx));
    idx[gi][g->n] = i;
    group_add(g, &o->id);
  }
  rpc_channel_t **chs = xcalloc(ng ? ng : 1, sizeof(*chs));
  for (size_t g = 0; g < ng; g++)
    chs[g] = cw_peer_ch(cw, gs[g].owner);
  pthread_mutex_unlock(&cw->mu);
  for (size_t g = 0; g < ng && rc == 0; g++) {
    int64_t timeout = deadline_ms < 0 ? -1 : deadline_ms - now_ms();
    Rayc__GetObjectStatusReply *rep = NULL;
    rc = status_call(cw, gs[g].owner, chs[g], gs[g].ids, gs[g].n, timeout < 0 && deadline_ms >= 0 ? 0 : timeout, 0,
                     &rep);
    for (size_t k = 0; rc == 0 && k < gs[g].n; k++) {
      const Rayc__ReturnObject *r = rep->objects[k];
      size_t i = idx[g][k];
      char hex[9];
      id_short(objs[i]->id.b, ID_OBJECT_SIZE, hex);
      if (r->pending) {
        rc = cw_set_error(RAYC_ETIMEOUT, "rayc_get timed out: object %s is not ready yet at its owner", hex);
      } else if (r->error) {
        rc = cw_set_error(r->error->code ? r->error->code : RAYC_EINTERNAL, "%s",
                          r->error->message && *r->error->message ? r->error->message : rayc_strerror(r->error->code));
      } else if (r->in_store) {
        int remote = r->node_id.len == ID_NODE_SIZE && memcmp(r->node_id.data, cw->node_id.b, ID_NODE_SIZE) != 0;
        rc = cw_buf_from_store(cw, objs[i]->id.b, remote, r->store_address, 2000, &out[i]);
      } else {
        cw_buf_priv_t *p = out[i].priv ? out[i].priv : xcalloc(1, sizeof(*p));
        out[i].priv = p;
        p->blob = cw_blob_new(r->data.data, r->data.len);
        out[i].data = p->blob->data;
        out[i].len = p->blob->len;
      }
      if (rc == 0 && r->n_nested_refs) {
        cw_nested_t *v = NULL;
        size_t nv = 0;
        pthread_mutex_lock(&cw->mu);
        if (cw_nested_parse(cw, r->nested_refs, r->n_nested_refs, CW_HOLD_NONE, &v, &nv) == 0)
          cw_buf_set_refs(cw, &out[i], v, nv);
        else
          rc = cw_set_error(RAYC_EPROTOCOL, "the owner sent malformed refs for object %s", hex);
        pthread_mutex_unlock(&cw->mu);
        free(v);
      }
    }
    pb_free(rep);
  }
  for (size_t g = 0; g < ng; g++) {
    free(gs[g].ids);
    free(idx[g]);
  }
  free(idx);
  free(chs);
  free(gs);
  return rc;
}

void cw_borrow_poll_ready(cw_t *cw, cw_object_t **objs, size_t n, int *ready)
{
  reg_group_t *gs = NULL;
  size_t ng = 0;
  pthread_mutex_lock(&cw->mu);
  for (size_t i = 0; i < n; i++) {
    cw_object_t *o = objs[i];
    if (!o || ready[i])
      continue;
    if (o->owner->dead || o->state == OBJ_ERROR)
      ready[i] = 1;
    else
      group_add(group_for(&gs, &ng, o->owner), &o->id);
  }
  rpc_channel_t **chs = xcalloc(ng ? ng : 1, sizeof(*chs));
  for (size_t g = 0; g < ng; g++)
    chs[g] = cw_peer_ch(cw, gs[g].owner);
  pthread_mutex_unlock(&cw->mu);
  for (size_t g = 0; g < ng; g++) {
    Rayc__GetObjectStatusReply *rep = NULL;
    int rc = status_call(cw, gs[g].owner, chs[g], gs[g].ids, gs[g].n, 0, 1, &rep);
    for (size_t i = 0, k = 0; i < n && k < gs[g].n; i++) {
      if (!objs[i] || ready[i] || memcmp(objs[i]->id.b, gs[g].ids + k * ID_OBJECT_SIZE, ID_OBJECT_SIZE) != 0)
        continue;
      ready[i] = rc == RAYC_EOWNER_DIED || (rc == 0 && !rep->objects[k]->pending);
      k++;
    }
    pb_free(rep);
    free(gs[g].ids);
  }
  free(chs);
  free(gs);
}

/* ---- background, shutdown, stats ---- */

void cw_borrow_tick(cw_t *cw)
{
  int64_t now = now_ms();
  while (cw->idle_len) {
    struct cw_idle *e = &cw->idle[cw->idle_head];
    if (now - e->since < CW_BORROW_IDLE_MS)
      break;
    cw_object_t *o = cw_obj_get(cw, &e->id);
    cw->idle_head = (cw->idle_head + 1) % cw->idle_cap;
    cw->idle_len--;
    if (!o || !o->owner || !o->x || o->x->idle_since_ms != e->since)
      continue;
    if (obj_holds(o) > 0) { /* used again meanwhile */
      o->x->idle_since_ms = 0;
      continue;
    }
    rm_add(cw, o->owner, &o->id, o->registered);
    borrowed_free(cw, o);
  }
  for (size_t i = 0; i < cw->nrm_peers; i++)
    rm_send(cw, cw->rm_peers[i], 0);
  cw->nrm_peers = 0;
  if (cw->npoll_retry) {
    cw->npoll_retry = 0;
    for (hmap_iter_t it = hmap_iter(&cw->peers); hmap_next(&it);) {
      cw_peer_t *p = it.value;
      if (!p->retry_at_ms)
        continue;
      if (now < p->retry_at_ms) {
        cw->npoll_retry++;
        continue;
      }
      p->retry_at_ms = 0;
      cw_peer_poll(cw, p);
    }
  }
  for (cw_status_wait_t *sw = cw->swaits, *next; sw; sw = next) {
    next = sw->next;
    if (sw->deadline_ms && now >= sw->deadline_ms)
      cw_swait_expire(cw, sw);
  }
}

void cw_borrow_flush(cw_t *cw)
{
  for (hmap_iter_t it = hmap_iter(&cw->objects); hmap_next(&it);) {
    cw_object_t *o = it.value;
    if (o->owner && o->registered > 0) {
      rm_add(cw, o->owner, &o->id, o->registered);
      o->registered = 0;
    }
  }
  for (size_t i = 0; i < cw->nrm_peers; i++)
    rm_send(cw, cw->rm_peers[i], 1);
  cw->nrm_peers = 0;
  cw->idle_len = 0;
  while (cw->swaits) {
    cw_status_wait_t *sw = cw->swaits;
    cw_swait_unlink(cw, sw);
    rpc_reply_error(sw->call, RAYC_EUNAVAILABLE, "the owner is exiting");
    cw_swait_free(sw);
  }
}

void cw_borrow_release(cw_t *cw)
{
  cw_borrow_flush(cw);
  for (hmap_iter_t it = hmap_iter(&cw->peers); hmap_next(&it);) {
    cw_peer_t *p = it.value;
    free(p->dead_msg);
    free(p->rm_ids);
    free(p->rm_counts);
    free(p);
  }
  hmap_release(&cw->peers);
  free(cw->rm_peers);
  cw->rm_peers = NULL;
  cw->nrm_peers = cw->caprm_peers = 0;
  free(cw->idle);
  cw->idle = NULL;
  cw->idle_head = cw->idle_len = cw->idle_cap = 0;
}

int rayc_ref_counts_get(rayc_ref_counts *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_ref_counts_get: out must not be NULL");
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&cw->mu);
  for (hmap_iter_t it = hmap_iter(&cw->objects); hmap_next(&it);) {
    cw_object_t *o = it.value;
    if (o->owner) {
      out->borrowed++;
    } else {
      out->owned++;
      out->borrowers += o->x ? o->x->nborrowers : 0;
    }
  }
  pthread_mutex_unlock(&cw->mu);
  return 0;
}
