/*
 * The rayc._rayc extension module (CPython C API over librayc's rayc.h and rayc_lang.h; no
 * internals): shared declarations of its files. _rayc.c holds the module, the ObjectRef and
 * Buffer types and the driver-side calls; _rayc_exec.c the worker side (the executor that runs
 * Python tasks and actors, and worker_main); _rayc_actor.c actors, placement groups, the KV and
 * the cluster view.
 *
 * GIL: every librayc call that can block runs with the GIL released; executor callbacks take it
 * (PyGILState_Ensure) on the core worker's threads.
 */
#ifndef RAYC_PY_H
#define RAYC_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "rayc.h"
#include "rayc_lang.h"

/* An ObjectRef: a rayc_ref this Python object holds (held: released at dealloc). */
typedef struct {
  PyObject_HEAD rayc_ref ref;
  int held;
  unsigned gen; /* the session (rayc_init) it belongs to: refs of an older one are not released */
} rpy_ref_t;

/* A read-only buffer over a rayc_buf (an object's bytes, in shared memory when large); the
 * rayc_buf is released when the last view of it is gone. */
typedef struct {
  PyObject_HEAD rayc_buf buf;
  unsigned gen;
} rpy_buffer_t;

extern PyTypeObject rpy_ref_base_type;
extern PyTypeObject rpy_buffer_type;
extern PyObject *rpy_error; /* _rayc.Error(code, name, message) */
extern unsigned rpy_gen;

/* New ObjectRef of the registered class (a Python subclass, see set_ref_class) for r. held: the
 * object releases r at dealloc; retain: take a new hold first (r is a buffer's ref). */
PyObject *rpy_ref_new(const rayc_ref *r, int held, int retain);
/* Sets _rayc.Error from code and rayc_last_error(); returns NULL. */
PyObject *rpy_raise(int code);
/* A Buffer that takes ownership of *b. */
PyObject *rpy_buffer_new(rayc_buf *b);
/* [(Buffer, [ObjectRef...]), ...] for n buffers (taken: each Buffer owns its rayc_buf); the refs
 * are retained. NULL on error (every buffer released). */
PyObject *rpy_bufs_to_list(rayc_buf *bufs, size_t n);
/* Task arguments from a list of ObjectRef (by reference) or (buffer, [ObjectRef]) (by value).
 * Fills args (n of them) and views (release with rpy_args_release). -1 with an exception set. */
int rpy_args_from_list(PyObject *list, rayc_arg **args, Py_buffer **views, rayc_ref **refs, size_t *n);
void rpy_args_release(rayc_arg *args, Py_buffer *views, rayc_ref *refs, size_t n);
/* A list of n new held ObjectRefs. */
PyObject *rpy_refs_list(const rayc_ref *refs, size_t n);
/* Parts of an object from a sequence of (offset, bytes-like): fills *out and *views (n of them;
 * release both with rpy_parts_release, also after a failure). -1 with an exception set. */
int rpy_parts_parse(PyObject *parts, rayc_part **out, Py_buffer **views, Py_ssize_t *n);
void rpy_parts_release(rayc_part *parts, Py_buffer *views, Py_ssize_t n);
/* Fills *out from an ObjectRef; -1 with TypeError otherwise. */
int rpy_ref_get(PyObject *o, rayc_ref *out);

/* _rayc_exec.c */
extern PyMethodDef rpy_exec_methods[];
int rpy_exec_init(PyObject *m);
/* _rayc_actor.c */
extern PyMethodDef rpy_actor_methods[];
/* _rayc_stream.c */
extern PyMethodDef rpy_stream_methods[];
/* _rayc_kv.c */
extern PyMethodDef rpy_kv_methods[];

#endif
