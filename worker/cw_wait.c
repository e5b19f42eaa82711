/*
 * rayc_wait: which of n refs are ready, returning once k are (the first k ready in input order
 * marked). A memo of the leading refs last found pending (cw->wait_memo) spares a wait(k=1) loop
 * the lookup of every ref before the first ready one on each call.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"

#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* o is no longer pending: rayc_wait's memo (cw_memo_match) stops before its place, if it held it. */
void cw_memo_cut(cw_t *cw, cw_object_t *o)
{
  if (o->wait_mark - 1 < cw->wait_memo.pend)
    cw->wait_memo.pend = o->wait_mark - 1;
  o->wait_mark = 0;
}

/* One rayc_wait call's state. r[i] marks a ref seen ready (a ref once ready stays counted);
 * borrowed[i] is a borrowed ref's object, held (local_refs) while the call polls its owner, with
 * bready[i] its owner's answer (both NULL until the call meets a borrowed ref); hi is one past the
 * highest index marked. */
typedef struct {
  const rayc_ref *refs;
  size_t n, k, count, from, hi, nborrowed;
  int all; /* k == n */
  int *r, *bready;
  cw_object_t **borrowed;
} cw_wait_t;

/* The borrowed refs' arrays, made when the first one is met: a call over owned refs allocates
 * nothing (wait(k=1) in a loop over 1,000 refs zeroed 12 KB per call). */
static void cw_wait_borrowed_alloc(cw_wait_t *w)
{
  if (w->borrowed)
    return;
  w->borrowed = xcalloc(w->n, sizeof(*w->borrowed));
  w->bready = xcalloc(w->n, sizeof(*w->bready));
}

_Static_assert(sizeof(rayc_ref) == ID_OBJECT_SIZE, "rayc_wait's memo compares arrays of refs as ids");

/* How many leading refs of w are known pending from cw->wait_memo without a lookup: all it holds
 * (up to n) if w's refs begin with its ids, else none (and the memo starts again from this call).
 * One memcmp where a wait(k=1) loop (Ray's `ready, rest = wait(rest)`) would look up every ref
 * before the first ready one on every call: ~250,000 lookups per 1,000 refs. */
static size_t cw_memo_match(cw_t *cw, const cw_wait_t *w)
{
  struct cw_wait_memo *m = &cw->wait_memo;
  size_t p = m->pend < w->n ? m->pend : w->n;
  if (p && memcmp(m->ids, w->refs, p * ID_OBJECT_SIZE) == 0)
    return p;
  m->pend = 0;
  return 0;
}

/* Refs[i] (== pend) is an owned pending object o: the memo grows by it. o keeps the lowest place
 * it holds (a ref listed twice), and an older memo's mark only cuts more than needed. */
static void cw_memo_add(cw_t *cw, const rayc_ref *ref, size_t i, cw_object_t *o)
{
  struct cw_wait_memo *m = &cw->wait_memo;
  if (i >= UINT32_MAX - 1)
    return;
  if (m->pend == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 256;
    m->ids = xrealloc(m->ids, m->cap * ID_OBJECT_SIZE);
  }
  memcpy(m->ids + i * ID_OBJECT_SIZE, ref->id, ID_OBJECT_SIZE);
  m->pend = i + 1;
  if (!o->wait_mark || o->wait_mark > i + 1)
    o->wait_mark = (uint32_t)i + 1;
}

/* Marks the refs that became ready since the last look. It stops once k are marked and every
 * earlier mark lies behind it (so the marks stay the first k ready in input order): wait(k=1) on
 * 1,000 refs looks at refs until it finds one ready, not at all 1,000 per call, and skips the
 * leading refs the memo knows are pending. With all (k == n) it stops at the first ref still
 * pending and starts there next time: waiting for all of n refs costs O(n) lookups over every
 * wake-up together, not a rescan of n under cw->mu per completion (which starved the thread
 * applying the results). The first look (first) also finds and holds the borrowed refs; it goes
 * through all n unless it reaches k. */
static void cw_count_ready(cw_t *cw, cw_wait_t *w, int first)
{
  size_t pending = w->n;
  size_t i = w->all ? w->from : cw_memo_match(cw, w);
  for (; i < w->n; i++) {
    if (w->count >= w->k && i >= w->hi)
      return;
    if (w->r[i])
      continue;
    cw_object_t *b = w->borrowed ? w->borrowed[i] : NULL;
    int ready = b && w->bready[i];
    if (!b) {
      cw_object_t *o = cw_obj_get(cw, (const id_object_t *)w->refs[i].id);
      if (first && o && o->owner) {
        cw_wait_borrowed_alloc(w);
        w->borrowed[i] = o;
        o->local_refs++;
        w->nborrowed++;
      } else {
        ready = !o || o->state != OBJ_PENDING;
        if (!ready && !w->all && i == cw->wait_memo.pend && !o->owner)
          cw_memo_add(cw, &w->refs[i], i, o);
      }
    }
    if (ready) {
      w->r[i] = 1;
      w->count++;
      w->hi = i >= w->hi ? i + 1 : w->hi;
    } else if (w->all && !first) {
      w->from = i;
      return;
    } else if (pending == w->n) {
      pending = i;
    }
  }
  w->from = w->all ? pending : 0;
}

/* Ray's wait returns exactly num_returns ready refs when more are ready: keep the first k marked
 * (in input order) and unmark the rest. Returns how many stay marked. */
static size_t wait_keep_first(int *ready, size_t n, size_t count, size_t k)
{
  if (count <= k)
    return count;
  if (ready) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
      if (ready[i] && kept++ >= k)
        ready[i] = 0;
  }
  return k;
}

/* Waits (cw->mu held) until w has k refs marked or timeout_ms passes; borrowed refs are polled at
 * their owners every 10 ms. */
static void cw_wait_loop(cw_t *cw, cw_wait_t *w, int64_t timeout_ms)
{
  struct timespec dl = realtime_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
  int64_t end = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  for (int first = 1; w->count < w->k; first = 0) {
    if (w->nborrowed) { /* borrowed refs: ask their owners, then look again after a short while */
      pthread_mutex_unlock(&cw->mu);
      cw_borrow_poll_ready(cw, w->borrowed, w->n, w->bready);
      pthread_mutex_lock(&cw->mu);
      cw_count_ready(cw, w, 0);
      if (w->count >= w->k)
        break;
    }
    int64_t left = end < 0 ? 10 : end - now_ms();
    if (!first && end >= 0 && left <= 0)
      break;
    /* cw_get_block (cw_get_poll.c): in a driver the waiter polls the client's queue itself and
     * applies the reply that makes its ref ready, as rayc_get does; else it waits on cw->cv. */
    if (first && timeout_ms != 0)
      cw_actors_flush(cw, w->refs, w->n); /* actor calls held back for a batch go before we wait */
    if (w->nborrowed) {
      struct timespec ts = realtime_deadline_ms(left < 10 ? (left > 0 ? left : 0) : 10);
      cw_get_block(cw, &ts);
    } else if (timeout_ms < 0) {
      cw_get_block(cw, NULL);
    } else if (cw_get_block(cw, &dl) == ETIMEDOUT) {
      w->from = 0; /* the last look counts every ref ready by now */
      w->all = 0;
      cw_count_ready(cw, w, 0);
      break;
    }
    cw_count_ready(cw, w, 0);
  }
}

int rayc_wait(const rayc_ref *refs, size_t n, size_t k, int64_t timeout_ms, int *ready)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (k > n)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_wait: k (%zu) is larger than n (%zu)", k, n);
  if (k == 0 && n > 0)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_wait: k must be at least 1");
  if (n && !refs)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_wait: refs must not be NULL");
  /* The marks go straight into the caller's ready[]: wait(k=1) in a loop over 1,000 refs
   * (single_client_wait_1k_refs) is 1,000 calls per batch. */
  cw_wait_t w = {.refs = refs, .n = n, .k = k, .all = k == n};
  int *own = ready ? NULL : xcalloc(n ? n : 1, sizeof(*own));
  w.r = ready ? ready : own;
  if (ready)
    memset(ready, 0, n * sizeof(*ready));
  pthread_mutex_lock(&cw->mu);
  cw_count_ready(cw, &w, 1);
  cw_wait_loop(cw, &w, timeout_ms);
  for (size_t i = 0; w.nborrowed && i < n; i++)
    if (w.borrowed[i])
      cw_obj_unref(cw, w.borrowed[i]);
  pthread_mutex_unlock(&cw->mu);
  free(w.borrowed);
  free(w.bready);
  free(own);
  return (int)wait_keep_first(ready, n, w.count, k);
}

