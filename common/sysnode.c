/* Finding a systemd-run node (see sysnode.h). */
#include "common/sysnode.h"

#include "common/token.h"
#include "common/util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sysnode_present(void)
{
  if (access(TOKEN_DEFAULT_TEMP_DIR "/session_latest", F_OK) == 0)
    return 0; /* a node started with `rayc start` wins, as it did before systemd nodes existed */
  return access(SYSNODE_DIR "/session_latest/address", R_OK) == 0;
}

int sysnode_is_session(const char *session_dir)
{
  char a[PATH_MAX], b[PATH_MAX];
  if (!session_dir || !realpath(session_dir, a) || !realpath(SYSNODE_DIR "/session_latest", b))
    return 0;
  return strcmp(a, b) == 0;
}
