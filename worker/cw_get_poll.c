/*
 * A driver's getter waits on the rpc client's completion queue itself (issue 17, session 12).
 *
 * A synchronous task used to take four wake-ups in a row: the worker's poller, its executor, the
 * driver's client thread (the reply arrives) and the getter (the client thread applied the reply
 * and broadcast cw->cv). Each wake-up of the other vCPU costs ~25-35 us on these VMs. Here the
 * first thread that blocks in rayc_get borrows the client's queue (rpc_client_lend_begin: the
 * client thread sleeps meanwhile, so the process still has one poller) and waits in gRPC itself:
 * the reply wakes it, it runs the call's callback (cw_push_done) on its own thread, finds its
 * object ready and returns. Three wake-ups.
 *
 * Only drivers whose client thread polls for the whole process (cw->get_lend, set with
 * rpc_client_poll in cw_driver_serve): workers keep their server thread as a second poller, and
 * lending there would hand gRPC's poller role between the two on every event. One getter borrows
 * at a time; others wait on cw->cv as before, woken by the broadcasts of the callbacks the
 * borrower runs. Objects made ready on another thread (a put, the server thread's handlers, the
 * client thread before the hand-off) kick the borrower (cw_get_kick from the wake-up paths of
 * cw_object.c), so it looks again.
 */
#include "worker/cw.h"

#include "common/rpc.h"
#include "common/status.h"

#include <errno.h>
#include <stdatomic.h>

/* The wait as it was: on cw->cv. */
static int get_cond_wait(cw_t *cw, const struct timespec *dl)
{
  return dl ? pthread_cond_timedwait(&cw->cv, &cw->mu, dl) : pthread_cond_wait(&cw->cv, &cw->mu);
}

int cw_get_block(cw_t *cw, const struct timespec *dl)
{
  if (!cw->get_lend || atomic_load(&cw->get_borrowing) || !cw->client)
    return get_cond_wait(cw, dl);
  atomic_store(&cw->get_borrowing, 1); /* from here on, readiness elsewhere kicks us */
  unsigned long gen = cw->ready_gen;
  pthread_mutex_unlock(&cw->mu); /* callbacks take it, on this thread or on the client's */
  int lent = rpc_client_lend_begin(cw->client), rc = 0;
  if (lent) {
    rc = rpc_client_lend_poll(cw->client, dl);
    rpc_client_lend_end(cw->client);
  }
  pthread_mutex_lock(&cw->mu);
  atomic_store(&cw->get_borrowing, 0);
  if (rc == RAYC_ETIMEOUT)
    return ETIMEDOUT;
  if (lent && rc == 0)
    return 0;
  /* Not lent (the client closes, or its thread is the caller): wait as before, unless something
   * became ready while the mutex was let go (that broadcast is gone). */
  return cw->ready_gen != gen ? 0 : get_cond_wait(cw, dl);
}

void cw_get_kick(cw_t *cw)
{
  if (atomic_load(&cw->get_borrowing))
    rpc_client_kick(cw->client); /* a no-op on the borrower's own thread */
}
