"""The driver's side of rayc's Python API: connecting, ObjectRefs, put/get/wait, remote functions,
exporting functions and classes to the GCS KV, and turning core errors into Ray's exceptions.
"""
import asyncio
import base64
import concurrent.futures
import hashlib
import os
import pickle
import re
import threading
import traceback

import cloudpickle

from . import _rayc, _serial, exceptions

INLINE_MAX = 100 * 1024      # values up to this size travel inside the task spec
FN_NAMESPACE = "rayc_fn"     # GCS KV namespace of exported functions and classes
ERROR_MARK = "\n--rayc-python-error:"  # in a failed task's message: the pickled exception follows

LANG_PYTHON = 1
LANG_C = 0


class ObjectRef(_rayc.ObjectRefBase):
    """A reference to an object in the cluster (a future); awaitable in asyncio code."""

    def __repr__(self):
        return f"ObjectRef({self.hex()})"

    def future(self):
        """A concurrent.futures.Future of the value."""
        fut = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(get(self))
            except BaseException as e:  # noqa: B902 - delivered to the future
                fut.set_exception(e)
        threading.Thread(target=run, daemon=True).start()
        return fut

    def as_future(self):
        return asyncio.wrap_future(self.future())

    def __await__(self):
        return self.as_future().__await__()

    def __reduce__(self):
        raise TypeError("an ObjectRef is passed to tasks and put into objects by rayc itself; "
                        "it cannot be pickled on its own")


_rayc.set_ref_class(ObjectRef)
_serial._ref_class = ObjectRef


class _State:
    def __init__(self):
        self.lock = threading.RLock()
        self.connected = False
        self.is_worker = False
        self.exported = set()
        self.namespace = None
        self.job_hex = None

    def ensure(self):
        if not self.connected:
            from . import init
            init()


state = _State()


def job_hex():
    if state.job_hex is None:
        state.job_hex = _rayc.context()[1]
    return state.job_hex


# ---- errors ----

def _parse_failure(message):
    """(exception or None, text before the pickled part) from a failed task's message."""
    i = message.find(ERROR_MARK)
    if i < 0:
        return None, message
    try:
        err = pickle.loads(base64.b64decode(message[i + len(ERROR_MARK):].split("\n", 1)[0]))
    except Exception:  # noqa: BLE001 - an exception we cannot rebuild: keep the text
        err = None
    return err, message[:i]


def error_from_core(e):
    """Ray's exception for a core error (_rayc.Error(code, name, message))."""
    code, name, message = e.args
    if name == "TASK_FAILED":
        err, text = _parse_failure(message)
        if isinstance(err, exceptions.RayTaskError):
            m = re.search(r"failed on node (\w+), worker (\w+)", text)
            if m:
                pid = err.where.rsplit("pid ", 1)[-1]
                err.where = f"node {m.group(1)}, worker {m.group(2)}, pid {pid}"
            return err.as_instanceof_cause()
        if isinstance(err, BaseException):
            return err
        return exceptions.RayTaskError("", text, None, "").as_instanceof_cause()
    cls = {
        "TIMEOUT": exceptions.GetTimeoutError, "CANCELLED": exceptions.TaskCancelledError,
        "ACTOR_DIED": exceptions.ActorDiedError, "OBJECT_LOST": exceptions.ObjectLostError,
        "OWNER_DIED": exceptions.OwnerDiedError, "WORKER_DIED": exceptions.WorkerCrashedError,
        "OUT_OF_MEMORY": exceptions.ObjectStoreFullError,
        "NODE_OUT_OF_MEMORY": exceptions.OutOfMemoryError,
    }.get(name, exceptions.RaySystemError)
    if name == "ACTOR_DIED" and message.find(ERROR_MARK) >= 0:  # the constructor raised
        err, text = _parse_failure(message)
        return exceptions.ActorDiedError(f"{text}\n{err}")
    return cls(message)


def failure_message(exc, function_name):
    """The message a worker fails a task with: the traceback, then the pickled RayTaskError."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    node, pid = _rayc.context()[3][:8] if state.connected else "?", os.getpid()
    err = exceptions.RayTaskError(function_name, tb, exc, f"node {node}, pid {pid}")
    try:
        blob = cloudpickle.dumps(err)
    except Exception:  # noqa: BLE001 - an unpicklable cause: keep its text
        err = exceptions.RayTaskError(function_name, tb, RuntimeError(str(exc)), f"node {node}, pid {pid}")
        blob = cloudpickle.dumps(err)
    return f"{tb}{ERROR_MARK}{base64.b64encode(blob).decode()}"


# ---- objects ----

def put_value(value):
    total, parts, refs = _serial.dumps(value)
    try:
        return _rayc.put(total, parts, refs)
    except _rayc.Error as e:
        raise error_from_core(e) from None


def _timeout_ms(timeout):
    if timeout is None:
        return -1
    return max(0, int(timeout * 1000))


def get_values(refs, timeout=None):
    try:
        got = _rayc.get(refs, _timeout_ms(timeout))
    except _rayc.Error as e:
        raise error_from_core(e) from None
    out = []
    for buf, inner in got:
        value, is_error = _serial.loads(buf, inner)
        if is_error:
            raise value
        out.append(value)
    return out


def get(refs, *, timeout=None):
    state.ensure()
    if isinstance(refs, ObjectRef):
        return get_values([refs], timeout)[0]
    if isinstance(refs, (list, tuple)):
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(f"get() takes ObjectRefs, got {type(r).__name__}")
        return get_values(list(refs), timeout) if refs else []
    if hasattr(refs, "_rayc_refs"):  # an ObjectRefGenerator
        return get(list(refs), timeout=timeout)
    raise TypeError(f"get() takes an ObjectRef or a list of them, got {type(refs).__name__}")


# ---- arguments ----

def pack_args(args, kwargs):
    """The task's arguments for the core: a small header (the keyword names), then each value
    (an ObjectRef given at the top level is passed by reference and resolved before the call;
    any other value is serialized, with the refs inside it borrowed)."""
    if not args and not kwargs:
        return [(b"", [])]
    head = pickle.dumps(tuple(kwargs)) if kwargs else b""
    out = [(head, [])]
    for v in list(args) + list(kwargs.values()):
        if isinstance(v, ObjectRef):
            out.append(v)
            continue
        total, parts, refs = _serial.dumps(v)
        if total > INLINE_MAX:  # large values go through the store, as Ray does
            out.append(_rayc.put(total, parts, refs))
        else:
            out.append((_serial.flatten(total, parts), refs))
    return out


def unpack_args(args):
    """(positional, keyword) values from the arguments a worker received."""
    head = bytes(memoryview(args[0][0]))
    names = pickle.loads(head) if head else ()
    values = [_serial.loads(buf, refs)[0] for buf, refs in args[1:]]
    if not names:
        return values, {}
    k = len(values) - len(names)
    return values[:k], dict(zip(names, values[k:]))


# ---- exporting functions and classes ----

def export(obj, name):
    """Pickles obj (a function or class) once per job into the GCS KV; returns its descriptor."""
    data = cloudpickle.dumps(obj)
    digest = hashlib.sha1(data).hexdigest()
    job = job_hex()
    key = f"{job}:{digest}"
    if key not in state.exported:
        _rayc.kv_put(FN_NAMESPACE, key.encode(), data, False)
        state.exported.add(key)
    return f"py:{job}:{digest}:{name}"


_fn_cache = {}
_fn_lock = threading.Lock()


def load_exported(desc):
    """The function or class a descriptor names (cached)."""
    obj = _fn_cache.get(desc)
    if obj is not None:
        return obj
    with _fn_lock:
        obj = _fn_cache.get(desc)
        if obj is None and desc.startswith("pyname:"):  # exported by name, for C callers
            data = _rayc.kv_get(FN_NAMESPACE, f"name:{desc[7:]}".encode())
            if data is None:
                raise RuntimeError(f"no Python function was exported under the name {desc[7:]!r}")
            obj = cloudpickle.loads(data)
            _fn_cache[desc] = obj
        elif obj is None:
            _, job, digest, _name = desc.split(":", 3)
            data = _rayc.kv_get(FN_NAMESPACE, f"{job}:{digest}".encode())
            if data is None:
                raise RuntimeError(f"function {desc} was not exported to the GCS")
            obj = cloudpickle.loads(data)
            _fn_cache[desc] = obj
    return obj
