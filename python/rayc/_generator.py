"""ObjectRefGenerator: the caller's side of a streaming generator task (Ray's num_returns="streaming",
the default for a remote generator function). Built on the C core's streaming returns
(rayc_stream_next, rayc.h): each item the task yields is an object the caller owns, reported to it
while the task runs; next() gives their ObjectRefs in order.

If the task fails after k items, the first k next() calls give those items and the next one gives
an ObjectRef whose get() raises the task's error (Ray's rule); then the iteration stops.
"""
import asyncio
import time

from . import _core, _rayc


class ObjectRefGenerator:
    def __init__(self, generator_ref):
        self._ref = generator_ref  # the task's one result: the generator object
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        return self._next(-1)

    def _next(self, timeout_ms):
        if self._done:
            raise StopIteration
        try:
            r = _rayc.stream_next(self._ref, timeout_ms)
        except _rayc.Error as e:
            raise _core.error_from_core(e) from None
        if r is None:
            self._done = True
            raise StopIteration
        if r is False:  # the task failed: its generator ref carries the error
            self._done = True
            return self._ref
        return r

    def _next_sync(self, timeout_s=None):
        """The next ObjectRef, waiting at most timeout_s (None: no limit); GetTimeoutError after."""
        return self._next(-1 if timeout_s is None else int(timeout_s * 1000))

    def __aiter__(self):
        return self

    async def __anext__(self):
        loop = asyncio.get_running_loop()
        while not self._ready():  # poll without holding a thread of the default executor
            await asyncio.sleep(0.005)
        r = await loop.run_in_executor(None, self._next_or_none)
        if r is None:
            raise StopAsyncIteration
        return r

    def _next_or_none(self):
        try:  # (StopIteration cannot travel through a Future)
            return self._next(-1)
        except StopIteration:
            return None

    def _ready(self):
        """Whether next() would not wait (ray.wait's test for generators)."""
        return self._done or _rayc.stream_ready(self._ref)

    def completed(self):
        """An ObjectRef that is ready when the task has finished (get() raises its error)."""
        return self._ref

    def is_finished(self):
        return self._done

    def __repr__(self):
        return f"ObjectRefGenerator({self._ref!r})"


def wait_mixed(items, num_returns, timeout):
    """ray.wait over ObjectRefs and ObjectRefGenerators: flags in input order. The refs are asked
    in short waits (the core's rayc_wait) between looks at the generators."""
    deadline = None if timeout is None else time.monotonic() + timeout
    refs = [x for x in items if not isinstance(x, ObjectRefGenerator)]
    while True:
        flags = {}
        for x in items:
            if isinstance(x, ObjectRefGenerator):
                flags[id(x)] = x._ready()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        need = num_returns - sum(flags.values())
        step = 0 if need <= 0 else 10 if left is None else min(10, int(left * 1000))
        if refs:
            rf = _rayc.wait(refs, max(1, min(need, len(refs))), step)
            flags.update((id(r), f) for r, f in zip(refs, rf))
        elif step:
            time.sleep(step / 1000)
        if sum(flags.values()) >= num_returns or (left is not None and left <= 0):
            return [flags[id(x)] for x in items]
