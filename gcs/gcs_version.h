/* The rayc version and the git revision rayc-gcs was built from (Makefile: RAYC_GIT_REV). */
#ifndef RAYC_GCS_VERSION_H
#define RAYC_GCS_VERSION_H

/* Static strings. */
const char *gcs_version(void);
const char *gcs_git_revision(void);

#endif
