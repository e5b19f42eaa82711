/*
 * Streaming generators in rayc._rayc (the caller's side; rayc.h "streaming generators"):
 * stream_next(gen, timeout_ms) and stream_ready(gen), over rayc_stream_next/rayc_stream_ready.
 * rayc.ObjectRefGenerator (python/rayc/_generator.py) is built on them; the worker's side is
 * TaskCtx.yield_item (_rayc_exec.c).
 */
#include "_rayc.h"

/* stream_next(gen, timeout_ms) -> ObjectRef (the next item), None (the end) or False (the task
 * failed: get the generator ref for its error); raises _rayc.Error on a timeout. */
static PyObject *m_stream_next(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *g;
  long long timeout_ms;
  rayc_ref gen, out;
  if (!PyArg_ParseTuple(args, "OL", &g, &timeout_ms) || rpy_ref_get(g, &gen) != 0)
    return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_stream_next(&gen, (int64_t)timeout_ms, &out);
  Py_END_ALLOW_THREADS if (rc == 1) return rpy_ref_new(&out, 1, 0);
  if (rc == 0)
    Py_RETURN_NONE;
  if (rc == RAYC_ETIMEOUT || rc == RAYC_EINVALID_ARGUMENT || rc == RAYC_ENOT_CONNECTED)
    return rpy_raise(rc);
  Py_RETURN_FALSE;
}

/* stream_ready(gen) -> bool: whether stream_next would not wait. */
static PyObject *m_stream_ready(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *g;
  rayc_ref gen;
  if (!PyArg_ParseTuple(args, "O", &g) || rpy_ref_get(g, &gen) != 0)
    return NULL;
  int rc = rayc_stream_ready(&gen);
  if (rc < 0)
    return rpy_raise(rc);
  return PyBool_FromLong(rc);
}

PyMethodDef rpy_stream_methods[] = {
    {"stream_next", m_stream_next, METH_VARARGS, "stream_next(gen, timeout_ms) -> ObjectRef | None | False"},
    {"stream_ready", m_stream_ready, METH_VARARGS, "stream_ready(gen) -> bool"},
    {NULL, NULL, 0, NULL},
};
