/* rayc-raylet: the node manager daemon. Its life is in raylet_server.c; see raylet.h for its modules. */
#include "raylet/raylet.h"

int main(int argc, char **argv)
{
  return raylet_server_run(argc, argv);
}
