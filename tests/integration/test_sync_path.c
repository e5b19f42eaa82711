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
 */
#include "itest.h"

#include <dirent.h>

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
  int nhelper0 = 0;
  long helper0 = switches_of("rpc-client-2", &nhelper0); /* polls only while many calls are in flight */
  ck_assert_msg(nserver == 1, "the driver has %d threads named rpc-server, expected its one server's", nserver);
  ck_assert_msg(nclient == 1, "the driver has %d rpc-client threads, expected one", nclient);
  for (int i = 0; i < SYNC_TASKS; i++)
    sync_noop();
  long server = switches_of("rpc-server", &nserver) - server0;
  long client = switches_of("rpc-client", &nclient) - client0;
  int nhelper = 0;
  long helper = switches_of("rpc-client-2", &nhelper) - helper0;
  /* The client's thread polls: it wakes for every reply. The server thread may wake for a call
   * to this driver now and then (the GCS, the worker's borrow checks); not for every task. */
  ck_assert_msg(client >= SYNC_TASKS / 2, "the client thread switched %ld times for %d tasks: who polled?", client,
                SYNC_TASKS);
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
  suite_add_tcase(s, tc);
  return it_finish(s);
}
