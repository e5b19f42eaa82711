/* rayc-store: the node's shared-memory object store and object manager. Its life is
 * store_server_run (store_run.c); see object-store/store_server.h for the design. */
#include "object-store/store_server.h"

int main(int argc, char **argv)
{
  return store_server_run(argc, argv);
}
