"""Cross-language calls.

Python calling C: rayc.cross_language.c_function("add").remote(b"...", ...).

C calling Python: export_function("concat", fn) stores fn under a name in the GCS KV; a C driver
then submits it with rayc_remote("pyname:concat", ...) and opts.language = RAYC_LANG_PYTHON. Its
arguments arrive as bytes, and a bytes result goes back as raw bytes (other values are pickled).

A C task (RAYC_REMOTE in a library on the job's code path) takes bytes arguments and returns
bytes: arguments are bytes-like values (or ObjectRefs of such values), and get() of its results
gives bytes.
"""
from . import _core, _rayc
from .remote_function import task_opts


class CFunction:
    def __init__(self, name, options=None):
        self._name = name
        self._options = dict(options or {})

    def options(self, **opts):
        merged = dict(self._options)
        merged.update(opts)
        return CFunction(self._name, merged)

    def remote(self, *args):
        _core.state.ensure()
        packed = []
        for a in args:
            if isinstance(a, _core.ObjectRef):
                packed.append(a)
            else:
                packed.append((bytes(memoryview(a)), []))
        o = task_opts(self._options)
        o["language"] = _core.LANG_C
        o.setdefault("name", self._name)
        try:
            refs = _rayc.submit(self._name, packed, o)
        except _rayc.Error as e:
            raise _core.error_from_core(e) from None
        return refs[0] if o["num_returns"] == 1 else refs


def c_function(name):
    """A C task registered under name, callable with .remote(*bytes_args)."""
    return CFunction(name)


def export_function(name, function):
    """Makes function callable from C by name ("pyname:<name>", language RAYC_LANG_PYTHON)."""
    import cloudpickle
    _core.state.ensure()
    try:
        _rayc.kv_put(_core.FN_NAMESPACE, f"name:{name}".encode(), cloudpickle.dumps(function), True)
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None
