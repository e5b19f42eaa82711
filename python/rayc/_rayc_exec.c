/*
 * The worker side of rayc._rayc: worker_main(argv, executor) installs a rayc_executor whose
 * callbacks hand each task, actor creation and actor call to the Python executor object
 * (rayc.worker.Executor), and runs librayc's core worker (rayc_worker_main) with the GIL released.
 *
 * A TaskCtx is the Python face of a running task's rayc_task_ctx: valid only during the callback
 * (its pointer is cleared after), it sets results (set_return: gathered parts written once, into
 * shared memory when large) and failures.
 */
#include "_rayc.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

void rpy_set_connected(int on);

typedef struct {
  PyObject_HEAD rayc_task_ctx *ctx;
} rpy_ctx_t;

enum { RPY_NOGIL_BYTES = 1 << 20 }; /* results this large are copied with the GIL released */

static PyObject *exec_obj;  /* the Python executor (worker processes only) */
static pthread_t exec_main; /* the thread running rayc_worker_main: it runs the tasks */

static rpy_ctx_t *ctx_live(PyObject *self)
{
  rpy_ctx_t *c = (rpy_ctx_t *)self;
  if (!c->ctx)
    PyErr_SetString(PyExc_RuntimeError, "the task this context belonged to has finished");
  return c->ctx ? c : NULL;
}

/* set_return(i, total_len, [(offset, bytes-like)...], [ObjectRef...]): one copy of the parts into
 * the result (split across the core worker's copy threads when large, the GIL released). */
static PyObject *ctx_set_return(PyObject *self, PyObject *args)
{
  rpy_ctx_t *c = ctx_live(self);
  Py_ssize_t i, total, np = 0;
  PyObject *parts_o, *refs_o;
  if (!c || !PyArg_ParseTuple(args, "nnOO!", &i, &total, &parts_o, &PyList_Type, &refs_o))
    return NULL;
  if (i < 0 || total < 0) {
    PyErr_SetString(PyExc_ValueError, "set_return: negative index or length");
    return NULL;
  }
  rayc_part *parts = NULL;
  Py_buffer *views = NULL;
  int rc = rpy_parts_parse(parts_o, &parts, &views, &np);
  if (rc == 0 && total >= RPY_NOGIL_BYTES) {
    Py_BEGIN_ALLOW_THREADS rc = rayc_return_parts(c->ctx, (size_t)i, (size_t)total, parts, (size_t)np);
    Py_END_ALLOW_THREADS
  } else if (rc == 0) {
    rc = rayc_return_parts(c->ctx, (size_t)i, (size_t)total, parts, (size_t)np);
  }
  rpy_parts_release(parts, views, np);
  if (rc != 0)
    return PyErr_Occurred() ? NULL : rpy_raise(rc);
  Py_ssize_t nr = PyList_GET_SIZE(refs_o);
  if (nr == 0)
    Py_RETURN_NONE;
  rayc_ref *refs = PyMem_Calloc((size_t)nr, sizeof(rayc_ref));
  for (Py_ssize_t k = 0; rc == 0 && k < nr; k++)
    rc = rpy_ref_get(PyList_GET_ITEM(refs_o, k), &refs[k]);
  if (rc == 0 && (rc = rayc_return_refs(c->ctx, (size_t)i, refs, (size_t)nr)) != 0)
    rpy_raise(rc);
  PyMem_Free(refs);
  if (rc != 0)
    return NULL;
  Py_RETURN_NONE;
}

/* yield_item(total_len, [(offset, bytes-like)...], [ObjectRef...]): a streaming task's next item,
 * handed to the caller before this returns (the GIL is released meanwhile). */
static PyObject *ctx_yield_item(PyObject *self, PyObject *args)
{
  rpy_ctx_t *c = ctx_live(self);
  Py_ssize_t total;
  PyObject *parts, *refs_o;
  if (!c || !PyArg_ParseTuple(args, "nOO!", &total, &parts, &PyList_Type, &refs_o))
    return NULL;
  PyObject *seq = PySequence_Fast(parts, "parts must be a sequence");
  if (!seq)
    return NULL;
  Py_ssize_t np = PySequence_Fast_GET_SIZE(seq), nr = PyList_GET_SIZE(refs_o), k = 0;
  Py_buffer *views = PyMem_Calloc((size_t)np + 1, sizeof(Py_buffer));
  rayc_part *pv = PyMem_Calloc((size_t)np + 1, sizeof(rayc_part));
  rayc_ref *refs = PyMem_Calloc((size_t)nr + 1, sizeof(rayc_ref));
  int rc = 0, ok = 1;
  for (; ok && k < np; k++) {
    Py_ssize_t off;
    PyObject *data;
    ok = PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "nO", &off, &data) &&
         PyObject_GetBuffer(data, &views[k], PyBUF_SIMPLE) == 0;
    if (ok)
      pv[k] = (rayc_part){.offset = (size_t)off, .data = views[k].buf, .len = (size_t)views[k].len};
  }
  np = ok ? np : k - 1;
  for (Py_ssize_t i = 0; ok && i < nr; i++)
    ok = rpy_ref_get(PyList_GET_ITEM(refs_o, i), &refs[i]) == 0;
  if (ok) {
    Py_BEGIN_ALLOW_THREADS rc = rayc_yield_parts(c->ctx, (size_t)total, pv, (size_t)np, refs, (size_t)nr);
    Py_END_ALLOW_THREADS
  }
  for (Py_ssize_t i = 0; i < np; i++)
    PyBuffer_Release(&views[i]);
  PyMem_Free(views);
  PyMem_Free(pv);
  PyMem_Free(refs);
  Py_DECREF(seq);
  if (!ok)
    return NULL;
  if (rc != 0)
    return rpy_raise(rc);
  Py_RETURN_NONE;
}

static PyObject *ctx_fail(PyObject *self, PyObject *args)
{
  rpy_ctx_t *c = ctx_live(self);
  const char *msg;
  if (!c || !PyArg_ParseTuple(args, "s", &msg))
    return NULL;
  rayc_task_fail(c->ctx, "%s", msg);
  Py_RETURN_NONE;
}

static PyObject *ctx_cancelled(PyObject *self, PyObject *unused)
{
  (void)unused;
  rpy_ctx_t *c = ctx_live(self);
  return c ? PyBool_FromLong(rayc_task_cancelled(c->ctx)) : NULL;
}

static PyObject *ctx_streaming(PyObject *self, PyObject *unused)
{
  (void)unused;
  rpy_ctx_t *c = ctx_live(self);
  return c ? PyBool_FromLong(rayc_task_streaming(c->ctx)) : NULL;
}

static PyObject *ctx_actor_id(PyObject *self, PyObject *unused)
{
  (void)unused;
  rpy_ctx_t *c = ctx_live(self);
  rayc_actor a;
  if (!c)
    return NULL;
  if (rayc_actor_self(c->ctx, &a) != 0)
    Py_RETURN_NONE;
  return PyBytes_FromStringAndSize((const char *)a.id, RAYC_ACTOR_ID_SIZE);
}

static PyObject *ctx_actor_exit(PyObject *self, PyObject *unused)
{
  (void)unused;
  rpy_ctx_t *c = ctx_live(self);
  if (!c)
    return NULL;
  rayc_actor_exit(c->ctx);
  Py_RETURN_NONE;
}

static PyMethodDef ctx_methods[] = {
    {"set_return", ctx_set_return, METH_VARARGS, "set_return(i, total_len, parts, refs)"},
    {"yield_item", ctx_yield_item, METH_VARARGS, "yield_item(total_len, parts, refs): a streaming task's item"},
    {"fail", ctx_fail, METH_VARARGS, "Fails the task with a message."},
    {"cancelled", ctx_cancelled, METH_NOARGS, "Whether the task was cancelled."},
    {"streaming", ctx_streaming, METH_NOARGS, "Whether the task is a streaming generator."},
    {"actor_id", ctx_actor_id, METH_NOARGS, "The running actor's id, or None."},
    {"actor_exit", ctx_actor_exit, METH_NOARGS, "The actor exits after this call."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject rpy_ctx_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rayc._rayc.TaskCtx",
    .tp_basicsize = sizeof(rpy_ctx_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A running task's context (valid during the task).",
    .tp_methods = ctx_methods,
};

/* ---- the executor ---- */

/* Takes the GIL on a core worker thread. A thread's first call creates its Python thread state and
 * keeps it (one PyGILState_Ensure never released), so later calls only switch the GIL instead of
 * creating and destroying a thread state per call (an actor's calls run on the actor's threads). */
static __thread int gil_kept;

static PyGILState_STATE gil_enter(void)
{
  if (!gil_kept) {
    (void)PyGILState_Ensure();
    gil_kept = 1;
    (void)PyEval_SaveThread();
  }
  return PyGILState_Ensure();
}

/* The task's arguments as [(Buffer, [ObjectRef])]: each Buffer a rayc_buf_dup of the argument, so
 * zero-copy views (numpy arrays in the store) stay valid after the task. */
static PyObject *exec_args(const rayc_buf *args, size_t nargs)
{
  rayc_buf *dups = PyMem_Calloc(nargs + 1, sizeof(rayc_buf));
  size_t i = 0;
  for (; i < nargs; i++) {
    if (rayc_buf_dup(&args[i], &dups[i]) != 0)
      break;
    dups[i].refs = args[i].refs; /* retained by rpy_bufs_to_list, then cleared below */
    dups[i].nrefs = args[i].nrefs;
  }
  if (i < nargs) {
    for (size_t j = 0; j < i; j++)
      dups[j].refs = NULL, dups[j].nrefs = 0;
    rayc_buf_release(dups, i);
    PyMem_Free(dups);
    return rpy_raise(RAYC_EINTERNAL);
  }
  PyObject *l = rpy_bufs_to_list(dups, nargs);
  PyMem_Free(dups);
  if (!l)
    return NULL;
  for (Py_ssize_t k = 0; k < PyList_GET_SIZE(l); k++) { /* the dups own no refs: forget them */
    rpy_buffer_t *b = (rpy_buffer_t *)PyTuple_GET_ITEM(PyList_GET_ITEM(l, k), 0);
    b->buf.refs = NULL;
    b->buf.nrefs = 0;
  }
  return l;
}

/* Calls executor.<method>(ctx, *rest) under the GIL; a Python error escaping it fails the task. */
static PyObject *exec_call(rayc_task_ctx *ctx, const char *method, PyObject *rest, int *rc)
{
  rpy_ctx_t *c = PyObject_New(rpy_ctx_t, &rpy_ctx_type);
  PyObject *res = NULL;
  *rc = 0;
  if (c && rest) {
    c->ctx = ctx;
    PyObject *f = PyObject_GetAttrString(exec_obj, method);
    PyObject *head = f ? PyTuple_Pack(1, (PyObject *)c) : NULL;
    PyObject *full = head ? PySequence_Concat(head, rest) : NULL;
    res = full ? PyObject_CallObject(f, full) : NULL;
    Py_XDECREF(head);
    Py_XDECREF(full);
    Py_XDECREF(f);
    c->ctx = NULL;
  }
  Py_XDECREF(c);
  Py_XDECREF(rest);
  if (!res) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyObject *s = v ? PyObject_Str(v) : NULL;
    *rc = rayc_task_fail(ctx, "the Python executor failed: %s", s ? PyUnicode_AsUTF8(s) : "unknown error");
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(t), Py_XDECREF(v), Py_XDECREF(tb);
  }
  return res;
}

/* The executor's return value: None (results set), or a str (the task failed with it). */
static int exec_result(rayc_task_ctx *ctx, PyObject *res, int rc)
{
  if (rc == 0 && res && PyUnicode_Check(res))
    rc = rayc_task_fail(ctx, "%s", PyUnicode_AsUTF8(res));
  Py_XDECREF(res);
  return rc;
}

static int ex_task(void *data, rayc_task_ctx *ctx, const char *fn, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)data;
  PyGILState_STATE g = gil_enter();
  int rc;
  PyObject *a = exec_args(args, nargs);
  PyObject *res = exec_call(ctx, "task", a ? Py_BuildValue("(sNn)", fn, a, (Py_ssize_t)nrets) : NULL, &rc);
  rc = exec_result(ctx, res, rc);
  PyGILState_Release(g);
  return rc;
}

static void *ex_actor_create(void *data, rayc_task_ctx *ctx, const char *cls, const rayc_buf *args, size_t nargs)
{
  (void)data;
  PyGILState_STATE g = gil_enter();
  int rc;
  PyObject *a = exec_args(args, nargs);
  PyObject *res = exec_call(ctx, "actor_create", a ? Py_BuildValue("(sN)", cls, a) : NULL, &rc);
  if (res && PyUnicode_Check(res)) { /* the constructor failed: the message */
    rayc_task_fail(ctx, "%s", PyUnicode_AsUTF8(res));
    Py_CLEAR(res);
  }
  PyGILState_Release(g);
  return res; /* the instance holder: a new reference, released by ex_actor_destroy */
}

static int ex_actor_method(void *data, rayc_task_ctx *ctx, void *self, const char *method, const rayc_buf *args,
                           size_t nargs, size_t nrets)
{
  (void)data;
  PyGILState_STATE g = gil_enter();
  int rc;
  PyObject *a = exec_args(args, nargs);
  PyObject *res = exec_call(ctx, "actor_method",
                            a ? Py_BuildValue("(OsNn)", (PyObject *)self, method, a, (Py_ssize_t)nrets) : NULL, &rc);
  rc = exec_result(ctx, res, rc);
  PyGILState_Release(g);
  return rc;
}

/* A running task is cancelled: SIGUSR1 to the main thread, whose Python handler raises
 * KeyboardInterrupt in the task (it interrupts a sleep too), as Ray's cancel does. */
static void ex_cancel(void *data, rayc_task_ctx *ctx)
{
  (void)data, (void)ctx;
  pthread_kill(exec_main, SIGUSR1);
}

static void ex_actor_destroy(void *data, void *self)
{
  (void)data;
  PyGILState_STATE g = gil_enter();
  PyObject *r = PyObject_CallMethod(exec_obj, "actor_destroy", "O", (PyObject *)self);
  if (!r)
    PyErr_Clear();
  Py_XDECREF(r);
  Py_DECREF((PyObject *)self);
  PyGILState_Release(g);
}

/* worker_main([argv...], executor) -> exit status */
static PyObject *m_worker_main(PyObject *self, PyObject *args)
{
  (void)self;
  PyObject *argv_o, *ex;
  if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &argv_o, &ex))
    return NULL;
  Py_ssize_t argc = PyList_GET_SIZE(argv_o);
  char **argv = PyMem_Calloc((size_t)argc + 1, sizeof(char *));
  for (Py_ssize_t i = 0; i < argc; i++) {
    const char *s = PyUnicode_AsUTF8(PyList_GET_ITEM(argv_o, i));
    if (!s) {
      PyMem_Free(argv);
      return NULL;
    }
    argv[i] = (char *)s;
  }
  Py_INCREF(ex);
  exec_obj = ex;
  rayc_executor e = {.task = ex_task,
                     .actor_create = ex_actor_create,
                     .actor_method = ex_actor_method,
                     .actor_destroy = ex_actor_destroy,
                     .cancel = ex_cancel};
  exec_main = pthread_self();
  rayc_executor_set(&e);
  rpy_set_connected(1);
  int rc;
  Py_BEGIN_ALLOW_THREADS rc = rayc_worker_main((int)argc, argv);
  Py_END_ALLOW_THREADS rpy_set_connected(0);
  PyMem_Free(argv);
  return PyLong_FromLong(rc);
}

PyMethodDef rpy_exec_methods[] = {
    {"worker_main", m_worker_main, METH_VARARGS, "worker_main(argv, executor): runs this process as a worker."},
    {NULL, NULL, 0, NULL},
};

int rpy_exec_init(PyObject *m)
{
  if (PyType_Ready(&rpy_ctx_type) < 0)
    return -1;
  Py_INCREF(&rpy_ctx_type);
  return PyModule_AddObject(m, "TaskCtx", (PyObject *)&rpy_ctx_type);
}
