/*
 * Turns off abseil's mutex deadlock detector in this process (gRPC's locks are absl::Mutex).
 *
 * Debian builds abseil without NDEBUG, so every absl::Mutex lock records its lock-order edges in
 * a global graph (GraphCycles::InsertEdge under one global lock) and every mutex destroyed is
 * removed from it again. `perf record` of the GCS creating 150 actors put ~7% of its CPU in
 * GraphCycles alone and more in the global lock around it: gRPC makes and drops many mutexes per
 * channel and takes them on every call. The detector only reports (it never prevents) lock-order
 * inversions inside gRPC, which gRPC's own tests cover, so we switch it off.
 *
 * The switch, absl::SetMutexDeadlockDetectionMode(OnDeadlockCycle::kIgnore), is C++: we look it
 * up by its mangled name in the already loaded libabsl_synchronization, under the inline
 * namespaces abseil's Debian and upstream builds use. An abseil that has none of them is left as
 * it is (the detector costs CPU, never correctness).
 */
#include "common/rpc_int.h"

#include <dlfcn.h>
#include <pthread.h>

static const char *const set_mode_names[] = {
    "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
    "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
    "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
};

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void absl_quiet_once(void)
{
  for (size_t i = 0; i < sizeof(set_mode_names) / sizeof(set_mode_names[0]); i++) {
    void *sym = dlsym(RTLD_DEFAULT, set_mode_names[i]);
    if (sym) {
      void (*set_mode)(int) = (void (*)(int))(uintptr_t)sym;
      set_mode(0); /* absl::OnDeadlockCycle::kIgnore */
      return;
    }
  }
}

void rpc_absl_quiet(void)
{
  pthread_once(&quiet_once, absl_quiet_once);
}
