/* The rayc version and the git revision it was built from (for governance records). */
#include "gcs/gcs_version.h"

#ifndef RAYC_GIT_REV
#define RAYC_GIT_REV "unknown"
#endif

const char *gcs_version(void)
{
  return "0.1.0";
}

const char *gcs_git_revision(void)
{
  return RAYC_GIT_REV;
}
