"""@remote functions: RemoteFunction.remote() and .options()."""
import inspect

from . import _core, _rayc
from ._generator import ObjectRefGenerator
from .util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

_TASK_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "num_returns", "max_retries",
                 "retry_exceptions", "name", "scheduling_strategy", "placement_group",
                 "placement_group_bundle_index", "runtime_env", "max_calls", "_metadata",
                 "accelerator_type", "label_selector"}

STRATEGY_DEFAULT, STRATEGY_SPREAD, STRATEGY_NODE_AFFINITY = 0, 1, 2


def check_options(opts, allowed, what):
    for k in opts:
        if k not in allowed:
            raise ValueError(f"Invalid option keyword {k} for {what}")


def strategy_opts(opts, out):
    """Fills the core's scheduling fields from Ray's scheduling_strategy / placement_group."""
    s = opts.get("scheduling_strategy")
    pg = opts.get("placement_group")
    index = opts.get("placement_group_bundle_index", -1)
    if isinstance(s, PlacementGroupSchedulingStrategy):
        pg, index = s.placement_group, s.placement_group_bundle_index
    elif isinstance(s, NodeAffinitySchedulingStrategy):
        out["strategy"] = STRATEGY_NODE_AFFINITY
        out["node_affinity"] = s.node_id
        out["node_affinity_soft"] = int(bool(s.soft))
    elif s == "SPREAD":
        out["strategy"] = STRATEGY_SPREAD
    elif s not in (None, "DEFAULT"):
        raise ValueError(f"unknown scheduling_strategy {s!r}")
    if pg is not None and pg != "default":
        out["placement_group"] = pg.id.binary() if hasattr(pg.id, "binary") else pg.id
        out["bundle_index"] = -1 if index is None else int(index)


def returns_opts(nr, is_generator, out):
    """num_returns: an int, or "streaming" (the default for a generator function, as in Ray 2.8+):
    one ref, the generator, read through an ObjectRefGenerator."""
    if nr is None:
        nr = "streaming" if is_generator else 1
    if nr == "dynamic":
        raise ValueError("num_returns='dynamic' is not supported by rayc (Ray deprecated it): "
                         "use num_returns='streaming'")
    if nr == "streaming":
        out["num_returns"], out["streaming"] = 1, 1
    else:
        out["num_returns"] = int(nr)
    return out


def task_opts(opts, is_generator=False):
    out = {}
    for k in ("num_cpus", "num_gpus", "memory", "max_retries", "name"):
        if opts.get(k) is not None:
            out[k] = opts[k]
    if opts.get("resources"):
        out["resources"] = {k: float(v) for k, v in opts["resources"].items()}
    returns_opts(opts.get("num_returns"), is_generator, out)
    if opts.get("max_retries") == -1:
        out["max_retries"] = 1000000
    re_ = opts.get("retry_exceptions", False)
    out["retry_exceptions"] = 1 if re_ else 0
    strategy_opts(opts, out)
    return out


class RemoteFunction:
    def __init__(self, function, options):
        check_options(options, _TASK_OPTIONS, "a remote function")
        self._function = function
        self._options = dict(options)
        self._name = getattr(function, "__qualname__", getattr(function, "__name__", "function"))
        self._desc = None
        self._core_opts = None
        self.__doc__ = function.__doc__
        self.__name__ = getattr(function, "__name__", "function")
        self.__wrapped__ = function

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self.__name__}()', try '{self.__name__}.remote()'.")

    def options(self, **opts):
        check_options(opts, _TASK_OPTIONS, "a remote function")
        merged = dict(self._options)
        merged.update(opts)
        parent = self

        class _Options:
            _core_opts = None

            def remote(self, *args, **kwargs):
                if self._core_opts is None:
                    self._core_opts = parent._core_options(merged)
                return parent._remote(args, kwargs, self._core_opts)

            def bind(self, *a, **k):
                raise NotImplementedError("DAGs are not supported by rayc")
        return _Options()

    def remote(self, *args, **kwargs):
        if self._core_opts is None:
            self._core_opts = self._core_options(self._options)
        return self._remote(args, kwargs, self._core_opts)

    def _core_options(self, opts):
        """The core's task options for Ray's options (computed once per options set: the core
        only reads them)."""
        o = task_opts(opts, inspect.isgeneratorfunction(self._function))
        o.setdefault("name", self._name)
        return o

    def _remote(self, args, kwargs, o):
        _core.state.ensure()
        job = _core.job_hex()
        if self._desc is None or self._desc[0] != job:
            self._desc = (job, _core.export(self._function, self._name))
        try:
            refs = _rayc.submit(self._desc[1], _core.pack_args(args, kwargs), o)
        except _rayc.Error as e:
            raise _core.error_from_core(e) from None
        if o.get("streaming"):
            return ObjectRefGenerator(refs[0])
        return refs[0] if o["num_returns"] == 1 else refs
