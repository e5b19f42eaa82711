/*
 * The store's I/O threads (see store_io.h): a FIFO of jobs under one mutex and condition
 * variable, taken by a fixed set of threads; results go back to the loop through a loopq, which
 * coalesces wake-ups. pending is touched only on the loop (submit, done), so it needs no lock.
 */
#include "object-store/store_io.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/loopq.h"
#include "common/util.h"

typedef struct io_job {
  struct io_job *next;
  store_io_work_fn work;
  store_io_done_fn done;
  void *arg;
  store_io_t *io;
} io_job_t;

struct store_io {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  io_job_t *head, *tail; /* mu */
  int stopping;          /* mu */
  pthread_t *threads;
  int nthreads;
  loopq_t *q;
  size_t pending; /* loop thread only */
};

static void io_on_done(void *arg)
{
  io_job_t *j = arg;
  store_io_t *io = j->io;
  io->pending--;
  store_io_done_fn done = j->done;
  void *a = j->arg;
  free(j);
  done(a);
}

static io_job_t *io_take(store_io_t *io)
{
  pthread_mutex_lock(&io->mu);
  while (!io->head && !io->stopping)
    pthread_cond_wait(&io->cv, &io->mu);
  io_job_t *j = io->head;
  if (j) {
    io->head = j->next;
    if (!io->head)
      io->tail = NULL;
  }
  int cancelled = io->stopping;
  pthread_mutex_unlock(&io->mu);
  if (j)
    j->work(j->arg, cancelled);
  return j;
}

static void *io_main(void *arg)
{
  store_io_t *io = arg;
  io_job_t *j;
  while ((j = io_take(io)) != NULL)
    loopq_post(io->q, io_on_done, j);
  return NULL;
}

store_io_t *store_io_create(uv_loop_t *loop, int nthreads)
{
  store_io_t *io = xcalloc(1, sizeof(*io));
  pthread_mutex_init(&io->mu, NULL);
  pthread_cond_init(&io->cv, NULL);
  io->q = loopq_create(loop);
  if (nthreads < 1)
    nthreads = 1;
  io->threads = xcalloc((size_t)nthreads, sizeof(*io->threads));
  for (int i = 0; i < nthreads; i++) {
    if (pthread_create(&io->threads[i], NULL, io_main, io) != 0) {
      log_error("cannot start I/O thread %d", i);
      abort();
    }
    pthread_setname_np(io->threads[i], "store-io");
    io->nthreads++;
  }
  return io;
}

void store_io_submit(store_io_t *io, store_io_work_fn work, store_io_done_fn done, void *arg)
{
  io_job_t *j = xcalloc(1, sizeof(*j));
  j->work = work;
  j->done = done;
  j->arg = arg;
  j->io = io;
  io->pending++;
  pthread_mutex_lock(&io->mu);
  if (io->tail)
    io->tail->next = j;
  else
    io->head = j;
  io->tail = j;
  pthread_cond_signal(&io->cv);
  pthread_mutex_unlock(&io->mu);
}

size_t store_io_pending(const store_io_t *io)
{
  return io->pending;
}

void store_io_destroy(store_io_t *io)
{
  if (!io)
    return;
  pthread_mutex_lock(&io->mu);
  io->stopping = 1;
  pthread_cond_broadcast(&io->cv);
  pthread_mutex_unlock(&io->mu);
  for (int i = 0; i < io->nthreads; i++)
    pthread_join(io->threads[i], NULL);
  loopq_destroy(io->q); /* runs every done still queued */
  free(io->threads);
  pthread_cond_destroy(&io->cv);
  pthread_mutex_destroy(&io->mu);
  free(io);
}
