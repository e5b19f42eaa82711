/*
 * A worker's quick exit (issue 17). Ray's core worker ends with QuickExit() (_Exit after its logs
 * are flushed) rather than tearing its gRPC stack down; so does a rayc worker that has nothing to
 * hand back: once its server has sent every reply (rpc_server_destroy waits for them) and its
 * task events have gone to the GCS (or to its raylet, which sends them on), what is left is
 * memory, threads and sockets that the kernel reclaims at _exit in a fraction of what gRPC's
 * orderly shutdown, the core worker's frees and ~80 libraries' destructors cost (~10 ms of CPU
 * per worker, docs/PERFORMANCE.md).
 *
 * A worker that holds leases, refs borrowed from or lent to other processes, parked status waits
 * or actor handles takes the orderly path (cw_destroy), which returns the leases and tells the
 * owners. Sanitizer builds always take it, so their leak checks keep covering the teardown.
 */
#include "worker/cw.h"
#include "worker/cw_events.h"
#include "worker/cw_proc.h"

#include <pthread.h>

int cw_worker_exit_quick(cw_t *cw)
{
  pthread_mutex_lock(&cw->mu);
  cw->stopping = 1;
  pthread_cond_broadcast(&cw->bg_cv);
  pthread_mutex_unlock(&cw->mu);
  if (cw->bg_running)
    pthread_join(cw->bg, NULL);
  cw->bg_running = 0;
  cw_events_flush(cw, 2000); /* what the last second recorded */
  pthread_mutex_lock(&cw->mu);
  int quick = cw->is_worker && !cw->actors && !cw->peers.count && !cw->objects.count && !cw->swaits;
  for (const cw_class_t *c = cw->classes; c && quick; c = c->next)
    quick = !c->leases && !c->lease_requests;
  pthread_mutex_unlock(&cw->mu);
  pthread_mutex_lock(&cw_proc.lang_mu);
  quick &= !cw_proc.lang_exec_set; /* a binding's interpreter (Python) flushes its own buffers at exit */
  pthread_mutex_unlock(&cw_proc.lang_mu);
#if defined(__SANITIZE_ADDRESS__)
  quick = 0;
#endif
  return quick;
}
