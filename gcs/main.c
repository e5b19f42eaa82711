/* rayc-gcs: the cluster's control store. Its life is gcs_server_run (gcs_server.c); see
 * gcs/gcs_server.h for the design. */
#include "gcs/gcs_server.h"

#include <malloc.h>

int main(int argc, char **argv)
{
  /* Every owner's task events arrive once a second as one request of megabytes, unpacked into
   * many small blocks and freed again: with glibc's default trimming each report gave its heap
   * back and faulted it in again (page faults were most of the GCS's CPU per task). Keep up to
   * 32 MiB of freed heap, and keep requests of a few MiB off mmap. */
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  return gcs_server_run(argc, argv);
}
