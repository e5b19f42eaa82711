"""ActorPool: Ray's utility to spread work over a fixed set of actors."""
from .. import _core


class ActorPool:
    def __init__(self, actors):
        self._idle = list(actors)
        self._future_to_actor = {}
        self._index_to_future = {}
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending = []

    def map(self, fn, values):
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn, values):
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next_unordered()

    def submit(self, fn, value):
        if self._idle:
            actor = self._idle.pop()
            ref = fn(actor, value)
            self._future_to_actor[ref] = (self._next_task_index, actor)
            self._index_to_future[self._next_task_index] = ref
            self._next_task_index += 1
        else:
            self._pending.append((fn, value))

    def has_next(self):
        return bool(self._future_to_actor)

    def has_free(self):
        return bool(self._idle) and not self._pending

    def _return_actor(self, actor):
        self._idle.append(actor)
        if self._pending:
            self.submit(*self._pending.pop(0))

    def get_next(self, timeout=None):
        if not self.has_next():
            raise StopIteration("No more results to get")
        ref = self._index_to_future[self._next_return_index]
        from .. import wait
        ready, _ = wait([ref], timeout=timeout)
        if not ready:
            raise TimeoutError("Timed out waiting for result")
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(ref)
        self._return_actor(actor)
        return _core.get(ref)

    def get_next_unordered(self, timeout=None):
        if not self.has_next():
            raise StopIteration("No more results to get")
        from .. import wait
        ready, _ = wait(list(self._future_to_actor), num_returns=1, timeout=timeout)
        if not ready:
            raise TimeoutError("Timed out waiting for result")
        ref = ready[0]
        index, actor = self._future_to_actor.pop(ref)
        del self._index_to_future[index]
        self._return_actor(actor)
        return _core.get(ref)

    def push(self, actor):
        self._return_actor(actor)

    def pop_idle(self):
        return self._idle.pop() if self.has_free() else None
