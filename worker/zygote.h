/* rayc-worker's fork-server mode (worker/zygote.c; the protocol is in common/zygote.h). */
#ifndef RAYC_WORKER_ZYGOTE_H
#define RAYC_WORKER_ZYGOTE_H

/* Serves spawn requests on ZYGOTE_REQ_FD until the raylet closes it; returns the exit status.
 * argv (borrowed) is the zygote's own: its memory becomes each child's command line. */
int worker_zygote_run(int argc, char **argv);

#endif
