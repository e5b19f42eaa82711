"""@remote classes: ActorClass.remote() creates an actor; ActorHandle.method.remote() calls it."""
import inspect

from . import _core, _rayc, exceptions
from ._generator import ObjectRefGenerator
from .remote_function import check_options, returns_opts, strategy_opts

_ACTOR_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "max_restarts", "max_task_retries",
                  "max_concurrency", "name", "namespace", "lifetime", "get_if_exists",
                  "scheduling_strategy", "placement_group", "placement_group_bundle_index",
                  "runtime_env", "max_pending_calls", "concurrency_groups", "_metadata",
                  "share_worker"}
ASYNC_MAX_CONCURRENCY = 100  # Ray's default is 1000 coroutines; threads here wait for the loop


def method(*args, **kwargs):
    """@rayc.method(num_returns=n) on an actor method."""
    def deco(f):
        f.__rayc_num_returns__ = kwargs.get("num_returns", 1)
        return f
    if args and callable(args[0]):
        return deco(args[0])
    return deco


def _is_async_class(cls):
    return any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
               for _, m in inspect.getmembers(cls, predicate=inspect.isfunction))


def _method_returns(cls):
    """num_returns per method: @rayc.method's, else "streaming" for a generator method (Ray 2.8+)."""
    out = {}
    for name, m in inspect.getmembers(cls, predicate=inspect.isfunction):
        out[name] = getattr(m, "__rayc_num_returns__", "streaming" if inspect.isgeneratorfunction(m) else 1)
    return out


class ActorMethod:
    def __init__(self, handle, name, num_returns=1):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def remote(self, *args, **kwargs):
        return self._call(args, kwargs, self._num_returns)

    def options(self, **opts):
        nr = opts.get("num_returns", self._num_returns)
        parent = self

        class _Options:
            def remote(self, *args, **kwargs):
                return parent._call(args, kwargs, nr)
        return _Options()

    def _call(self, args, kwargs, num_returns):
        _core.state.ensure()
        o = returns_opts(num_returns, False, {})
        try:
            refs = _rayc.actor_call(self._handle._actor_id, self._name, _core.pack_args(args, kwargs),
                                    o["num_returns"], f"{self._handle._class_name}.{self._name}",
                                    bool(o.get("streaming")))
        except _rayc.Error as e:
            raise _core.error_from_core(e) from None
        if o.get("streaming"):
            return ObjectRefGenerator(refs[0])
        return refs[0] if o["num_returns"] == 1 else refs


class ActorHandle:
    """A handle to an actor: a plain value (its id), passed freely to tasks and other actors."""

    def __init__(self, actor_id, class_name, methods):
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods

    def __getattr__(self, name):
        if name.startswith("__") or name not in self._methods:
            if name == "__ray_terminate__":
                return ActorMethod(self, name)
            raise AttributeError(f"'{self._class_name}' actor has no method '{name}'")
        return ActorMethod(self, name, self._methods[name])

    def __repr__(self):
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self):
        return hash(self._actor_id)

    def __reduce__(self):
        return ActorHandle, (self._actor_id, self._class_name, self._methods)


class ActorClass:
    def __init__(self, cls, options):
        check_options(options, _ACTOR_OPTIONS, "an actor class")
        self._cls = cls
        self._options = dict(options)
        self._desc = None
        self.__name__ = cls.__name__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', "
                        f"use '{self.__name__}.remote()'.")

    def options(self, **opts):
        check_options(opts, _ACTOR_OPTIONS, "an actor class")
        merged = dict(self._options)
        merged.update(opts)
        parent = self

        class _Options:
            def remote(self, *args, **kwargs):
                return parent._remote(args, kwargs, merged)
        return _Options()

    def remote(self, *args, **kwargs):
        return self._remote(args, kwargs, self._options)

    def _actor_opts(self, opts):
        out = {}
        for k in ("num_cpus", "num_gpus", "memory", "max_restarts", "max_task_retries", "max_concurrency",
                  "name", "namespace"):
            if opts.get(k) is not None:
                out[k] = opts[k]
        if out.get("namespace") is None and _core.state.namespace:
            out["namespace"] = _core.state.namespace
        if opts.get("resources"):
            out["resources"] = {k: float(v) for k, v in opts["resources"].items()}
        if opts.get("lifetime") == "detached":
            out["detached"] = 1
        elif opts.get("lifetime") not in (None, "non_detached"):
            raise ValueError("lifetime must be 'detached' or None")
        if opts.get("get_if_exists"):
            out["get_if_exists"] = 1
        if opts.get("share_worker"):
            out["share_worker"] = 1
        if _is_async_class(self._cls) and "max_concurrency" not in out:
            out["max_concurrency"] = ASYNC_MAX_CONCURRENCY
        s = {}
        strategy_opts(opts, s)
        if "placement_group" in s:
            out["placement_group"], out["bundle_index"] = s["placement_group"], s["bundle_index"]
        return out

    def _remote(self, args, kwargs, opts):
        _core.state.ensure()
        if self._desc is None or self._desc[0] != _core.job_hex():
            self._desc = (_core.job_hex(), _core.export(self._cls, self._cls.__name__))
        o = self._actor_opts(opts)
        try:
            actor_id = _rayc.actor_create(self._desc[1], _core.pack_args(args, kwargs), o)
        except _rayc.Error as e:
            if e.args[1] == "ALREADY_EXISTS":
                raise ValueError(f"The name {o.get('name')} (namespace={o.get('namespace')}) is already "
                                 f"taken.") from None
            raise _core.error_from_core(e) from None
        return ActorHandle(actor_id, self._cls.__name__, _method_returns(self._cls))


def get_actor(name, namespace=None):
    _core.state.ensure()
    ns = namespace if namespace is not None else _core.state.namespace
    try:
        actor_id = _rayc.get_actor(name, ns)
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None
    if actor_id is None:
        raise ValueError(f"Failed to look up actor with name '{name}'")
    return _handle_from_id(actor_id)


def _handle_from_id(actor_id):
    """A handle of an actor known by id only: methods are looked up when called."""
    return _AnyHandle(actor_id, "Actor", {})


class _AnyHandle(ActorHandle):
    def __getattr__(self, name):
        if name.startswith("__") and name != "__ray_terminate__":
            raise AttributeError(name)
        return ActorMethod(self, name)

    def __reduce__(self):
        return _AnyHandle, (self._actor_id, self._class_name, self._methods)


def kill(actor, *, no_restart=True):
    if not isinstance(actor, ActorHandle):
        raise ValueError(f"kill() takes an actor handle, got {type(actor).__name__}")
    try:
        _rayc.kill_actor(actor._actor_id, bool(no_restart))
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None


__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "get_actor", "kill", "method", "exceptions"]
