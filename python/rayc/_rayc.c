/*
 * rayc._rayc: the module, the ObjectRef base type and the Buffer type, and the driver-side calls
 * (init, shutdown, put, get, wait, submit, cancel). See _rayc.h.
 */
#include "_rayc.h"

#include <stdint.h>
#include <string.h>

PyObject *rpy_error;
unsigned rpy_gen = 1;
static int rpy_connected;
static PyTypeObject *rpy_ref_class = &rpy_ref_base_type; /* set_ref_class: rayc.ObjectRef */

PyObject *rpy_raise(int code)
{
  PyObject *args = Py_BuildValue("(iss)", code, rayc_err_name(code), rayc_last_error());
  if (args) {
    PyErr_SetObject(rpy_error, args);
    Py_DECREF(args);
  }
  return NULL;
}

/* ---- ObjectRef ---- */

PyObject *rpy_ref_new(const rayc_ref *r, int held, int retain)
{
  rpy_ref_t *o = (rpy_ref_t *)rpy_ref_class->tp_alloc(rpy_ref_class, 0);
  if (!o)
    return NULL;
  o->ref = *r;
  o->gen = rpy_gen;
  if (retain)
    rayc_ref_retain(r);
  o->held = held || retain;
  return (PyObject *)o;
}

int rpy_ref_get(PyObject *o, rayc_ref *out)
{
  if (!PyObject_TypeCheck(o, &rpy_ref_base_type)) {
    PyErr_Format(PyExc_TypeError, "expected an ObjectRef, got %.100s", Py_TYPE(o)->tp_name);
    return -1;
  }
  *out = ((rpy_ref_t *)o)->ref;
  return 0;
}

PyObject *rpy_refs_list(const rayc_ref *refs, size_t n)
{
  PyObject *l = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; l && i < n; i++) {
    PyObject *r = rpy_ref_new(&refs[i], 1, 0);
    if (!r) {
      for (size_t j = i + 1; j < n; j++)
        rayc_ref_release(&refs[j]);
      Py_DECREF(l);
      return NULL;
    }
    PyList_SET_ITEM(l, (Py_ssize_t)i, r);
  }
  return l;
}

static void ref_dealloc(PyObject *self)
{
  rpy_ref_t *o = (rpy_ref_t *)self;
  if (o->held && o->gen == rpy_gen && rpy_connected)
    rayc_ref_release(&o->ref);
  Py_TYPE(self)->tp_free(self);
}

static PyObject *ref_hex(PyObject *self, PyObject *unused)
{
  (void)unused;
  char hex[RAYC_REF_HEX_LEN];
  return PyUnicode_FromString(rayc_ref_hex(&((rpy_ref_t *)self)->ref, hex));
}

static PyObject *ref_binary(PyObject *self, PyObject *unused)
{
  (void)unused;
  return PyBytes_FromStringAndSize((const char *)((rpy_ref_t *)self)->ref.id, RAYC_OBJECT_ID_SIZE);
}

static Py_hash_t ref_hash(PyObject *self)
{
  Py_hash_t h;
  memcpy(&h, ((rpy_ref_t *)self)->ref.id + 4, sizeof(h));
  return h == -1 ? -2 : h;
}

static PyObject *ref_richcompare(PyObject *a, PyObject *b, int op)
{
  if (!PyObject_TypeCheck(b, &rpy_ref_base_type) || (op != Py_EQ && op != Py_NE))
    Py_RETURN_NOTIMPLEMENTED;
  int eq = memcmp(((rpy_ref_t *)a)->ref.id, ((rpy_ref_t *)b)->ref.id, RAYC_OBJECT_ID_SIZE) == 0;
  return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyMethodDef ref_methods[] = {
    {"hex", ref_hex, METH_NOARGS, "The object id in hex."},
    {"binary", ref_binary, METH_NOARGS, "The object id as bytes."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject rpy_ref_base_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rayc._rayc.ObjectRefBase",
    .tp_basicsize = sizeof(rpy_ref_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A reference to an object in the cluster (base of rayc.ObjectRef).",
    .tp_dealloc = ref_dealloc,
    .tp_hash = ref_hash,
    .tp_richcompare = ref_richcompare,
    .tp_methods = ref_methods,
};

/* ---- Buffer ---- */

PyObject *rpy_buffer_new(rayc_buf *b)
{
  rpy_buffer_t *o = PyObject_New(rpy_buffer_t, &rpy_buffer_type);
  if (!o) {
    rayc_buf_release(b, 1);
    return NULL;
  }
  o->buf = *b;
  o->gen = rpy_gen;
  *b = (rayc_buf){0};
  return (PyObject *)o;
}

static void buffer_dealloc(PyObject *self)
{
  rpy_buffer_t *o = (rpy_buffer_t *)self;
  if (o->gen == rpy_gen && rpy_connected)
    rayc_buf_release(&o->buf, 1);
  PyObject_Free(self);
}

static int buffer_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
  rpy_buffer_t *o = (rpy_buffer_t *)self;
  if (flags & PyBUF_WRITABLE) {
    PyErr_SetString(PyExc_BufferError, "rayc objects are immutable: the buffer is read-only");
    return -1;
  }
  return PyBuffer_FillInfo(view, self, (void *)o->buf.data, (Py_ssize_t)o->buf.len, 1, flags);
}

static PyBufferProcs buffer_procs = {.bf_getbuffer = buffer_getbuffer};

static PyObject *buffer_address(PyObject *self, void *unused)
{
  (void)unused;
  return PyLong_FromSize_t((size_t)(uintptr_t)((rpy_buffer_t *)self)->buf.data);
}

static Py_ssize_t buffer_len(PyObject *self)
{
  return (Py_ssize_t)((rpy_buffer_t *)self)->buf.len;
}

static PyGetSetDef buffer_getset[] = {
    {"address", buffer_address, NULL, "Where the bytes are in this process's memory.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods buffer_seq = {.sq_length = buffer_len};

PyTypeObject rpy_buffer_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rayc._rayc.Buffer",
    .tp_basicsize = sizeof(rpy_buffer_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Read-only bytes of a rayc object (shared memory for large objects).",
    .tp_dealloc = buffer_dealloc,
    .tp_as_buffer = &buffer_procs,
    .tp_as_sequence = &buffer_seq,
    .tp_getset = buffer_getset,
};

PyObject *rpy_bufs_to_list(rayc_buf *bufs, size_t n)
{
  PyObject *l = PyList_New((Py_ssize_t)n);
  size_t i = 0;
  for (; l && i < n; i++) {
    PyObject *refs = PyList_New((Py_ssize_t)bufs[i].nrefs);
    for (size_t k = 0; refs && k < bufs[i].nrefs; k++) {
      PyObject *r = rpy_ref_new(&bufs[i].refs[k], 1, 1);
      if (!r)
        Py_CLEAR(refs);
      else
        PyList_SET_ITEM(refs, (Py_ssize_t)k, r);
    }
    PyObject *b = refs ? rpy_buffer_new(&bufs[i]) : NULL;
    PyObject *t = b ? PyTuple_Pack(2, b, refs) : NULL;
    Py_XDECREF(b);
    Py_XDECREF(refs);
    if (!t) {
      Py_CLEAR(l);
      break;
    }
    PyList_SET_ITEM(l, (Py_ssize_t)i, t);
  }
  for (; i < n; i++)
    rayc_buf_release(&bufs[i], 1);
  return l;
}

/* ---- arguments ---- */

void rpy_args_release(rayc_arg *args, Py_buffer *views, rayc_ref *refs, size_t n)
{
  for (size_t i = 0; views && i < n; i++)
    if (views[i].obj)
      PyBuffer_Release(&views[i]);
  PyMem_Free(args);
  PyMem_Free(views);
  PyMem_Free(refs);
}

/* Counts the refs of every by-value argument, so one array holds them all. */
static Py_ssize_t args_count_refs(PyObject *seq, Py_ssize_t n)
{
  Py_ssize_t total = 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *a = PySequence_Fast_GET_ITEM(seq, i);
    if (PyTuple_Check(a) && PyTuple_GET_SIZE(a) == 2 && PyList_Check(PyTuple_GET_ITEM(a, 1)))
      total += PyList_GET_SIZE(PyTuple_GET_ITEM(a, 1));
  }
  return total;
}

static int args_one(PyObject *a, rayc_arg *arg, Py_buffer *view, rayc_ref *refs, Py_ssize_t *nref)
{
  if (PyObject_TypeCheck(a, &rpy_ref_base_type)) {
    refs[*nref] = ((rpy_ref_t *)a)->ref;
    *arg = RAYC_ARG_REF(&refs[(*nref)++]);
    return 0;
  }
  if (!PyTuple_Check(a) || PyTuple_GET_SIZE(a) != 2 || !PyList_Check(PyTuple_GET_ITEM(a, 1))) {
    PyErr_SetString(PyExc_TypeError, "an argument is an ObjectRef or (bytes-like, [ObjectRef])");
    return -1;
  }
  if (PyObject_GetBuffer(PyTuple_GET_ITEM(a, 0), view, PyBUF_SIMPLE) != 0)
    return -1;
  PyObject *rl = PyTuple_GET_ITEM(a, 1);
  Py_ssize_t first = *nref;
  for (Py_ssize_t k = 0; k < PyList_GET_SIZE(rl); k++)
    if (rpy_ref_get(PyList_GET_ITEM(rl, k), &refs[(*nref)++]) != 0)
      return -1;
  *arg = RAYC_ARG_VAL_REFS(view->buf, (size_t)view->len, &refs[first], (size_t)(*nref - first));
  if (*nref == first)
    arg->refs = NULL;
  return 0;
}

int rpy_args_from_list(PyObject *list, rayc_arg **args, Py_buffer **views, rayc_ref **refs, size_t *n)
{
  PyObject *seq = PySequence_Fast(list, "arguments must be a sequence");
  if (!seq)
    return -1;
  Py_ssize_t na = PySequence_Fast_GET_SIZE(seq), nr = args_count_refs(seq, na) + na, used = 0;
  *args = PyMem_Calloc((size_t)na + 1, sizeof(rayc_arg));
  *views = PyMem_Calloc((size_t)na + 1, sizeof(Py_buffer));
  *refs = PyMem_Calloc((size_t)nr + 1, sizeof(rayc_ref));
  *n = (size_t)na;
  int rc = *args && *views && *refs ? 0 : (PyErr_NoMemory(), -1);
  for (Py_ssize_t i = 0; rc == 0 && i < na; i++)
    rc = args_one(PySequence_Fast_GET_ITEM(seq, i), &(*args)[i], &(*views)[i], *refs, &used);
  Py_DECREF(seq);
  if (rc != 0) {
    rpy_args_release(*args, *views, *refs, *n);
    *args = NULL, *views = NULL, *refs = NULL;
  }
  return rc;
}

/* ---- driver calls ---- */

static PyObject *m_init(PyObject *self, PyObject *args, PyObject *kw)
{
  (void)self;
  static char *names[] = {(char *)"address", (char *)"code_path", (char *)"temp_dir", (char *)"num_cpus", NULL};
  const char *address = NULL, *code_path = NULL, *temp_dir = NULL;
  double num_cpus = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|zzzd", names, &address, &code_path, &temp_dir, &num_cpus))
    return NULL;
  rayc_config cfg = {.address = address,
                     .code_path = code_path,
                     .temp_dir = temp_dir,
                     .num_cpus = num_cpus,
                     .language = RAYC_LANG_PYTHON};
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_init(&cfg);
  Py_END_ALLOW_THREADS if (rc != 0) return rpy_raise(rc);
  rpy_connected = 1;
  Py_RETURN_NONE;
}

static PyObject *m_shutdown(PyObject *self, PyObject *unused)
{
  (void)self, (void)unused;
  Py_BEGIN_ALLOW_THREADS rayc_shutdown();
  Py_END_ALLOW_THREADS rpy_connected = 0;
  rpy_gen++;
  Py_RETURN_NONE;
}

static int parts_parse(PyObject *parts, rayc_part **out, Py_buffer **views, Py_ssize_t *n)
{
  PyObject *seq = PySequence_Fast(parts, "parts must be a sequence of (offset, bytes-like)");
  if (!seq)
    return -1;
  *n = PySequence_Fast_GET_SIZE(seq);
  *out = PyMem_Calloc((size_t)*n + 1, sizeof(rayc_part));
  *views = PyMem_Calloc((size_t)*n + 1, sizeof(Py_buffer));
  int rc = 0;
  for (Py_ssize_t i = 0; rc == 0 && i < *n; i++) {
    Py_ssize_t off;
    PyObject *data;
    rc = PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "nO", &off, &data) ? 0 : -1;
    if (rc == 0)
      rc = PyObject_GetBuffer(data, &(*views)[i], PyBUF_SIMPLE);
    if (rc == 0)
      (*out)[i] = (rayc_part){.offset = (size_t)off, .data = (*views)[i].buf, .len = (size_t)(*views)[i].len};
  }
  Py_DECREF(seq);
  return rc;
}

static void parts_release(rayc_part *parts, Py_buffer *views, Py_ssize_t n)
{
  for (Py_ssize_t i = 0; views && i < n; i++)
    if (views[i].obj)
      PyBuffer_Release(&views[i]);
  PyMem_Free(parts);
  PyMem_Free(views);
}

/* put(total_len, [(offset, bytes-like)...], [ObjectRef...]) -> ObjectRef */
static PyObject *m_put(PyObject *self, PyObject *args)
{
  (void)self;
  Py_ssize_t total;
  PyObject *parts_o, *refs_o;
  if (!PyArg_ParseTuple(args, "nOO!", &total, &parts_o, &PyList_Type, &refs_o))
    return NULL;
  rayc_part *parts = NULL;
  Py_buffer *views = NULL;
  Py_ssize_t np = 0, nr = PyList_GET_SIZE(refs_o);
  rayc_ref *refs = PyMem_Calloc((size_t)nr + 1, sizeof(rayc_ref));
  int rc = parts_parse(parts_o, &parts, &views, &np);
  for (Py_ssize_t i = 0; rc == 0 && i < nr; i++)
    rc = rpy_ref_get(PyList_GET_ITEM(refs_o, i), &refs[i]);
  PyObject *res = NULL;
  if (rc == 0) {
    rayc_ref out;
    Py_BEGIN_ALLOW_THREADS rc = rayc_put_parts((size_t)total, parts, (size_t)np, refs, (size_t)nr, &out);
    Py_END_ALLOW_THREADS res = rc == 0 ? rpy_ref_new(&out, 1, 0) : rpy_raise(rc);
  }
  parts_release(parts, views, np);
  PyMem_Free(refs);
  return res;
}

static int refs_from_seq(PyObject *o, rayc_ref **out, Py_ssize_t *n)
{
  PyObject *seq = PySequence_Fast(o, "expected a list of ObjectRefs");
  if (!seq)
    return -1;
  *n = PySequence_Fast_GET_SIZE(seq);
  *out = PyMem_Calloc((size_t)*n + 1, sizeof(rayc_ref));
  int rc = 0;
  for (Py_ssize_t i = 0; rc == 0 && i < *n; i++)
    rc = rpy_ref_get(PySequence_Fast_GET_ITEM(seq, i), &(*out)[i]);
  Py_DECREF(seq);
  return rc;
}

/* get([ObjectRef...], timeout_ms) -> [(Buffer, [ObjectRef...]), ...] */
static PyObject *m_get(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *lst;
  long long timeout_ms;
  if (!PyArg_ParseTuple(args, "OL", &lst, &timeout_ms))
    return NULL;
  rayc_ref *refs = NULL;
  Py_ssize_t n = 0;
  if (refs_from_seq(lst, &refs, &n) != 0) {
    PyMem_Free(refs);
    return NULL;
  }
  rayc_buf *bufs = PyMem_Calloc((size_t)n + 1, sizeof(rayc_buf));
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_get(refs, (size_t)n, (int64_t)timeout_ms, bufs);
  Py_END_ALLOW_THREADS PyMem_Free(refs);
  PyObject *res = rc == 0 ? rpy_bufs_to_list(bufs, (size_t)n) : rpy_raise(rc);
  PyMem_Free(bufs);
  return res;
}

/* wait([ObjectRef...], k, timeout_ms) -> [bool...] */
static PyObject *m_wait(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *lst;
  Py_ssize_t k;
  long long timeout_ms;
  if (!PyArg_ParseTuple(args, "OnL", &lst, &k, &timeout_ms))
    return NULL;
  rayc_ref *refs = NULL;
  Py_ssize_t n = 0;
  if (refs_from_seq(lst, &refs, &n) != 0) {
    PyMem_Free(refs);
    return NULL;
  }
  int *ready = PyMem_Calloc((size_t)n + 1, sizeof(int));
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_wait(refs, (size_t)n, (size_t)k, (int64_t)timeout_ms, ready);
  Py_END_ALLOW_THREADS PyObject *res = NULL;
  if (rc < 0 && rc != RAYC_ETIMEOUT) {
    rpy_raise(rc);
  } else {
    res = PyList_New(n);
    for (Py_ssize_t i = 0; res && i < n; i++)
      PyList_SET_ITEM(res, i, PyBool_FromLong(ready[i]));
  }
  PyMem_Free(refs);
  PyMem_Free(ready);
  return res;
}

/* Reads the task options dict (missing keys keep rayc_task_opts_init's defaults). */
static int opts_parse(PyObject *d, rayc_task_opts *o, rayc_resource *res, PyObject **keep)
{
  rayc_task_opts_init(o);
  o->language = RAYC_LANG_PYTHON;
  if (!d || d == Py_None)
    return 0;
  PyObject *v;
#define OPT_INT(key, field)                               \
  if ((v = PyDict_GetItemString(d, key)) && v != Py_None) \
  o->field = (int)PyLong_AsLong(v)
#define OPT_DBL(key, field)                               \
  if ((v = PyDict_GetItemString(d, key)) && v != Py_None) \
  o->field = PyFloat_AsDouble(v)
  OPT_INT("num_returns", num_returns);
  OPT_DBL("num_cpus", num_cpus);
  OPT_DBL("num_gpus", num_gpus);
  OPT_DBL("memory", memory);
  OPT_INT("max_retries", max_retries);
  OPT_INT("retry_exceptions", retry_exceptions);
  OPT_INT("strategy", strategy);
  OPT_INT("node_affinity_soft", node_affinity_soft);
  OPT_INT("bundle_index", bundle_index);
  OPT_INT("language", language);
  OPT_INT("streaming", streaming);
#undef OPT_INT
#undef OPT_DBL
  if ((v = PyDict_GetItemString(d, "name")) && v != Py_None)
    o->name = PyUnicode_AsUTF8(v);
  if ((v = PyDict_GetItemString(d, "node_affinity")) && v != Py_None)
    o->node_affinity = PyUnicode_AsUTF8(v);
  if ((v = PyDict_GetItemString(d, "placement_group")) && v != Py_None) {
    if (!PyBytes_Check(v) || PyBytes_GET_SIZE(v) != RAYC_PG_ID_SIZE) {
      PyErr_SetString(PyExc_ValueError, "placement_group must be a placement group id");
      return -1;
    }
    o->placement_group = (const rayc_placement_group *)PyBytes_AS_STRING(v);
  }
  if ((v = PyDict_GetItemString(d, "resources")) && v != Py_None && PyDict_Check(v)) {
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *val;
    while (i < 5 && PyDict_Next(v, &pos, &key, &val)) {
      res[i].name = PyUnicode_AsUTF8(key);
      res[i++].amount = PyFloat_AsDouble(val);
    }
    if (PyDict_Size(v) > 5) {
      PyErr_SetString(PyExc_ValueError, "at most 5 custom resources");
      return -1;
    }
    o->resources = res;
    o->nresources = (size_t)i;
  }
  *keep = d;
  return PyErr_Occurred() ? -1 : 0;
}

/* submit(fn, [args], opts) -> [ObjectRef...] */
static PyObject *m_submit(PyObject *self, PyObject *args)
{
  (void)self;
  const char *fn;
  PyObject *alist, *opts_d = NULL, *keep = NULL;
  if (!PyArg_ParseTuple(args, "sO|O", &fn, &alist, &opts_d))
    return NULL;
  rayc_task_opts o;
  rayc_resource res[5];
  if (opts_parse(opts_d, &o, res, &keep) != 0)
    return NULL;
  rayc_arg *a = NULL;
  Py_buffer *views = NULL;
  rayc_ref *refs = NULL;
  size_t n = 0;
  if (rpy_args_from_list(alist, &a, &views, &refs, &n) != 0)
    return NULL;
  rayc_ref *out = PyMem_Calloc((size_t)(o.num_returns > 0 ? o.num_returns : 1), sizeof(rayc_ref));
  int rc = rayc_remote(fn, a, n, &o, out);
  rpy_args_release(a, views, refs, n);
  PyObject *res_l = rc == 0 ? rpy_refs_list(out, (size_t)o.num_returns) : rpy_raise(rc);
  PyMem_Free(out);
  return res_l;
}

static PyObject *m_cancel(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *r;
  int force = 0, recursive = 1;
  if (!PyArg_ParseTuple(args, "O|pp", &r, &force, &recursive))
    return NULL;
  rayc_ref ref;
  if (rpy_ref_get(r, &ref) != 0)
    return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_cancel(&ref, force, recursive);
  Py_END_ALLOW_THREADS if (rc != 0) return rpy_raise(rc);
  Py_RETURN_NONE;
}

static PyObject *m_set_ref_class(PyObject *self, PyObject *cls)
{
  (void)self;
  if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &rpy_ref_base_type)) {
    PyErr_SetString(PyExc_TypeError, "expected a subclass of ObjectRefBase");
    return NULL;
  }
  Py_INCREF(cls);
  rpy_ref_class = (PyTypeObject *)cls;
  Py_RETURN_NONE;
}

static PyObject *m_ref_from_binary(PyObject *self, PyObject *args)
{
  (void)self;
  Py_buffer b;
  if (!PyArg_ParseTuple(args, "y*", &b))
    return NULL;
  if (b.len != RAYC_OBJECT_ID_SIZE) {
    PyBuffer_Release(&b);
    PyErr_SetString(PyExc_ValueError, "an object id is 28 bytes");
    return NULL;
  }
  rayc_ref r;
  memcpy(r.id, b.buf, RAYC_OBJECT_ID_SIZE);
  PyBuffer_Release(&b);
  return rpy_ref_new(&r, 0, 0);
}

static PyObject *m_context(PyObject *self, PyObject *unused)
{
  (void)self, (void)unused;
  char task[RAYC_TASK_ID_HEX_LEN], job[RAYC_JOB_ID_HEX_LEN], worker[RAYC_WORKER_ID_HEX_LEN], node[RAYC_NODE_ID_HEX_LEN];
  int rc = rayc_context_ids(task, job, worker);
  if (rc == 0)
    rc = rayc_node_id(node);
  if (rc != 0)
    return rpy_raise(rc);
  return Py_BuildValue("(ssss)", task, job, worker, node);
}

static PyObject *m_version(PyObject *self, PyObject *unused)
{
  (void)self, (void)unused;
  return PyUnicode_FromString(rayc_version(NULL));
}

static PyObject *m_connected(PyObject *self, PyObject *unused)
{
  (void)self, (void)unused;
  return PyBool_FromLong(rpy_connected);
}

/* Marks the module connected (a worker: rayc_worker_main connects it). */
void rpy_set_connected(int on);
void rpy_set_connected(int on)
{
  rpy_connected = on;
}

static PyMethodDef module_methods[] = {
    {"init", (PyCFunction)(void (*)(void))m_init, METH_VARARGS | METH_KEYWORDS, "Connects (rayc_init)."},
    {"shutdown", m_shutdown, METH_NOARGS, "Disconnects (rayc_shutdown)."},
    {"connected", m_connected, METH_NOARGS, "Whether this process is connected."},
    {"put", m_put, METH_VARARGS, "put(total_len, parts, refs) -> ObjectRef"},
    {"get", m_get, METH_VARARGS, "get(refs, timeout_ms) -> [(Buffer, refs)]"},
    {"wait", m_wait, METH_VARARGS, "wait(refs, k, timeout_ms) -> [bool]"},
    {"submit", m_submit, METH_VARARGS, "submit(fn, args, opts) -> [ObjectRef]"},
    {"cancel", m_cancel, METH_VARARGS, "cancel(ref, force, recursive)"},
    {"set_ref_class", m_set_ref_class, METH_O, "Sets the class of new ObjectRefs."},
    {"ref_from_binary", m_ref_from_binary, METH_VARARGS, "An unheld ObjectRef from an id."},
    {"context", m_context, METH_NOARGS, "(task, job, worker, node) ids in hex."},
    {"version", m_version, METH_NOARGS, "librayc's version."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "rayc._rayc",      .m_doc = "rayc's core, over librayc.",
    .m_size = -1,          .m_methods = module_methods,
};

static int add_methods(PyObject *m, PyMethodDef *defs)
{
  for (PyMethodDef *d = defs; d->ml_name; d++) {
    PyObject *f = PyCFunction_NewEx(d, NULL, PyModule_GetNameObject(m));
    if (!f || PyModule_AddObject(m, d->ml_name, f) != 0)
      return -1;
  }
  return 0;
}

PyMODINIT_FUNC PyInit__rayc(void);
PyMODINIT_FUNC PyInit__rayc(void)
{
  if (PyType_Ready(&rpy_ref_base_type) < 0 || PyType_Ready(&rpy_buffer_type) < 0)
    return NULL;
  PyObject *m = PyModule_Create(&module_def);
  if (!m)
    return NULL;
  rpy_error = PyErr_NewException("rayc._rayc.Error", NULL, NULL);
  Py_INCREF(&rpy_ref_base_type);
  Py_INCREF(&rpy_buffer_type);
  if (!rpy_error || PyModule_AddObject(m, "Error", rpy_error) != 0 ||
      PyModule_AddObject(m, "ObjectRefBase", (PyObject *)&rpy_ref_base_type) != 0 ||
      PyModule_AddObject(m, "Buffer", (PyObject *)&rpy_buffer_type) != 0 || add_methods(m, rpy_exec_methods) != 0 ||
      add_methods(m, rpy_actor_methods) != 0 || add_methods(m, rpy_stream_methods) != 0 ||
      add_methods(m, rpy_kv_methods) != 0 || rpy_exec_init(m) != 0) {
    Py_DECREF(m);
    return NULL;
  }
  Py_INCREF(rpy_error);
  return m;
}
