/* rayc-worker: started by a raylet; the work is done by librayc's core worker. `rayc-worker
 * --zygote` is the node's fork server instead (worker/zygote.c). */
#include "rayc_lang.h"

#include "worker/zygote.h"

#include <string.h>

int main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "--zygote") == 0)
    return worker_zygote_run(argc, argv);
  return rayc_worker_main(argc, argv);
}
