/*
 * Driver for the infeasible-demand check of tests/integration/test_cli.c: submits one task asking
 * for CPUS CPUs (more than any node has), prints "SUBMITTED", waits for it and prints
 * "RESULT <code>" (the raylet fails it with INFEASIBLE after --infeasible-timeout-ms).
 *
 *   demand CPUS            waits for the task (INFEASIBLE after --infeasible-timeout-ms)
 *   demand CPUS cancel     waits for the file $DEMAND_CANCEL, cancels the task, prints its RESULT
 *                          (CANCELLED), then stays connected until the file $DEMAND_EXIT exists
 */
#include <rayc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Waits up to 60 s for the file the variable name names. */
static void wait_file(const char *name)
{
  const char *path = getenv(name);
  for (int i = 0; path && i < 600 && access(path, F_OK) != 0; i++)
    usleep(100000);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2 && !(argc == 3 && strcmp(argv[2], "cancel") == 0))
    return 2;
  int cancel = argc == 3;
  if (rayc_init(NULL) != 0) {
    printf("FAIL: rayc_init: %s\n", rayc_last_error());
    return 1;
  }
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_cpus = atof(argv[1]);
  o.max_retries = 0;
  rayc_ref r;
  if (rayc_remote("noop", NULL, 0, &o, &r) != 0) {
    printf("FAIL: submit: %s\n", rayc_last_error());
    return 1;
  }
  printf("SUBMITTED\n");
  if (cancel) {
    wait_file("DEMAND_CANCEL");
    if (rayc_cancel(&r, 0, 0) != 0)
      printf("FAIL: rayc_cancel: %s\n", rayc_last_error());
  }
  rayc_buf b;
  int rc = rayc_get(&r, 1, 120000, &b);
  if (rc == 0)
    rayc_buf_release(&b, 1);
  printf("RESULT %d (%s): %s\n", rc, rayc_strerror(rc), rc ? rayc_last_error() : "ok");
  rayc_ref_release(&r);
  if (cancel)
    wait_file("DEMAND_EXIT");
  rayc_shutdown();
  return 0;
}
