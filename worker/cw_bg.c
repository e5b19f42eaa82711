/*
 * The core worker's background thread: returns idle leases, re-pumps classes that backed off,
 * retries actor and borrow polls, expires parked status waits (every CW_BG_TICK_MS while any of
 * that is pending), and reports task events and answers long-held WaitOwnerExit calls once a
 * second.
 *
 * Sleeping (issue 17): a driver ticks every CW_BG_TICK_MS for its whole life, as before. A worker
 * ticks only while cw_bg_pending() sees work of the tick, or for CW_BG_GRACE_MS after it was
 * kicked; otherwise it sleeps until kicked, up to one second when events or owner waits are
 * pending, or CW_BG_IDLE_MS when nothing is. cw_bg_kick() is called by every public API entry
 * (cw_api) and by the worker's server for every call it accepts, i.e. by everything that can
 * create work for the tick; the grace period covers the kick coming just before the state it
 * creates. An idle actor's worker (its calls answered, nothing borrowed, nothing submitted)
 * thus wakes every CW_BG_IDLE_MS instead of every 20 ms: an actor costs no CPU while it waits.
 *
 * Lost wake-ups: the thread sets bg_sleeping and then reads bg_kicked (both sequentially
 * consistent) under cw->mu before it waits; a kicker sets bg_kicked and then reads bg_sleeping,
 * and signals under cw->mu. One of the two sees the other's store, and the signal cannot come
 * between the check and the wait because the waiter holds cw->mu until the wait releases it.
 */
#include "worker/cw.h"
#include "worker/cw_events.h"
#include "worker/cw_proc.h"

#include "common/util.h"

#include <pthread.h>

enum {
  CW_BG_TICK_MS = 20,    /* while anything of the tick is pending */
  CW_BG_GRACE_MS = 100,  /* ticking on after a kick, before the pending state is trusted */
  CW_BG_SLOW_MS = 1000,  /* the events report and the owner-wait answers */
  CW_BG_IDLE_MS = 10000, /* a worker with nothing pending: a safety net, not a schedule */
};

/* Something the 20 ms tick must handle, now or when an RPC in flight answers (cw->mu held).
 * Conservative: a process that borrows from peers keeps ticking. Actor handles need the tick only
 * for a failed GCS poll's retry, and that failure kicks the thread (cw_bg_kick_locked): a worker
 * that merely once asked the GCS something through the actors' channel (a Python worker's
 * function lookups do) used to tick 50 times a second for the rest of its life. */
static int cw_bg_pending(const cw_t *cw)
{
  for (const cw_class_t *c = cw->classes; c; c = c->next)
    if (c->leases || c->head || c->queued || c->lease_requests || c->retry_after_ms)
      return 1;
  return cw_actors_retry_pending(cw) || cw->peers.count || cw->idle_len || cw->nrm_peers || cw->npoll_retry ||
         cw->swaits;
}

/* Events to report or owner waits to answer: the once-a-second work. */
static int cw_bg_slow_pending(void)
{
  pthread_mutex_lock(&cw_proc.events.mu);
  int n = cw_proc.events.count > 0 || cw_proc.events.dropped > 0;
  pthread_mutex_unlock(&cw_proc.events.mu);
  pthread_mutex_lock(&cw_proc.actor.mu);
  n |= cw_proc.actor.owner_waiters.n > 0;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  return n;
}

void cw_bg_kick(cw_t *cw)
{
  if (!cw || __atomic_load_n(&cw->bg_kicked, __ATOMIC_RELAXED) ||
      __atomic_exchange_n(&cw->bg_kicked, 1, __ATOMIC_SEQ_CST))
    return;
  if (!__atomic_load_n(&cw->bg_sleeping, __ATOMIC_SEQ_CST))
    return; /* ticking: it sees the kick at its next tick */
  pthread_mutex_lock(&cw->mu);
  pthread_cond_signal(&cw->bg_cv);
  pthread_mutex_unlock(&cw->mu);
}

/* cw_bg_kick with cw->mu held: the sleeping thread cannot be between its check of bg_kicked and
 * its wait, since both happen under cw->mu. */
void cw_bg_kick_locked(cw_t *cw)
{
  __atomic_store_n(&cw->bg_kicked, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&cw->bg_sleeping, __ATOMIC_SEQ_CST))
    pthread_cond_signal(&cw->bg_cv);
}

void cw_bg_kick_ctx(void *cw)
{
  cw_bg_kick(cw);
}

/* How long to wait before the next tick (cw->mu held); 0 after a kick that came meanwhile. */
static int64_t cw_bg_wait_ms(cw_t *cw, int64_t grace_until_ms)
{
  if (!cw->is_worker || now_ms() < grace_until_ms || cw_bg_pending(cw))
    return CW_BG_TICK_MS;
  pthread_mutex_unlock(&cw->mu); /* the events and actor locks are never taken under cw->mu */
  int slow = cw_bg_slow_pending();
  pthread_mutex_lock(&cw->mu);
  return slow ? CW_BG_SLOW_MS : CW_BG_IDLE_MS;
}

/* The tick's work (cw->mu held; dropped around what takes other locks). */
static void cw_bg_tick(cw_t *cw, int64_t *events_tick_ms, int64_t *owner_tick_ms)
{
  cw_leases_return_idle(cw, 0);
  for (cw_class_t *c = cw->classes; c; c = c->next)
    if (c->retry_after_ms && now_ms() >= c->retry_after_ms)
      cw_pump(cw, c);
  cw_actors_tick(cw);
  cw_borrow_tick(cw);
  if (!cw->stopping && now_ms() - *events_tick_ms >= CW_BG_SLOW_MS) {
    *events_tick_ms = now_ms();
    pthread_mutex_unlock(&cw->mu); /* the events have their own lock; the send is asynchronous */
    cw_events_flush(cw, 0);
    pthread_mutex_lock(&cw->mu);
  }
  if (!cw->stopping && now_ms() - *owner_tick_ms >= CW_BG_SLOW_MS) {
    *owner_tick_ms = now_ms();
    pthread_mutex_unlock(&cw->mu); /* rt.mu is never taken under cw->mu */
    cw_actor_owner_tick();
    pthread_mutex_lock(&cw->mu);
  }
}

void *cw_bg_main(void *arg)
{
  cw_t *cw = arg;
  int64_t owner_tick_ms = now_ms(), events_tick_ms = now_ms(), grace_until_ms = now_ms() + CW_BG_GRACE_MS;
  pthread_mutex_lock(&cw->mu);
  while (!cw->stopping) {
    int64_t wait_ms = cw_bg_wait_ms(cw, grace_until_ms);
    struct timespec ts = realtime_deadline_ms(wait_ms);
    __atomic_store_n(&cw->bg_sleeping, wait_ms > CW_BG_TICK_MS, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&cw->bg_kicked, __ATOMIC_SEQ_CST) && !cw->stopping)
      pthread_cond_timedwait(&cw->bg_cv, &cw->mu, &ts);
    __atomic_store_n(&cw->bg_sleeping, 0, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&cw->bg_kicked, 0, __ATOMIC_SEQ_CST))
      grace_until_ms = now_ms() + CW_BG_GRACE_MS;
    if (!cw->stopping)
      cw_bg_tick(cw, &events_tick_ms, &owner_tick_ms);
  }
  pthread_mutex_unlock(&cw->mu);
  return NULL;
}
