/*
 * Eviction lists: which objects the store may drop or spill under memory pressure, in least
 * recently used order.
 *
 * Two intrusive doubly-linked lists on store_core_t, each least recently used at the head:
 *   evictable  sealed, unreferenced objects whose memory can go at no cost: secondary copies
 *              (another node has the object) and primary copies that already have a disk copy;
 *   spillable  sealed, unreferenced primary copies without a disk copy: the spiller's candidates.
 * An object is on at most one list. store_core_classify() puts it where its state, flags and
 * references say; an object that gains a reference leaves its list, and re-enters at the tail when
 * the last reference goes, so the order is the order of last use. Every operation is O(1) except
 * eviction, which is O(evicted objects).
 */
#include "object-store/store_core.h"

static void lru_append(store_lru_t *l, store_obj_t *o)
{
  o->lru_next = NULL;
  o->lru_prev = l->tail;
  if (l->tail)
    l->tail->lru_next = o;
  else
    l->head = o;
  l->tail = o;
  l->count++;
  l->bytes += store_alloc_round(store_obj_size(o));
}

static void lru_remove(store_lru_t *l, store_obj_t *o)
{
  if (o->lru_prev)
    o->lru_prev->lru_next = o->lru_next;
  else
    l->head = o->lru_next;
  if (o->lru_next)
    o->lru_next->lru_prev = o->lru_prev;
  else
    l->tail = o->lru_prev;
  o->lru_prev = o->lru_next = NULL;
  l->count--;
  l->bytes -= store_alloc_round(store_obj_size(o));
}

static store_lru_t *lru_of(store_core_t *c, store_obj_list_t which)
{
  switch (which) {
    case STORE_LIST_EVICTABLE:
      return &c->evictable;
    case STORE_LIST_SPILLABLE:
      return &c->spillable;
    case STORE_LIST_NONE:
      break;
  }
  return NULL;
}

/* The list o belongs on now. */
static store_obj_list_t classify(const store_obj_t *o)
{
  if (o->state != STORE_OBJ_SEALED || o->refs != 0 || o->delete_pending)
    return STORE_LIST_NONE;
  if (o->secondary || o->spill_file)
    return STORE_LIST_EVICTABLE;
  return STORE_LIST_SPILLABLE;
}

void store_core_unlist(store_core_t *c, store_obj_t *o)
{
  store_lru_t *l = lru_of(c, o->list);
  if (l)
    lru_remove(l, o);
  o->list = STORE_LIST_NONE;
}

void store_core_classify(store_core_t *c, store_obj_t *o)
{
  store_obj_list_t want = classify(o);
  if (want == o->list)
    return;
  store_core_unlist(c, o);
  store_lru_t *l = lru_of(c, want);
  if (l)
    lru_append(l, o);
  o->list = want;
}

size_t store_core_evict(store_core_t *c, uint64_t need)
{
  size_t n = 0;
  /* Evicting cannot help when even all of it would not make room. */
  if (store_alloc_capacity(c->alloc) - store_alloc_used(c->alloc) + c->evictable.bytes < need)
    return 0;
  while (store_alloc_largest_free(c->alloc) < need && c->evictable.head) {
    store_obj_t *o = c->evictable.head;
    store_core_unlist(c, o);
    store_core_drop(c, o);
    n++;
  }
  return n;
}
