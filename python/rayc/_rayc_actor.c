/*
 * rayc._rayc: actors, placement groups and the GCS KV (thin wrappers over rayc.h and
 * rayc_lang.h; ids travel to Python as bytes).
 */
#include "_rayc.h"

#include <stdlib.h>
#include <string.h>

static int id_arg(PyObject *o, void *out, Py_ssize_t size, const char *what)
{
  if (!PyBytes_Check(o) || PyBytes_GET_SIZE(o) != size) {
    PyErr_Format(PyExc_ValueError, "expected %s id (%zd bytes)", what, size);
    return -1;
  }
  memcpy(out, PyBytes_AS_STRING(o), (size_t)size);
  return 0;
}

static int actor_opts_parse(PyObject *d, rayc_actor_opts *o, rayc_resource *res)
{
  rayc_actor_opts_init(o);
  o->language = RAYC_LANG_PYTHON;
  PyObject *v;
#define OPT_INT(key, field)                               \
  if ((v = PyDict_GetItemString(d, key)) && v != Py_None) \
  o->field = (int)PyLong_AsLong(v)
#define OPT_DBL(key, field)                               \
  if ((v = PyDict_GetItemString(d, key)) && v != Py_None) \
  o->field = PyFloat_AsDouble(v)
#define OPT_STR(key, field)                               \
  if ((v = PyDict_GetItemString(d, key)) && v != Py_None) \
  o->field = PyUnicode_AsUTF8(v)
  OPT_STR("name", name);
  OPT_STR("namespace", ns);
  OPT_INT("detached", detached);
  OPT_INT("get_if_exists", get_if_exists);
  OPT_INT("max_restarts", max_restarts);
  OPT_INT("max_task_retries", max_task_retries);
  OPT_INT("max_concurrency", max_concurrency);
  OPT_DBL("num_cpus", num_cpus);
  OPT_DBL("num_gpus", num_gpus);
  OPT_DBL("memory", memory);
  OPT_INT("bundle_index", bundle_index);
  OPT_INT("language", language);
  OPT_INT("share_worker", share_worker);
#undef OPT_INT
#undef OPT_DBL
#undef OPT_STR
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
    o->resources = res;
    o->num_resources = (size_t)i;
  }
  return PyErr_Occurred() ? -1 : 0;
}

/* actor_create(cls, args, opts) -> actor id (bytes) */
static PyObject *m_actor_create(PyObject *self, PyObject *args)
{
  (void)self;
  const char *cls;
  PyObject *alist, *d;
  if (!PyArg_ParseTuple(args, "sOO!", &cls, &alist, &PyDict_Type, &d))
    return NULL;
  rayc_actor_opts o;
  rayc_resource res[5];
  if (actor_opts_parse(d, &o, res) != 0)
    return NULL;
  rayc_arg *a = NULL;
  Py_buffer *views = NULL;
  rayc_ref *refs = NULL;
  size_t n = 0;
  if (rpy_args_from_list(alist, &a, &views, &refs, &n) != 0)
    return NULL;
  rayc_actor out;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_actor_create(cls, a, n, &o, &out);
  Py_END_ALLOW_THREADS rpy_args_release(a, views, refs, n);
  if (rc != 0)
    return rpy_raise(rc);
  return PyBytes_FromStringAndSize((const char *)out.id, RAYC_ACTOR_ID_SIZE);
}

/* actor_call(actor_id, method, args, num_returns, name, streaming) -> [ObjectRef...] */
static PyObject *m_actor_call(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *ido, *alist;
  const char *method, *name = NULL;
  int nret = 1, streaming = 0;
  if (!PyArg_ParseTuple(args, "OsO|izp", &ido, &method, &alist, &nret, &name, &streaming))
    return NULL;
  rayc_actor actor;
  if (id_arg(ido, actor.id, RAYC_ACTOR_ID_SIZE, "an actor") != 0)
    return NULL;
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_returns = nret;
  o.name = name;
  o.streaming = streaming;
  rayc_arg *a = NULL;
  Py_buffer *views = NULL;
  rayc_ref *refs = NULL;
  size_t n = 0;
  if (rpy_args_from_list(alist, &a, &views, &refs, &n) != 0)
    return NULL;
  rayc_ref *out = PyMem_Calloc((size_t)(nret > 0 ? nret : 1), sizeof(rayc_ref));
  int rc = rayc_actor_call(&actor, method, a, n, &o, out);
  rpy_args_release(a, views, refs, n);
  PyObject *res = rc == 0 ? rpy_refs_list(out, (size_t)nret) : rpy_raise(rc);
  PyMem_Free(out);
  return res;
}

static PyObject *m_get_actor(PyObject *self, PyObject *args)
{
  (void)self;
  const char *name, *ns = NULL;
  if (!PyArg_ParseTuple(args, "s|z", &name, &ns))
    return NULL;
  rayc_actor out;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_get_actor(name, ns, &out);
  Py_END_ALLOW_THREADS if (rc == RAYC_ENOT_FOUND) Py_RETURN_NONE;
  if (rc != 0)
    return rpy_raise(rc);
  return PyBytes_FromStringAndSize((const char *)out.id, RAYC_ACTOR_ID_SIZE);
}

static PyObject *m_kill_actor(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *ido;
  int no_restart = 1;
  if (!PyArg_ParseTuple(args, "O|p", &ido, &no_restart))
    return NULL;
  rayc_actor actor;
  if (id_arg(ido, actor.id, RAYC_ACTOR_ID_SIZE, "an actor") != 0)
    return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_actor_kill(&actor, no_restart);
  Py_END_ALLOW_THREADS if (rc != 0) return rpy_raise(rc);
  Py_RETURN_NONE;
}

/* actor_state(actor_id) -> (state, num_restarts, reason) */
static PyObject *m_actor_state(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *ido;
  if (!PyArg_ParseTuple(args, "O", &ido))
    return NULL;
  rayc_actor actor;
  if (id_arg(ido, actor.id, RAYC_ACTOR_ID_SIZE, "an actor") != 0)
    return NULL;
  rayc_actor_state st;
  int restarts = 0, rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_actor_get_state(&actor, &st, &restarts);
  Py_END_ALLOW_THREADS if (rc != 0) return rpy_raise(rc);
  return Py_BuildValue("(iis)", (int)st, restarts, st == RAYC_ACTOR_DEAD ? rayc_last_error() : "");
}

/* pg_create([{name: amount}...], strategy, name) -> pg id (bytes) */
static PyObject *m_pg_create(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *bl;
  int strategy;
  const char *name = NULL;
  if (!PyArg_ParseTuple(args, "O!i|z", &PyList_Type, &bl, &strategy, &name))
    return NULL;
  Py_ssize_t nb = PyList_GET_SIZE(bl);
  rayc_bundle *b = PyMem_Calloc((size_t)nb + 1, sizeof(*b));
  rayc_resource *res = PyMem_Calloc((size_t)nb * 8 + 1, sizeof(*res));
  int rc = 0;
  for (Py_ssize_t i = 0; rc == 0 && i < nb; i++) {
    PyObject *d = PyList_GET_ITEM(bl, i), *k, *v;
    Py_ssize_t pos = 0, j = 0;
    if (!PyDict_Check(d) || PyDict_Size(d) > 8) {
      PyErr_SetString(PyExc_ValueError, "a bundle is a dict of at most 8 resources");
      rc = -1;
      break;
    }
    b[i].resources = &res[i * 8];
    while (PyDict_Next(d, &pos, &k, &v)) {
      res[i * 8 + j].name = PyUnicode_AsUTF8(k);
      res[i * 8 + j++].amount = PyFloat_AsDouble(v);
    }
    b[i].nresources = (size_t)j;
    rc = PyErr_Occurred() ? -1 : 0;
  }
  PyObject *out_o = NULL;
  if (rc == 0) {
    rayc_placement_group pg;
    Py_BEGIN_ALLOW_THREADS rc = rayc_placement_group_create(b, (size_t)nb, strategy, name, &pg);
    Py_END_ALLOW_THREADS out_o = rc == 0 ? PyBytes_FromStringAndSize((const char *)pg.id, RAYC_PG_ID_SIZE)
                                         : rpy_raise(rc);
  }
  PyMem_Free(b);
  PyMem_Free(res);
  return out_o;
}

static PyObject *m_pg_wait(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *ido;
  long long timeout_ms;
  if (!PyArg_ParseTuple(args, "OL", &ido, &timeout_ms))
    return NULL;
  rayc_placement_group pg;
  if (id_arg(ido, pg.id, RAYC_PG_ID_SIZE, "a placement group") != 0)
    return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_placement_group_wait(&pg, (int64_t)timeout_ms);
  Py_END_ALLOW_THREADS if (rc == RAYC_ETIMEOUT) Py_RETURN_FALSE;
  if (rc != 0)
    return rpy_raise(rc);
  Py_RETURN_TRUE;
}

static PyObject *m_pg_remove(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *ido;
  if (!PyArg_ParseTuple(args, "O", &ido))
    return NULL;
  rayc_placement_group pg;
  if (id_arg(ido, pg.id, RAYC_PG_ID_SIZE, "a placement group") != 0)
    return NULL;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_placement_group_remove(&pg);
  Py_END_ALLOW_THREADS if (rc != 0) return rpy_raise(rc);
  Py_RETURN_NONE;
}

static PyObject *m_kv_put(PyObject *self, PyObject *args)
{
  (void)self;
  const char *ns;
  Py_buffer k, v;
  int overwrite = 1, added = 0, rc;
  if (!PyArg_ParseTuple(args, "sy*y*|p", &ns, &k, &v, &overwrite))
    return NULL;
  Py_BEGIN_ALLOW_THREADS rc = rayc_kv_put(ns, k.buf, (size_t)k.len, v.buf, (size_t)v.len, overwrite, &added);
  Py_END_ALLOW_THREADS PyBuffer_Release(&k);
  PyBuffer_Release(&v);
  if (rc != 0)
    return rpy_raise(rc);
  return PyBool_FromLong(added);
}

static PyObject *m_kv_get(PyObject *self, PyObject *args)
{
  (void)self;
  const char *ns;
  Py_buffer k;
  if (!PyArg_ParseTuple(args, "sy*", &ns, &k))
    return NULL;
  void *val = NULL;
  size_t len = 0;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_kv_get(ns, k.buf, (size_t)k.len, &val, &len);
  Py_END_ALLOW_THREADS PyBuffer_Release(&k);
  if (rc == RAYC_ENOT_FOUND)
    Py_RETURN_NONE;
  if (rc != 0)
    return rpy_raise(rc);
  PyObject *res = PyBytes_FromStringAndSize(val, (Py_ssize_t)len);
  free(val);
  return res;
}

static PyObject *res_dict(const rayc_resource *r, size_t n)
{
  PyObject *d = PyDict_New();
  for (size_t i = 0; d && i < n; i++) {
    PyObject *v = PyFloat_FromDouble(r[i].amount);
    if (!v || PyDict_SetItemString(d, r[i].name, v) != 0)
      Py_CLEAR(d);
    Py_XDECREF(v);
  }
  return d;
}

/* nodes() -> [(node_id, ip, hostname, alive, is_head, {total}, {available})] */
static PyObject *m_nodes(PyObject *self, PyObject *unused)
{
  (void)self, (void)unused;
  rayc_node_info *nodes = NULL;
  size_t n = 0;
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_nodes(&nodes, &n);
  Py_END_ALLOW_THREADS if (rc != 0) return rpy_raise(rc);
  PyObject *l = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; l && i < n; i++) {
    PyObject *t = Py_BuildValue("(sssiiNNs)", nodes[i].node_id, nodes[i].ip, nodes[i].hostname, nodes[i].alive,
                                nodes[i].is_head, res_dict(nodes[i].total, nodes[i].ntotal),
                                res_dict(nodes[i].available, nodes[i].navailable), nodes[i].session_dir);
    if (!t)
      Py_CLEAR(l);
    else
      PyList_SET_ITEM(l, (Py_ssize_t)i, t);
  }
  rayc_nodes_free(nodes, n);
  return l;
}

PyMethodDef rpy_actor_methods[] = {
    {"nodes", m_nodes, METH_NOARGS, "nodes() -> [(id, ip, hostname, alive, is_head, total, available)]"},
    {"actor_create", m_actor_create, METH_VARARGS, "actor_create(cls, args, opts) -> id"},
    {"actor_call", m_actor_call, METH_VARARGS, "actor_call(id, method, args, num_returns, name) -> refs"},
    {"get_actor", m_get_actor, METH_VARARGS, "get_actor(name, namespace) -> id or None"},
    {"kill_actor", m_kill_actor, METH_VARARGS, "kill_actor(id, no_restart)"},
    {"actor_state", m_actor_state, METH_VARARGS, "actor_state(id) -> (state, restarts, reason)"},
    {"pg_create", m_pg_create, METH_VARARGS, "pg_create(bundles, strategy, name) -> id"},
    {"pg_wait", m_pg_wait, METH_VARARGS, "pg_wait(id, timeout_ms) -> ready"},
    {"pg_remove", m_pg_remove, METH_VARARGS, "pg_remove(id)"},
    {"kv_put", m_kv_put, METH_VARARGS, "kv_put(ns, key, value, overwrite) -> added"},
    {"kv_get", m_kv_get, METH_VARARGS, "kv_get(ns, key) -> bytes or None"},
    {NULL, NULL, 0, NULL},
};
