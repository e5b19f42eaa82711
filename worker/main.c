/* rayc-worker: started by a raylet; the work is done by librayc's core worker. */
#include "rayc_lang.h"

int main(int argc, char **argv)
{
  return rayc_worker_main(argc, argv);
}
