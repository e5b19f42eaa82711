/*
 * Integration tests of an actor worker's life (issue 17, docs/PERFORMANCE.md "Actor worker
 * process") against a real head node: an idle actor's worker does not wake (its background thread
 * sleeps while nothing is pending, and a call still wakes it), and a killed actor's worker exits
 * at once with the raylet logging what the worker cost over its whole life, and an actor's worker
 * reports its task events through its raylet, holding no connection to the GCS of its own.
 * The actor class is TCounter (tests/tasks/test_actors_lib.c).
 */
#include "itest.h"
#include "itest_proc.h"

#include "common/frame.h"
#include "proto/local.pb-c.h"

#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

static rayc_actor create_counter(void)
{
  rayc_actor a;
  int rc = rayc_actor_create("TCounter", NULL, 0, NULL, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create TCounter: %s", rayc_last_error());
  return a;
}

static int64_t actor_pid(const rayc_actor *a)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, "pid", NULL, 0, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call pid: %s", rayc_last_error());
  int64_t pid = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "rayc_get pid: %s", rayc_last_error());
  rayc_ref_release(&r);
  return pid;
}

/* The context switches so far of process pid's thread named name; -1 when it has none. */
static long thread_switches(long pid, const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "/proc/%ld/task", pid);
  DIR *d = opendir(path);
  long total = -1;
  for (struct dirent *e; d && (e = readdir(d));) {
    char comm[64] = "", line[128];
    snprintf(path, sizeof(path), "/proc/%ld/task/%s/comm", pid, e->d_name);
    FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
    if (f && fgets(comm, sizeof(comm), f) && strncmp(comm, name, strlen(name)) == 0 && comm[strlen(name)] == '\n') {
      fclose(f);
      snprintf(path, sizeof(path), "/proc/%ld/task/%s/status", pid, e->d_name);
      f = fopen(path, "r");
      long v;
      total = 0;
      while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
          total += v;
    }
    if (f)
      fclose(f);
  }
  if (d)
    closedir(d);
  return total;
}

/* An actor that has answered its calls and waits costs nothing: its worker's background thread
 * (which ticked every 20 ms before) wakes at most a few times in 3 s, and a call made after that
 * is answered as before. */
START_TEST(test_idle_actor_sleeps)
{
  it_connect();
  rayc_actor a = create_counter();
  long pid = (long)actor_pid(&a);
  it_sleep_ms(1500); /* past the kick's grace period and the task events' report */
  long before = thread_switches(pid, "cw-bg");
  ck_assert_msg(before >= 0, "worker %ld has no cw-bg thread", pid);
  it_sleep_ms(3000);
  long after = thread_switches(pid, "cw-bg");
  ck_assert_msg(after - before <= 4, "an idle actor's background thread switched %ld times in 3 s (ticking?)",
                after - before);
  ck_assert_int_eq(actor_pid(&a), pid);
  rayc_actor_kill(&a, 1);
  rayc_shutdown();
}
END_TEST

/* A killed actor's worker is gone within seconds (no teardown left hanging) and the raylet logs
 * what it cost over its whole life (from the zygote's wait4). */
START_TEST(test_killed_actor_worker_exits)
{
  it_connect();
  rayc_actor a = create_counter();
  long pid = (long)actor_pid(&a);
  ck_assert_int_eq(rayc_actor_kill(&a, 1), 0);
  int gone = 0;
  for (int i = 0; i < 300 && !gone; i++) {
    gone = kill((pid_t)pid, 0) != 0;
    if (!gone)
      it_sleep_ms(50);
  }
  ck_assert_msg(gone, "the killed actor's worker %ld still runs 15 s later", pid);
  char cmd[1200];
  snprintf(cmd, sizeof(cmd),
           "for i in $(seq 100); do grep -q 'worker pid %ld exited: .* ms CPU over its life, .* page faults' "
           "%s/session_latest/logs/raylet.log && exit 0; sleep 0.1; done; exit 1",
           pid, it_temp);
  ck_assert_msg(it_run(cmd) == 0, "the raylet did not log worker %ld's life cost", pid);
  rayc_shutdown();
}
END_TEST

/* An actor's worker sends its task events through its raylet's local connection (the raylet
 * sends them on): the constructor and a call show up FINISHED in `rayc list tasks` with the
 * worker's pid, and the worker holds no connection to the GCS (before, it opened one just for
 * these reports: a connection and ~2 ms of CPU per actor). */
START_TEST(test_actor_events_through_raylet)
{
  it_connect();
  rayc_actor a = create_counter();
  long pid = (long)actor_pid(&a);
  char cmd[2600];
  snprintf(cmd, sizeof(cmd),
           "for i in $(seq 100); do %s/bin/rayc list tasks --temp-dir %s --limit 0 --format json | "
           "awk '/\"state\"/ { s = $2 } /\"worker_pid\": %ld,/ { n += s == \"\\\"FINISHED\\\",\" } "
           "END { exit n >= 2 ? 0 : 1 }' && exit 0; sleep 0.1; done; exit 1",
           it_build, it_temp, pid);
  ck_assert_msg(it_run(cmd) == 0, "the actor's constructor and call are not FINISHED in rayc list tasks (worker %ld)",
                pid);
  const char *colon = strrchr(it_address, ':');
  int gcs_port = colon ? atoi(colon + 1) : 0;
  ck_assert_int_gt(gcs_port, 0);
  int held = it_connections_to(pid, gcs_port);
  ck_assert_msg(held == 0, "the actor's worker %ld holds %d connection(s) to the GCS (port %d)", pid, held, gcs_port);
  ck_assert_int_eq(actor_pid(&a), pid); /* and it still answers */
  rayc_actor_kill(&a, 1);
  rayc_shutdown();
}
END_TEST

/* A local connection's malformed task_events frame (a task id of 3 bytes) is dropped by the raylet
 * with a warning, not sent on (the GCS would refuse the whole batch it rides in, other workers'
 * events with it); the raylet stays up and serves the next actor. */
START_TEST(test_malformed_task_events_dropped)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/session_latest/sockets/raylet", it_temp);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
  memcpy(sa.sun_path, path, strlen(path) + 1);
  ck_assert_msg(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "cannot connect to %s", path);
  uint8_t id[3] = {1, 2, 3};
  Rayc__TaskEvent ev = RAYC__TASK_EVENT__INIT, *evp = &ev;
  ev.task_id.data = id;
  ev.task_id.len = sizeof(id);
  ev.state = RAYC__TASK_STATUS__FINISHED;
  Rayc__AddTaskEventDataRequest req = RAYC__ADD_TASK_EVENT_DATA_REQUEST__INIT;
  req.events = &evp;
  req.n_events = 1;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_TASK_EVENTS;
  m.task_events = &req;
  ck_assert_int_eq(frame_send_msg(fd, &m.base, -1), 0);
  char cmd[1200];
  snprintf(cmd, sizeof(cmd),
           "for i in $(seq 100); do grep -q \"task events are malformed\" %s/session_latest/logs/raylet.log && exit 0; "
           "sleep 0.1; done; exit 1",
           it_temp);
  ck_assert_msg(it_run(cmd) == 0, "the raylet did not drop the malformed task events");
  close(fd);
  it_connect();
  rayc_actor a = create_counter();
  ck_assert_int_gt(actor_pid(&a), 0);
  rayc_actor_kill(&a, 1);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("worker_life");
  TCase *tc = tcase_create("worker_life");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_idle_actor_sleeps);
  tcase_add_test(tc, test_killed_actor_worker_exits);
  tcase_add_test(tc, test_actor_events_through_raylet);
  tcase_add_test(tc, test_malformed_task_events_dropped);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
