"""A Python worker: `python3 -m rayc.worker <the arguments the raylet gives rayc-worker>`.

The raylet starts it for Python tasks and actors; it installs the Executor below and hands the
main thread to librayc's core worker (rayc._rayc.worker_main), which calls the Executor for every
task, actor creation and actor call (on the main thread, or an actor's threads).
"""
import asyncio
import inspect
import os
import signal
import sys
import threading

from . import _core, _log, _rayc, _runtime_env, _serial


def _set_returns(ctx, result, nrets):
    if inspect.isgenerator(result) and ctx.streaming():
        for v in result:  # each item goes to the caller before the next is made
            total, parts, refs = _serial.dumps(v)
            ctx.yield_item(total, parts, refs)
        return
    if nrets == 1:
        values = [result]
    else:
        values = list(result)
        if len(values) != nrets:
            raise ValueError(f"the task declared num_returns={nrets} but returned {len(values)} values")
    for i, v in enumerate(values):
        total, parts, refs = _serial.dumps(v)
        ctx.set_return(i, total, parts, refs)


class _AsyncActor:
    """An actor with async methods: one event loop thread runs every method (sync ones too)."""

    def __init__(self, instance):
        self.instance = instance
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="rayc-actor-loop").start()

    def call(self, name, args, kwargs):
        m = getattr(self.instance, name)
        if inspect.iscoroutinefunction(m):
            fut = asyncio.run_coroutine_threadsafe(m(*args, **kwargs), self.loop)
        else:
            async def run_sync():
                return m(*args, **kwargs)
            fut = asyncio.run_coroutine_threadsafe(run_sync(), self.loop)
        return fut.result()


_actor_id = None


def current_actor_id():
    """The hex id of the actor this worker hosts, or None."""
    return _actor_id


_running_ctx = None  # the task running on the main thread (for cancellation)


def _on_cancel_signal(signum, frame):
    """SIGUSR1 from the core: the running task was cancelled (only then: a late signal between
    tasks does nothing)."""
    ctx = _running_ctx
    if ctx is not None:
        try:
            cancelled = ctx.cancelled()
        except RuntimeError:
            return
        if cancelled:
            raise KeyboardInterrupt("the task was cancelled")


def _import_path_once(desc):
    """The job's working dir (the core worker entered it, if the job has one) is on the import
    path, as Ray's working_dir is; then the runtime_env the driver gave init() applies."""
    global _path_done
    if not _path_done:
        _path_done = True
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        if desc.startswith("py:"):  # py:<job>:<sha1>:<name>: the job of the driver that exported it
            _runtime_env.apply_in_worker(desc.split(":")[1], _session_dir)


_path_done = False
_session_dir = None


class Executor:
    def task(self, ctx, fn, args, nrets):
        global _running_ctx
        _import_path_once(fn)
        _running_ctx = ctx
        try:
            return self._task(ctx, fn, args, nrets)
        finally:
            _running_ctx = None

    def _task(self, ctx, fn, args, nrets):
        _log.set_task_name(fn.rsplit(":", 1)[-1].rsplit(".", 1)[-1])
        try:
            f = _core.load_exported(fn)
            if fn.startswith("pyname:"):  # called from C: bytes in, bytes out
                result = f(*[bytes(memoryview(buf)) for buf, _ in args])
                if isinstance(result, (bytes, bytearray, memoryview)):
                    ctx.set_return(0, memoryview(result).nbytes, [(0, result)], [])
                else:
                    _set_returns(ctx, result, nrets)
                return None
            a, kw = _core.unpack_args(args)
            _set_returns(ctx, f(*a, **kw), nrets)
            return None
        except BaseException as e:  # noqa: B902 - the task's error (KeyboardInterrupt: cancelled)
            return _core.failure_message(e, fn.rsplit(":", 1)[-1])

    def actor_create(self, ctx, cls_desc, args):
        global _actor_id
        _import_path_once(cls_desc)
        aid = ctx.actor_id()
        _actor_id = aid.hex() if aid else None
        _log.set_task_name(cls_desc.rsplit(":", 1)[-1])
        try:
            cls = _core.load_exported(cls_desc)
            a, kw = _core.unpack_args(args)
            instance = cls(*a, **kw)
            if any(inspect.iscoroutinefunction(m) for _, m in inspect.getmembers(cls, inspect.isfunction)):
                return _AsyncActor(instance)
            return instance
        except Exception as e:  # noqa: BLE001
            return _core.failure_message(e, cls_desc.rsplit(":", 1)[-1] + ".__init__")

    def actor_method(self, ctx, holder, method, args, nrets):
        inst = holder.instance if isinstance(holder, _AsyncActor) else holder
        _log.set_task_name(type(inst).__name__)
        try:
            a, kw = _core.unpack_args(args)
            if method == "__ray_terminate__":
                ctx.actor_exit()
                _set_returns(ctx, None, nrets)
                return None
            if isinstance(holder, _AsyncActor):
                result = holder.call(method, a, kw)
            else:
                result = getattr(holder, method)(*a, **kw)
            _set_returns(ctx, result, nrets)
            return None
        except Exception as e:  # noqa: BLE001
            return _core.failure_message(e, f"{type(holder).__name__}.{method}")

    def actor_destroy(self, holder):
        if isinstance(holder, _AsyncActor):
            holder.loop.call_soon_threadsafe(holder.loop.stop)


def main(argv):
    _core.state.connected = True
    _core.state.is_worker = True
    signal.signal(signal.SIGUSR1, _on_cancel_signal)
    global _session_dir
    if "--session-dir" in argv:
        _session_dir = argv[argv.index("--session-dir") + 1]
    if "--job-id" in argv:
        _log.install_worker_writers(argv[argv.index("--job-id") + 1])
    return _rayc.worker_main([argv[0]] + argv[1:], Executor())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
