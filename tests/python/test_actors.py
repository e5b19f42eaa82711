"""Actors through `import rayc as ray`: state, handles passed to tasks, names, restarts, kill,
max_concurrency, async actors, ActorPool, placement groups."""
import asyncio
import os
import signal
import time

import pytest


def test_counter_from_four_tasks(ray):
    @ray.remote
    class Counter:
        def __init__(self, start=0):
            self.n = start

        def incr(self, by=1):
            self.n += by
            return self.n

        def value(self):
            return self.n

    @ray.remote
    def bump(counter, times):
        return ray.get([counter.incr.remote() for _ in range(times)])[-1]

    c = Counter.remote(start=100)
    ray.get([bump.remote(c, 25) for _ in range(4)])
    assert ray.get(c.value.remote()) == 200


def test_actor_class_called_directly_raises(ray):
    @ray.remote
    class A:
        pass

    with pytest.raises(TypeError, match="remote"):
        A()


def test_named_detached_actor_from_second_driver(ray, cluster):
    @ray.remote
    class Store:
        def __init__(self):
            self.d = {}

        def set(self, k, v):
            self.d[k] = v

        def get(self, k):
            return self.d.get(k)

    s = Store.options(name="shared-store", lifetime="detached", namespace="tests").remote()
    ray.get(s.set.remote("answer", 42))
    out = cluster.run_driver(
        "import rayc as ray\n"
        "ray.init()\n"
        "s = ray.get_actor('shared-store', namespace='tests')\n"
        "print(ray.get(s.get.remote('answer')))\n")
    assert out.strip().splitlines()[-1] == "42"
    with pytest.raises(ValueError, match="already"):
        Store.options(name="shared-store", namespace="tests").remote()
    with pytest.raises(ValueError):
        ray.get_actor("no-such-actor")
    ray.kill(s)


def test_actor_restarts_after_its_process_dies(ray):
    @ray.remote(max_restarts=1, max_task_retries=1)
    class Pid:
        def pid(self):
            return os.getpid()

    a = Pid.remote()
    first = ray.get(a.pid.remote())
    os.kill(first, signal.SIGKILL)
    deadline = time.time() + 60
    while True:
        try:
            second = ray.get(a.pid.remote(), timeout=60)
            break
        except ray.exceptions.RayActorError:
            assert time.time() < deadline
            time.sleep(0.2)
    assert second != first


def test_share_worker_actors_share_a_process(ray):
    @ray.remote(share_worker=True)
    class Box:
        def __init__(self, v):
            self.v = v

        def get(self):
            return self.v, os.getpid()

    boxes = [Box.remote(i) for i in range(6)]
    got = ray.get([b.get.remote() for b in boxes], timeout=120)
    assert [v for v, _ in got] == list(range(6))  # each keeps its own state
    assert len({pid for _, pid in got}) < 6  # in fewer processes than actors
    ray.kill(boxes[0])
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(boxes[0].get.remote(), timeout=60)
    assert ray.get(boxes[1].get.remote(), timeout=60)[0] == 1  # a sibling lives on
    own = Box.options(share_worker=False).remote(9)
    assert ray.get(own.get.remote(), timeout=60)[1] not in {pid for _, pid in got}


def _thread_switches(pid, name):
    """Context switches so far of process pid's thread called name (None: no such thread)."""
    total = None
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() != name:
                continue
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                    total = (total or 0) + int(value)
    return total


def test_idle_actor_worker_sleeps(ray):
    # A Python actor's worker looks its class and methods up in the GCS's KV; that used to keep
    # its background thread ticking every 20 ms for the rest of its life (~0.25% of a core per
    # idle actor). An idle actor now costs nothing: a few wake-ups in 3 s at most.
    @ray.remote
    class Idle:
        def pid(self):
            return os.getpid()

    a = Idle.remote()
    pid = ray.get(a.pid.remote())
    time.sleep(1.5)  # past the call's grace period and the task events' report
    before = _thread_switches(pid, "cw-bg")
    assert before is not None, f"actor worker {pid} has no cw-bg thread"
    time.sleep(3)
    woke = _thread_switches(pid, "cw-bg") - before
    assert woke <= 4, f"an idle actor's background thread woke {woke} times in 3 s (ticking?)"
    assert ray.get(a.pid.remote()) == pid


def test_kill_and_dead_actor_error(ray):
    @ray.remote
    class A:
        def ping(self):
            return "pong"

    a = A.remote()
    assert ray.get(a.ping.remote()) == "pong"
    ray.kill(a)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(a.ping.remote(), timeout=60)


def test_constructor_error_kills_actor(ray):
    @ray.remote
    class Bad:
        def __init__(self):
            raise RuntimeError("cannot start")

        def ping(self):
            return 1

    b = Bad.remote()
    with pytest.raises(ray.exceptions.RayActorError, match="cannot start"):
        ray.get(b.ping.remote(), timeout=60)


def test_max_concurrency_threads(ray):
    @ray.remote(max_concurrency=4)
    class Sleeper:
        def nap(self):
            time.sleep(1)
            return True

    s = Sleeper.remote()
    ray.get(s.nap.remote())
    t0 = time.time()
    assert all(ray.get([s.nap.remote() for _ in range(4)]))
    assert time.time() - t0 < 3


def test_async_actor_runs_coroutines_concurrently(ray):
    @ray.remote
    class AsyncActor:
        async def nap(self, i):
            await asyncio.sleep(1)
            return i

        def loop_thread(self):
            return asyncio.get_running_loop() is not None

    a = AsyncActor.remote()
    assert ray.get(a.loop_thread.remote())  # sync methods run on the event loop's thread
    t0 = time.time()
    assert ray.get([a.nap.remote(i) for i in range(10)]) == list(range(10))
    assert time.time() - t0 < 5


def test_object_ref_awaitable(ray):
    @ray.remote
    def f(x):
        return x * 2

    async def main():
        return await f.remote(21)

    assert asyncio.run(main()) == 42


def test_actor_pool(ray):
    from rayc.util import ActorPool

    @ray.remote
    class Doubler:
        def double(self, x):
            return 2 * x

    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])) == [2, 4, 6, 8]


def test_placement_group(ray):
    from rayc.util.placement_group import placement_group, remove_placement_group
    from rayc.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")
    assert ray.get(pg.ready(), timeout=60)

    @ray.remote(num_cpus=1)
    def inside():
        return ray.get_runtime_context().get_node_id()

    node = ray.get(inside.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote())
    assert node == ray.get_runtime_context().get_node_id()
    remove_placement_group(pg)
    with pytest.raises(ValueError):
        placement_group([{"CPU": 1}], strategy="NOT_A_STRATEGY")
