"""Generators (Ray's streaming generator tasks, ObjectRefGenerator) on the C core's streaming
returns: a remote generator function or actor method gives its items one by one while it runs."""
import time

import pytest


def test_iteration_in_order(ray):
    @ray.remote
    def numbers(n):
        for i in range(n):
            yield i * i

    gen = numbers.remote(10)
    assert isinstance(gen, ray.ObjectRefGenerator)
    assert [ray.get(ref) for ref in gen] == [i * i for i in range(10)]


def test_next_and_stop(ray):
    @ray.remote(num_returns="streaming")
    def two():
        yield "a"
        yield "b"

    gen = two.remote()
    assert ray.get(next(gen)) == "a"
    assert ray.get(next(gen)) == "b"
    with pytest.raises(StopIteration):
        next(gen)
    with pytest.raises(StopIteration):
        next(gen)


def test_items_arrive_before_the_task_ends(ray):
    @ray.remote
    def slow():
        yield 1
        time.sleep(5)
        yield 2

    gen = slow.remote()
    t0 = time.monotonic()
    assert ray.get(next(gen)) == 1
    ready, _ = ray.wait([gen.completed()], timeout=0)
    assert not ready, "the task had finished before the first item was read"
    assert ray.get(next(gen)) == 2
    assert time.monotonic() - t0 >= 4


def test_wait_on_generators(ray):
    @ray.remote
    def gen_after(delay, n):
        for i in range(n):
            time.sleep(delay)
            yield i

    fast, slow = gen_after.remote(0.0, 2), gen_after.remote(30.0, 1)
    ready, not_ready = ray.wait([slow, fast], num_returns=1, timeout=20)
    assert ready == [fast] and not_ready == [slow]
    assert ray.get(next(fast)) == 0
    ready, not_ready = ray.wait([slow], timeout=0)
    assert ready == [] and not_ready == [slow]
    ref = ray.put(5)  # refs and generators mixed, in input order
    ready, _ = ray.wait([slow, ref, fast], num_returns=2, timeout=20)
    assert ready == [ref, fast]
    ray.cancel(slow.completed(), force=True)


def test_error_after_k_yields(ray):
    @ray.remote
    def breaks(k):
        for i in range(k):
            yield i
        raise ValueError(f"broke after {k}")

    gen = breaks.remote(3)
    got = [ray.get(next(gen)) for _ in range(3)]
    assert got == [0, 1, 2]
    bad = next(gen)
    with pytest.raises(ValueError, match="broke after 3") as e:
        ray.get(bad)
    assert isinstance(e.value, ray.exceptions.RayTaskError)
    with pytest.raises(StopIteration):
        next(gen)


def test_actor_method_generator(ray):
    @ray.remote
    class Source:
        def __init__(self, base):
            self.base = base

        def items(self, n):
            for i in range(n):
                yield self.base + i

        def plain(self):
            return "plain"

    s = Source.remote(100)
    assert [ray.get(r) for r in s.items.remote(5)] == [100, 101, 102, 103, 104]
    assert ray.get(s.plain.remote()) == "plain"
    assert [ray.get(r) for r in s.items.options(num_returns="streaming").remote(2)] == [100, 101]


def test_generator_of_large_numpy_arrays(ray):
    np = pytest.importorskip("numpy")

    @ray.remote
    def arrays(n, mb):
        for i in range(n):
            yield np.full(mb * 1024 * 1024 // 8, float(i))

    total = 0
    for i, ref in enumerate(arrays.remote(4, 20)):
        a = ray.get(ref)
        assert a.shape == (20 * 1024 * 1024 // 8,) and a[0] == a[-1] == float(i)
        assert not a.flags.writeable  # a view of the store's shared memory
        total += 1
        del a, ref
    assert total == 4


def test_async_iteration(ray):
    import asyncio

    @ray.remote
    def count(n):
        yield from range(n)

    async def main():
        out = []
        async for ref in count.remote(4):
            out.append(await ref)
        return out

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_dynamic_refused(ray):
    @ray.remote(num_returns="dynamic")
    def g():
        yield 1

    with pytest.raises(ValueError, match="streaming"):
        g.remote()
