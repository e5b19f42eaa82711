/*
 * rayc error codes. Every function of the rayc API that can fail returns 0 or one of these negative
 * codes; rayc_strerror() names them and rayc_last_error() gives the per-thread detail message (the
 * remote error text and where it happened).
 */
#ifndef RAYC_ERRORS_H
#define RAYC_ERRORS_H

/* Marks the public API: librayc is built with -fvisibility=hidden, so only functions declared
 * with RAYC_EXTERN are exported (`nm -D librayc.so` lists only rayc_* symbols). A program may
 * define its own xmalloc, log_init, hmap_put... without clashing with librayc's internals. */
#if defined(__GNUC__) || defined(__clang__)
#define RAYC_EXTERN __attribute__((visibility("default")))
#else
#define RAYC_EXTERN
#endif

/* The version of these headers; rayc_version() gives the library's. While MAJOR is 0, a MINOR
 * step may break the API (rebuild what links librayc and the task libraries):
 *   0.3  task and method functions lost their unused `rayc_buf *rets` parameter (results go
 *        through rayc_return_*); the RAYC_ERR_* spellings of the error codes are gone (RAYC_E*);
 *        the headers moved to include/. */
#define RAYC_VERSION_MAJOR  0
#define RAYC_VERSION_MINOR  3
#define RAYC_VERSION_PATCH  0
#define RAYC_VERSION_STRING "0.3.0"
#define RAYC_VERSION_NUMBER (RAYC_VERSION_MAJOR * 10000 + RAYC_VERSION_MINOR * 100 + RAYC_VERSION_PATCH)

/* The codes, one spelling each: RAYC_E<NAME> (RAYC_ETIMEOUT, RAYC_EOUT_OF_MEMORY...), libuv's
 * style (UV_ETIMEDOUT). rayc_err_name() gives NAME, rayc_strerror() the message. */
#define RAYC_ERRNO_MAP(X)                                      \
  X(TASK_FAILED, -1001, "the task raised an error")            \
  X(WORKER_DIED, -1002, "the worker running the task died")    \
  X(ACTOR_DIED, -1003, "the actor died")                       \
  X(OBJECT_LOST, -1004, "every copy of the object was lost")   \
  X(OWNER_DIED, -1005, "the owner of the object died")         \
  X(TIMEOUT, -1006, "timed out")                               \
  X(CANCELLED, -1007, "cancelled")                             \
  X(UNAUTHENTICATED, -1008, "missing or wrong cluster token")  \
  X(OUT_OF_MEMORY, -1009, "out of memory")                     \
  X(INFEASIBLE, -1010, "no node can ever satisfy the request") \
  X(INVALID_ARGUMENT, -1011, "invalid argument")               \
  X(NOT_FOUND, -1012, "not found")                             \
  X(ALREADY_EXISTS, -1013, "already exists")                   \
  X(UNAVAILABLE, -1014, "the peer is unavailable")             \
  X(IO, -1015, "input/output error")                           \
  X(PROTOCOL, -1016, "malformed message")                      \
  X(INTERNAL, -1017, "internal error")                         \
  X(NOT_CONNECTED, -1018, "not connected to a cluster")        \
  X(UNIMPLEMENTED, -1019, "not implemented")                   \
  X(NODE_OUT_OF_MEMORY, -1020, "the worker was killed: its node was low on memory")

enum rayc_errno {
#define RAYC_ERRNO_ENUM(name, val, msg) RAYC_E##name = (val),
  RAYC_ERRNO_MAP(RAYC_ERRNO_ENUM)
#undef RAYC_ERRNO_ENUM
};

/* Returns a static description of a RAYC_E* code, or of a negative errno value. */
RAYC_EXTERN const char *rayc_strerror(int err);

/* Returns the static name of a RAYC_E* code ("TIMEOUT"), or "UNKNOWN". */
RAYC_EXTERN const char *rayc_err_name(int err);

/* Returns the library's version as "MAJOR.MINOR.PATCH" (static); *number, if not NULL, gets
 * RAYC_VERSION_NUMBER as the library was built (compare it with the header's to catch a mismatch). */
RAYC_EXTERN const char *rayc_version(int *number);

#endif
