/*
 * The synchronous task path (issue 17, session 8): what a driver's threads do for one task
 * submitted and waited for, on a real one-CPU head node.
 *
 * A driver serves CoreWorkerService (borrowers and the GCS call it) and calls workers through its
 * rpc client. gRPC's epoll engine lets one thread at a time poll a process's sockets and hands the
 * poller role to another thread waiting on any completion queue after every event, so a driver
 * whose server thread and client thread both waited on their queues woke both for every task
 * (~1.5-2 wake-ups of the idle server thread per task, measured). Now the driver's server queue
 * does not poll (rpc_server_opts_t.non_polling) and the client's thread polls for both. The cases
 * check it the way a user would see it, in /proc: the server thread sleeps through a run of
 * synchronous tasks; and that the server still answers what it is for (a worker borrowing a ref
 * this driver owns asks it for the value, and its results come back right).
 *
 * Since session 12 a thread blocked in rayc_get polls the client's queue itself while the client
 * thread sleeps (worker/cw_get_poll.c), so the reply wakes the getter and no other thread: the
 * client thread sleeps through the run as well (before: a wake-up per task, then one of the
 * getter). Getters on several threads at once, timeouts while polling, and a driver with the
 * lending turned off (RAYC_GET_NO_LEND) still get every result.
 */
#include "itest.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

enum { SYNC_TASKS = 300 };

static rayc_ref submit(const char *fn, const rayc_arg *args, size_t n)
{
  rayc_ref r;
  int rc = rayc_remote(fn, args, n, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  return r;
}

/* Context switches (voluntary + involuntary) of this process's threads named comm, summed; *n
 * gets how many threads have that name. */
static long switches_of(const char *comm, int *n)
{
  DIR *d = opendir("/proc/self/task");
  ck_assert_msg(d != NULL, "cannot list /proc/self/task");
  long total = 0;
  struct dirent *e;
  *n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[300], name[64] = "", line[256];
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    if (!fgets(name, sizeof(name), f))
      name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    if (strcmp(name, comm) != 0)
      continue;
    (*n)++;
    snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
      long v;
      if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
          sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
        total += v;
    }
    if (f)
      fclose(f);
  }
  closedir(d);
  return total;
}

/* Context switches of the calling thread. */
static long my_switches(void)
{
  FILE *f = fopen("/proc/thread-self/status", "r");
  ck_assert_msg(f != NULL, "cannot read /proc/thread-self/status");
  char line[256];
  long total = 0, v;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 || sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
      total += v;
  fclose(f);
  return total;
}

static void sync_noop(void)
{
  rayc_ref r = submit("noop", NULL, 0);
  rayc_buf b;
  int rc = rayc_get(&r, 1, 60000, &b);
  ck_assert_msg(rc == 0, "noop: %s", rayc_last_error());
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
}

/* The driver's server thread is not woken by the tasks' traffic: before, it took part in polling
 * and woke ~1.5-2 times per task (450-600 times here). */
START_TEST(test_server_thread_sleeps_through_sync_tasks)
{
  it_connect();
  sync_noop(); /* the lease and the worker's connection are set up by now */
  int nserver = 0, nclient = 0;
  long server0 = switches_of("rpc-server", &nserver);
  long client0 = switches_of("rpc-client", &nclient);
  long me0 = my_switches();
  int nhelper0 = 0;
  long helper0 = switches_of("rpc-client-2", &nhelper0); /* polls only while many calls are in flight */
  ck_assert_msg(nserver == 1, "the driver has %d threads named rpc-server, expected its one server's", nserver);
  ck_assert_msg(nclient == 1, "the driver has %d rpc-client threads, expected one", nclient);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < SYNC_TASKS; i++)
    sync_noop();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  long server = switches_of("rpc-server", &nserver) - server0;
  long client = switches_of("rpc-client", &nclient) - client0;
  int nhelper = 0;
  long helper = switches_of("rpc-client-2", &nhelper) - helper0;
  long me = my_switches() - me0;
  /* The getter (this thread) polls: it wakes for every reply. The client thread sleeps while its
   * queue is lent, looking at most twice a millisecond whether it still is; the server thread may
   * wake for a call to this driver now and then (the GCS, the worker's borrow checks); neither
   * for every task. Before session 12 the client thread woke for every reply (~300-350 here, in
   * ~30-60 ms on this VM) and then woke the getter. The bound allows the client thread's looks (a
   * slow run, e.g. under ASan, takes more milliseconds), not a wake-up per task unless a task
   * takes more than ~1.5 ms. */
  ck_assert_msg(me >= SYNC_TASKS / 2, "the getter switched %ld times for %d tasks: who polled?", me, SYNC_TASKS);
  ck_assert_msg(client < SYNC_TASKS / 4 + 2 * ms, "the client thread switched %ld times during %d sync tasks (%ld ms)",
                client, SYNC_TASKS, ms);
  ck_assert_msg(server < SYNC_TASKS / 10, "the driver's server thread switched %ld times during %d sync tasks", server,
                SYNC_TASKS);
  ck_assert_msg(helper < SYNC_TASKS / 10, "the client's helper poller switched %ld times during %d sync tasks", helper,
                SYNC_TASKS);
  rayc_shutdown();
}
END_TEST

/* The server still answers: a worker borrowing refs this driver owns (nested in an argument)
 * asks the driver for them, several times over, and every result is right. */
START_TEST(test_driver_server_answers_borrowers)
{
  it_connect();
  for (int round = 0; round < 5; round++) {
    char inner_data[16], outer_data[16];
    int ni = snprintf(inner_data, sizeof(inner_data), "inner%d", round);
    int no = snprintf(outer_data, sizeof(outer_data), "outer%d", round);
    rayc_ref inner, outer;
    ck_assert_int_eq(rayc_put(inner_data, (size_t)ni, &inner), 0);
    ck_assert_int_eq(rayc_put_with_refs(outer_data, (size_t)no, &inner, 1, &outer), 0);
    int64_t want = 0;
    for (int k = 0; k < ni; k++)
      want += (uint8_t)inner_data[k];
    for (int k = 0; k < no; k++)
      want += (uint8_t)outer_data[k];
    rayc_arg a = {.data = "x", .len = 1, .refs = &outer, .nrefs = 1};
    rayc_ref r = submit("borrow_deep", &a, 1);
    rayc_buf b;
    int rc = rayc_get(&r, 1, 60000, &b);
    ck_assert_msg(rc == 0, "borrow_deep: %s", rayc_last_error());
    ck_assert_uint_eq(b.len, 2 * sizeof(int64_t));
    int64_t v[2];
    memcpy(v, b.data, sizeof(v));
    ck_assert_int_eq(v[1], 2); /* outer, then the inner ref it contains */
    ck_assert_int_eq(v[0], want);
    rayc_buf_release(&b, 1);
    rayc_ref_release(&r);
    rayc_ref_release(&outer);
    rayc_ref_release(&inner);
  }
  rayc_shutdown();
}
END_TEST

enum { GETTERS = 4, GETTER_TASKS = 100 };

/* One getter thread: add1(i) for i in 0..GETTER_TASKS, each waited for at once. */
static void *getter_main(void *arg)
{
  int64_t base = (int64_t)(intptr_t)arg * 1000;
  for (int64_t i = 0; i < GETTER_TASKS; i++) {
    int64_t x = base + i;
    rayc_arg a = {.data = &x, .len = sizeof(x)};
    rayc_ref r;
    rayc_buf b;
    if (rayc_remote("add1", &a, 1, NULL, &r) != 0)
      return (void *)"rayc_remote failed";
    int rc = rayc_get(&r, 1, 60000, &b);
    int64_t v = 0;
    if (rc == 0 && b.len == sizeof(v))
      memcpy(&v, b.data, sizeof(v));
    if (rc == 0)
      rayc_buf_release(&b, 1);
    rayc_ref_release(&r);
    if (rc != 0 || v != x + 1)
      return (void *)"a getter's result is missing or wrong";
  }
  return NULL;
}

/* Several threads in rayc_get at once: one polls, the others wait for the broadcasts of the
 * callbacks it runs (and for the client thread once it lets go); every result comes back right.
 * Meanwhile this thread waits for a slow task with a timeout, twice, while polling. */
static void getters_run(void)
{
  pthread_t t[GETTERS];
  for (intptr_t i = 0; i < GETTERS; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, getter_main, (void *)i), 0);
  int64_t ms = 1500;
  rayc_arg a = {.data = &ms, .len = sizeof(ms)};
  rayc_ref slow = submit("sleep_ms", &a, 1);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&slow, 1, 50, &b), RAYC_ETIMEOUT);
  ck_assert_int_eq(rayc_get(&slow, 1, 0, &b), RAYC_ETIMEOUT);
  for (int i = 0; i < GETTERS; i++) {
    void *why = NULL;
    pthread_join(t[i], &why);
    ck_assert_msg(why == NULL, "%s", (const char *)why);
  }
  ck_assert_int_eq(rayc_get(&slow, 1, 60000, &b), 0);
  int64_t v = 0;
  ck_assert_uint_eq(b.len, sizeof(v));
  memcpy(&v, b.data, sizeof(v));
  ck_assert_int_eq(v, ms);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&slow);
}

struct cancel_later {
  rayc_ref ref;
  int rc;
};

static void *cancel_later_main(void *arg)
{
  struct cancel_later *c = arg;
  usleep(200 * 1000);
  c->rc = rayc_cancel(&c->ref, 0, 0);
  return NULL;
}

/* An object made ready on another thread wakes a getter polling the client's queue: this thread
 * waits for a task queued behind a 3 s one on the node's one CPU; another thread cancels it
 * (in this process: it was never pushed). The get returns the cancellation, not the timeout that
 * a getter left sleeping in gRPC until the next reply (the slow task's, at 3 s) would hit. (With
 * cw_get_kick disabled it passed too: the cancel's own calls and the bg thread's complete on the
 * queue and wake the getter. The kick is what makes it not depend on them.) */
START_TEST(test_getter_woken_by_another_thread)
{
  it_connect();
  sync_noop(); /* the lease is warm */
  int64_t ms = 3000;
  rayc_arg a = {.data = &ms, .len = sizeof(ms)};
  rayc_ref slow = submit("sleep_ms", &a, 1);
  struct cancel_later c = {.ref = submit("noop", NULL, 0), .rc = -1};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, cancel_later_main, &c), 0);
  rayc_buf b;
  int rc = rayc_get(&c.ref, 1, 2000, &b);
  pthread_join(t, NULL);
  ck_assert_msg(c.rc == 0, "rayc_cancel: %s", rayc_last_error());
  ck_assert_msg(rc == RAYC_ECANCELLED, "the get of a task cancelled by another thread returned %d (%s)", rc,
                rc ? rayc_last_error() : "its value");
  ck_assert_int_eq(rayc_get(&slow, 1, 60000, &b), 0);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&slow);
  rayc_ref_release(&c.ref);
  rayc_shutdown();
}
END_TEST

START_TEST(test_getters_on_threads)
{
  it_connect();
  getters_run();
  rayc_shutdown();
}
END_TEST

/* The same with the getters' polling turned off: the client thread wakes the getters. */
START_TEST(test_getters_without_lending)
{
  setenv("RAYC_GET_NO_LEND", "1", 1);
  it_connect();
  getters_run();
  for (int i = 0; i < 20; i++)
    sync_noop();
  rayc_shutdown();
  unsetenv("RAYC_GET_NO_LEND");
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 1") != 0) {
    fprintf(stderr, "could not start the head node\n");
    return 1;
  }
  Suite *s = suite_create("sync_path");
  TCase *tc = tcase_create("sync_path");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_server_thread_sleeps_through_sync_tasks);
  tcase_add_test(tc, test_driver_server_answers_borrowers);
  tcase_add_test(tc, test_getters_on_threads);
  tcase_add_test(tc, test_getter_woken_by_another_thread);
  tcase_add_test(tc, test_getters_without_lending);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
