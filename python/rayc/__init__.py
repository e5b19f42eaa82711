"""rayc: Ray's core API for Python, on rayc's C runtime.

    import rayc as ray
    ray.init()

    @ray.remote
    def square(x):
        return x * x

    print(ray.get([square.remote(i) for i in range(4)]))  # [0, 1, 4, 9]

See docs/PYTHON.md for what is supported and how it works inside.
"""
import atexit
import os
import sys

# librayc is loaded with the extension; C task libraries a job's code path names are dlopen'ed later
# and resolve rayc_* against the global scope, so the extension and librayc are loaded globally.
_flags = sys.getdlopenflags()
sys.setdlopenflags(_flags | os.RTLD_GLOBAL)
from . import _rayc  # noqa: E402
sys.setdlopenflags(_flags)

from . import _core, exceptions
from . import util  # noqa: F401 - reachable as rayc.util right after `import rayc`
from . import actor, cross_language  # noqa: F401
from .util import scheduling_strategies  # noqa: F401
from . import _generator, _runtime_env
from ._core import ObjectRef
from ._generator import ObjectRefGenerator  # noqa: F401
from .actor import ActorClass, ActorHandle, get_actor, kill, method
from .remote_function import RemoteFunction

__version__ = _rayc.version()

__all__ = ["ObjectRef", "available_resources", "cancel", "cluster_resources", "exceptions", "get", "get_actor",
           "get_runtime_context", "init", "is_initialized", "kill", "method", "nodes", "put", "remote",
           "shutdown", "util", "wait"]


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None, namespace=None, runtime_env=None,
         ignore_reinit_error=False, include_dashboard=None, logging_level=None, log_to_driver=True,
         _temp_dir=None, **_ignored):
    """Connects to a cluster (address "HOST:PORT", "auto" or $RAYC_ADDRESS), or starts a private
    one on this machine (address None and no $RAYC_ADDRESS)."""
    with _core.state.lock:
        if _core.state.connected:
            if ignore_reinit_error:
                return None
            raise RuntimeError("Maybe you called ray.init twice by accident? This error can be suppressed by "
                               "passing in 'ignore_reinit_error=True' or by calling 'ray.shutdown()' prior to "
                               "'ray.init()'.")
        env = _runtime_env.check(runtime_env)
        if address == "auto":
            address = os.environ.get("RAYC_ADDRESS") or _latest_address(_temp_dir)
        elif address is not None and address.startswith("ray://"):
            address = address[len("ray://"):]
        # Under `rayc job submit --working-dir`, the working dir is on the code path: the core sends
        # it to every node as the job's package and workers run (and import) from their copy.
        code_path = os.environ.get("RAYC_CODE_PATH", "")
        wd = os.environ.get("RAYC_WORKING_DIR")
        if wd:
            code_path = f"{code_path}:{wd}" if code_path else wd
        try:
            _rayc.init(address=address, code_path=code_path or None, temp_dir=_temp_dir,
                       num_cpus=float(num_cpus or 0))
        except _rayc.Error as e:
            raise ConnectionError(f"rayc could not connect: {e.args[2]}") from None
        _core.state.connected = True
        _core.state.namespace = namespace
        _core.state.job_hex = None
        _core.state.exported = set()
        try:
            _runtime_env.publish(env)
        except BaseException:
            _rayc.shutdown()
            _core.state.connected = False
            raise
        if log_to_driver:
            _start_log_follower()
    return None


_follower = None


def _start_log_follower():
    """Follows this node's worker output for the job's lines (print() in tasks)."""
    global _follower
    from . import _log
    me = _rayc.context()[3]
    for node_id, _ip, _host, _alive, _head, _t, _a, session in _rayc.nodes():
        if node_id == me and session:
            _follower = _log.Follower(os.path.join(session, "logs"), _core.job_hex(), node=me)


def _latest_address(temp_dir):
    path = os.path.join(temp_dir or os.environ.get("RAYC_TEMP_DIR", "/tmp/rayc"), "session_latest", "address")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        raise ConnectionError(f"no running rayc cluster found ({path} does not exist); "
                              f"start one with `rayc start --head`") from None


def is_initialized():
    return _core.state.connected


def shutdown():
    """Disconnects (and stops a private cluster this process started)."""
    with _core.state.lock:
        global _follower
        if _follower is not None:
            _follower.stop()
            _follower = None
        if _core.state.connected and not _core.state.is_worker:
            _rayc.shutdown()
            _core.state.connected = False


atexit.register(shutdown)


def remote(*args, **kwargs):
    """@remote on a function or class, with or without options."""
    def make(obj, opts):
        if isinstance(obj, type):
            return ActorClass(obj, opts)
        if callable(obj):
            return RemoteFunction(obj, opts)
        raise TypeError("@remote decorates functions and classes")
    if len(args) == 1 and not kwargs and callable(args[0]):
        return make(args[0], {})
    if args:
        raise TypeError("@remote takes only keyword arguments, e.g. @remote(num_cpus=2)")
    return lambda obj: make(obj, kwargs)


def get(object_refs, *, timeout=None):
    """The value of an ObjectRef, or the values of a list of them (waiting for them)."""
    return _core.get(object_refs, timeout=timeout)


def put(value, *, _owner=None):
    """Stores value in the object store; returns its ObjectRef."""
    _core.state.ensure()
    if isinstance(value, ObjectRef):
        raise TypeError("Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do this, you "
                        "can wrap the ray.ObjectRef in a list and call 'put' on it.")
    return _core.put_value(value)


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """(ready, not_ready): the first num_returns refs ready (in input order), or those ready when
    timeout passes. A failed task's result counts as ready."""
    _core.state.ensure()
    if isinstance(object_refs, ObjectRef):
        raise TypeError("wait() expected a list of ray.ObjectRef, got a single ray.ObjectRef")
    refs = list(object_refs)
    if len(set(refs)) != len(refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if num_returns <= 0 or num_returns > len(refs):
        raise ValueError("Invalid number of objects to return %d." % num_returns)
    try:
        if any(isinstance(r, ObjectRefGenerator) for r in refs):
            flags = _generator.wait_mixed(refs, num_returns, timeout)
        else:
            flags = _rayc.wait(refs, num_returns, _core._timeout_ms(timeout))
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None
    ready = [r for r, f in zip(refs, flags) if f][:num_returns]
    chosen = set(ready)
    return ready, [r for r in refs if r not in chosen]


def cancel(object_ref, *, force=False, recursive=True):
    """Cancels the task that makes object_ref; get() then raises TaskCancelledError."""
    try:
        _rayc.cancel(object_ref, bool(force), bool(recursive))
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None


def nodes():
    """The cluster's nodes, as Ray lists them."""
    _core.state.ensure()
    out = []
    for node_id, ip, host, alive, head, total, avail, _session in _rayc.nodes():
        out.append({"NodeID": node_id, "Alive": bool(alive), "NodeManagerAddress": ip,
                    "NodeManagerHostname": host, "IsHead": bool(head), "Resources": total,
                    "AvailableResources": avail})
    return out


def _sum(key):
    total = {}
    for n in nodes():
        if n["Alive"]:
            for k, v in n[key].items():
                if "_group_" not in k and k != "bundle":
                    total[k] = total.get(k, 0) + v
    return total


def cluster_resources():
    return _sum("Resources")


def available_resources():
    return _sum("AvailableResources")


class RuntimeContext:
    def __init__(self):
        self._task, self._job, self._worker, self._node = _rayc.context()

    def get_job_id(self):
        return self._job

    def get_task_id(self):
        return None if set(self._task) == {"0"} else self._task

    def get_node_id(self):
        return self._node

    def get_worker_id(self):
        return self._worker

    def get_actor_id(self):
        from .worker import current_actor_id
        return current_actor_id()

    @property
    def namespace(self):
        return _core.state.namespace or "default"

    @property
    def was_current_actor_reconstructed(self):
        return False


def get_runtime_context():
    _core.state.ensure()
    return RuntimeContext()
