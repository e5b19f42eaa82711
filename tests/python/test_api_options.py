"""API items of issue 14 that the other modules do not reach: retry_exceptions, kill(no_restart=False)
restarting an actor, available_resources() while a task holds CPUs, wait(fetch_local=False),
num_gpus on a cluster without GPUs (the task waits) and memory= (the task runs)."""
import os
import tempfile
import time


def poll(cond, timeout=60):
    """Polls cond() until it is true (a loaded machine may take a few heartbeats)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    return cond()


def test_retry_exceptions(ray):
    marker = tempfile.mktemp(prefix="rayc-retry-")

    @ray.remote(max_retries=2)
    def flaky(path):
        if not os.path.exists(path):
            open(path, "w").close()
            raise ValueError("first attempt fails")
        return "second attempt"

    with_retry = flaky.options(retry_exceptions=True)
    assert ray.get(with_retry.remote(marker), timeout=120) == "second attempt"
    os.unlink(marker)
    try:
        ray.get(flaky.remote(marker), timeout=120)  # application errors are not retried by default
        raise AssertionError("the ValueError was retried without retry_exceptions")
    except ValueError as e:
        assert "first attempt fails" in str(e)
    finally:
        os.unlink(marker)


def test_kill_without_no_restart_restarts_the_actor(ray):
    @ray.remote(max_restarts=1)
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n, os.getpid()

    c = Counter.remote()
    assert ray.get(c.incr.remote())[0] == 1
    n, pid = ray.get(c.incr.remote())
    assert n == 2
    ray.kill(c, no_restart=False)

    def restarted():
        try:
            return ray.get(c.incr.remote(), timeout=30)
        except ray.exceptions.RayActorError:
            return None
    n2, pid2 = poll(restarted, 120)
    assert n2 == 1 and pid2 != pid  # a new process, constructed again
    ray.kill(c)  # no_restart=True by default: gone for good
    try:
        ray.get(c.incr.remote(), timeout=60)
        raise AssertionError("the actor answered after kill()")
    except ray.exceptions.RayActorError:
        pass


def test_available_resources_while_a_task_holds_cpus(ray):
    total = ray.cluster_resources()["CPU"]
    assert poll(lambda: ray.available_resources().get("CPU") == total)
    release = tempfile.mktemp(prefix="rayc-hold-")

    @ray.remote(num_cpus=2)
    def hold(path):
        while not os.path.exists(path):
            time.sleep(0.05)
        return "done"

    ref = hold.remote(release)
    try:
        assert poll(lambda: ray.available_resources().get("CPU") == total - 2), ray.available_resources()
    finally:
        open(release, "w").close()
    assert ray.get(ref, timeout=60) == "done"
    assert poll(lambda: ray.available_resources().get("CPU") == total), ray.available_resources()
    os.unlink(release)


def test_wait_fetch_local_false(ray):
    @ray.remote
    def value(x):
        return x

    refs = [value.remote(i) for i in range(4)]
    ready, not_ready = ray.wait(refs, num_returns=4, timeout=60, fetch_local=False)
    assert ready == refs and not_ready == []
    assert ray.get(ready) == [0, 1, 2, 3]


def test_num_gpus_waits_and_memory_runs(ray):
    @ray.remote
    def ok():
        return "ran"

    assert ray.get(ok.options(memory=50 * 1024 * 1024).remote(), timeout=60) == "ran"
    gpu = ok.options(num_gpus=1).remote()  # no node has a GPU: the task waits, as in Ray
    ready, not_ready = ray.wait([gpu], timeout=1.0)
    assert ready == [] and not_ready == [gpu]
    ray.cancel(gpu)
    try:
        ray.get(gpu, timeout=60)
        raise AssertionError("a cancelled task returned a value")
    except ray.exceptions.TaskCancelledError:
        pass
