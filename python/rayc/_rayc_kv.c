/*
 * kv_keys(ns, prefix) and kv_del(ns, key, by_prefix) of rayc._rayc, over rayc_kv_keys/rayc_kv_del
 * (rayc_lang.h): the driver collects the print() output of workers on other nodes with them.
 */
#include "_rayc.h"

static PyObject *m_kv_keys(PyObject *self, PyObject *args)
{
  (void)self;
  const char *ns;
  Py_buffer p;
  if (!PyArg_ParseTuple(args, "sy*", &ns, &p))
    return NULL;
  rayc_kv_key *keys = NULL;
  size_t n = 0;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_kv_keys(ns, p.buf, (size_t)p.len, &keys, &n);
  Py_END_ALLOW_THREADS PyBuffer_Release(&p);
  if (rc != 0)
    return rpy_raise(rc);
  PyObject *l = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; l && i < n; i++) {
    PyObject *b = PyBytes_FromStringAndSize(keys[i].data, (Py_ssize_t)keys[i].len);
    if (!b) {
      Py_CLEAR(l);
      break;
    }
    PyList_SET_ITEM(l, (Py_ssize_t)i, b);
  }
  rayc_kv_keys_free(keys, n);
  return l;
}

static PyObject *m_kv_del(PyObject *self, PyObject *args)
{
  (void)self;
  const char *ns;
  Py_buffer k;
  int by_prefix = 0;
  if (!PyArg_ParseTuple(args, "sy*|p", &ns, &k, &by_prefix))
    return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_kv_del(ns, k.buf, (size_t)k.len, by_prefix);
  Py_END_ALLOW_THREADS PyBuffer_Release(&k);
  if (rc < 0)
    return rpy_raise(rc);
  return PyLong_FromLong(rc);
}

PyMethodDef rpy_kv_methods[] = {
    {"kv_keys", m_kv_keys, METH_VARARGS, "kv_keys(ns, prefix) -> [bytes]"},
    {"kv_del", m_kv_del, METH_VARARGS, "kv_del(ns, key, by_prefix=False) -> deleted"},
    {NULL, NULL, 0, NULL},
};
