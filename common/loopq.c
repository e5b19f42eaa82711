/*
 * Hand-off queue into a libuv loop (see loopq.h).
 *
 * Posters append (fn, arg) items to a mutex-protected FIFO and wake the loop with uv_async_send. The
 * async callback takes the whole list under the lock and runs it without the lock, so a function
 * may post again (it runs on the next wake-up) and posters never wait for a running function.
 *
 * Lazy items (loopq_post_lazy) join the same FIFO without a wake-up; `signalled` says whether a
 * wake-up is pending, so a later loopq_post still wakes the loop when only lazy items wait.
 *
 * Items are recycled: the loop keeps the items it ran on a private spare list and gives them back
 * to the shared free list once per wake-up, so a steady stream of posts allocates nothing.
 *
 * loopq_destroy() may be called from inside a function the queue is running (a handler that shuts
 * its daemon down): it runs everything still queued, then marks the queue closed, and the async
 * callback stops as soon as that function returns. The memory lives until the handle's close
 * callback, so the callback may still read the closed flag.
 */
#include "common/loopq.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/util.h"

#define LOOPQ_FREE_MAX 4096 /* items kept for reuse; more are freed */

struct loopq_item {
  struct loopq_item *next;
  loopq_fn fn;
  void *arg;
};

struct loopq {
  uv_async_t async; /* the close callback finds the queue through async.data */
  pthread_mutex_t mu;
  struct loopq_item *head, *tail; /* posted, not yet taken by the loop (mu) */
  struct loopq_item *free;        /* recycled items for posters (mu) */
  size_t nfree;
  int signalled; /* a uv_async_send is pending: its wake-up takes all of head (mu) */
  /* Loop thread only. */
  struct loopq_item *cur;   /* taken by the running callback, not yet run */
  struct loopq_item *spare; /* run items, returned to free at the end of a wake-up */
  size_t nspare;
  int closed;
  int running; /* loopq_run_all is on the stack: a nested loopq_flush leaves the items to it */
};

static void loopq_free_list(struct loopq_item *it)
{
  while (it) {
    struct loopq_item *next = it->next;
    free(it);
    it = next;
  }
}

/* Runs the first item of q->cur and keeps its memory on the spare list. */
static void loopq_run_one(loopq_t *q)
{
  struct loopq_item *it = q->cur;
  q->cur = it->next;
  loopq_fn fn = it->fn;
  void *arg = it->arg;
  it->next = q->spare;
  q->spare = it;
  q->nspare++;
  fn(arg);
}

/* Gives the spare items back to posters, freeing what exceeds LOOPQ_FREE_MAX. */
static void loopq_recycle(loopq_t *q)
{
  struct loopq_item *drop = NULL;
  pthread_mutex_lock(&q->mu);
  while (q->spare) {
    struct loopq_item *it = q->spare;
    q->spare = it->next;
    if (q->nfree < LOOPQ_FREE_MAX) {
      it->next = q->free;
      q->free = it;
      q->nfree++;
    } else {
      it->next = drop;
      drop = it;
    }
  }
  q->nspare = 0;
  pthread_mutex_unlock(&q->mu);
  loopq_free_list(drop);
}

/* Takes everything posted so far; returns 0 when the queue was empty. */
static int loopq_take(loopq_t *q)
{
  pthread_mutex_lock(&q->mu);
  q->cur = q->head;
  q->head = q->tail = NULL;
  q->signalled = 0;
  pthread_mutex_unlock(&q->mu);
  return q->cur != NULL;
}

/* Runs everything posted so far (the async callback, and loopq_flush). */
static void loopq_run_all(loopq_t *q)
{
  if (q->running || !loopq_take(q))
    return;
  q->running = 1;
  while (q->cur) {
    loopq_run_one(q);
    if (q->closed) /* a function destroyed the queue; everything was run and freed */
      return;
  }
  q->running = 0;
  loopq_recycle(q);
}

static void loopq_async_cb(uv_async_t *h)
{
  loopq_run_all(h->data);
}

static void loopq_close_cb(uv_handle_t *h)
{
  loopq_t *q = h->data;
  pthread_mutex_destroy(&q->mu);
  free(q);
}

loopq_t *loopq_create(uv_loop_t *loop)
{
  loopq_t *q = xcalloc(1, sizeof(*q));
  pthread_mutex_init(&q->mu, NULL);
  if (uv_async_init(loop, &q->async, loopq_async_cb) != 0) {
    pthread_mutex_destroy(&q->mu);
    free(q);
    return NULL;
  }
  q->async.data = q;
  return q;
}

/* Appends (fn, arg); wake: send a wake-up unless one is pending already. */
static void loopq_append(loopq_t *q, loopq_fn fn, void *arg, int wake)
{
  pthread_mutex_lock(&q->mu);
  struct loopq_item *it = q->free;
  if (it) {
    q->free = it->next;
    q->nfree--;
  } else {
    it = xmalloc(sizeof(*it));
  }
  it->fn = fn;
  it->arg = arg;
  it->next = NULL;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  /* A pending wake-up takes this item too; lazy items before it do not count as one. */
  wake = wake && !q->signalled;
  if (wake)
    q->signalled = 1;
  pthread_mutex_unlock(&q->mu);
  if (wake)
    uv_async_send(&q->async);
}

void loopq_post(loopq_t *q, loopq_fn fn, void *arg)
{
  loopq_append(q, fn, arg, 1);
}

void loopq_post_lazy(loopq_t *q, loopq_fn fn, void *arg)
{
  loopq_append(q, fn, arg, 0);
}

void loopq_flush(loopq_t *q)
{
  if (q && !q->closed)
    loopq_run_all(q);
}

void loopq_destroy(loopq_t *q)
{
  if (!q || q->closed)
    return;
  q->closed = 1; /* before running anything: a function may call loopq_destroy() again */
  /* Run what the loop already took, then whatever was posted since (functions may post more). */
  for (;;) {
    while (q->cur)
      loopq_run_one(q);
    if (!loopq_take(q))
      break;
  }
  loopq_free_list(q->spare);
  loopq_free_list(q->free);
  q->spare = q->free = NULL;
  uv_close((uv_handle_t *)&q->async, loopq_close_cb);
}
