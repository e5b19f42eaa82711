/* rayc-gcs: the cluster's control store. Its life is gcs_server_run (gcs_server.c); see
 * gcs/gcs_server.h for the design. */
#include "gcs/gcs_server.h"

int main(int argc, char **argv)
{
  return gcs_server_run(argc, argv);
}
