/*
 * Driver for the infeasible-demand check of tests/integration/test_cli.c: submits one task asking
 * for CPUS CPUs (more than any node has), prints "SUBMITTED", waits for it and prints
 * "RESULT <code>" (the raylet fails it with INFEASIBLE after --infeasible-timeout-ms).
 *
 *   demand CPUS
 */
#include <rayc.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2)
    return 2;
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
  rayc_buf b;
  int rc = rayc_get(&r, 1, 120000, &b);
  if (rc == 0)
    rayc_buf_release(&b, 1);
  printf("RESULT %d (%s): %s\n", rc, rayc_strerror(rc), rc ? rayc_last_error() : "ok");
  rayc_ref_release(&r);
  rayc_shutdown();
  return 0;
}
