"""Tasks, objects, wait, errors and cancellation through `import rayc as ray`, against a real head
node (conftest.py)."""
import os
import time

import pytest


def test_quick_start(ray):
    @ray.remote
    def square(x):
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]


def test_remote_function_called_directly_raises(ray):
    @ray.remote
    def f():
        return 1

    with pytest.raises(TypeError, match="remote"):
        f()


def test_options_kwargs_and_multiple_returns(ray):
    @ray.remote(num_returns=2)
    def pair(a, b=10, *, c=100):
        return a + b, a + c

    r1, r2 = pair.remote(1, c=5)
    assert ray.get([r1, r2]) == [11, 6]
    assert ray.get(pair.options(num_returns=2, num_cpus=0.5).remote(2, b=3)) == [5, 102]


def test_nested_tasks(ray):
    @ray.remote
    def leaf(x):
        return x + 1

    @ray.remote
    def parent(n):
        return sum(ray.get([leaf.remote(i) for i in range(n)]))

    assert ray.get(parent.remote(10)) == sum(range(1, 11))


def test_recursive_tasks_do_not_deadlock(ray):
    """A task blocked in get gives its CPU back: a recursion deeper than the node's 4 CPUs."""
    @ray.remote
    def fact(n):
        return 1 if n <= 1 else n * ray.get(fact.remote(n - 1))

    assert ray.get(fact.remote(8), timeout=120) == 40320


def test_fan_out_fan_in_10000(ray):
    @ray.remote
    def one(i):
        return i

    @ray.remote
    def total(*xs):
        return sum(xs)

    refs = [one.remote(i) for i in range(10000)]
    partial = [total.remote(*refs[i:i + 100]) for i in range(0, 10000, 100)]
    assert ray.get(total.remote(*partial), timeout=300) == sum(range(10000))


def test_put_get_and_ref_arguments(ray):
    ref = ray.put({"a": [1, 2, 3]})
    assert ray.get(ref) == {"a": [1, 2, 3]}

    @ray.remote
    def size(d):
        return len(d["a"])

    assert ray.get(size.remote(ref)) == 3  # a top-level ref is resolved before the call
    with pytest.raises(TypeError):
        ray.put(ref)


def test_nested_refs_stay_refs(ray):
    inner = ray.put(41)

    @ray.remote
    def kinds(lst, d):
        return type(lst[0]).__name__, type(d["k"]).__name__, ray.get(lst[0]) + 1

    assert ray.get(kinds.remote([inner], {"k": inner})) == ("ObjectRef", "ObjectRef", 42)


def test_borrowed_ref_outlives_the_task(ray):
    @ray.remote
    class Keeper:
        def __init__(self):
            self.kept = None

        def keep(self, lst):
            self.kept = lst[0]
            return True

        def read(self):
            return ray.get(self.kept)

    k = Keeper.remote()
    ref = ray.put("kept value")
    assert ray.get(k.keep.remote([ref]))
    del ref
    time.sleep(0.5)
    assert ray.get(k.read.remote()) == "kept value"


def test_wait_semantics(ray):
    @ray.remote
    def sleepy(t):
        time.sleep(t)
        return t

    @ray.remote
    def boom():
        raise ValueError("no")

    # slow first: fast and bad must not wait behind it on its worker (worker/cw_push.c pipelines
    # only behind functions known to run short)
    slow, fast, bad = sleepy.remote(120), sleepy.remote(0), boom.remote()
    ready, not_ready = ray.wait([slow, fast, bad], num_returns=2, timeout=60)  # generous: a loaded machine
    assert ready == [fast, bad] and not_ready == [slow]  # input order; a failed task is ready
    ready, not_ready = ray.wait([slow, fast])  # num_returns defaults to 1
    assert ready == [fast] and not_ready == [slow]
    t0 = time.time()
    ready, not_ready = ray.wait([slow], timeout=0)  # polls
    assert ready == [] and not_ready == [slow] and time.time() - t0 < 2
    ray.cancel(slow, force=True)


def test_get_timeout(ray):
    @ray.remote
    def sleepy():
        time.sleep(30)

    ref = sleepy.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(ref, timeout=0.5)
    ray.cancel(ref, force=True)


def test_remote_error_keeps_its_type_and_traceback(ray):
    @ray.remote
    def bad(x):
        raise ValueError(f"bad input {x}")

    with pytest.raises(ValueError) as info:
        ray.get(bad.remote(7))
    err = info.value
    assert isinstance(err, ray.exceptions.RayTaskError)
    text = str(err)
    assert "bad input 7" in text and "Traceback" in text and "raise ValueError" in text
    assert "node" in text and "pid" in text


def test_unpicklable_value_names_it(ray):
    import threading

    @ray.remote
    def f(x):
        return 1

    with pytest.raises(TypeError, match="lock"):
        f.remote(threading.Lock())


def test_worker_killed_mid_task_is_retried(ray, tmp_path):
    marker = str(tmp_path / "attempted")

    @ray.remote(max_retries=2)
    def die_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            os.kill(os.getpid(), 9)
        return "second attempt"

    assert ray.get(die_once.remote(marker), timeout=120) == "second attempt"


def test_worker_crash_without_retries(ray):
    @ray.remote(max_retries=0)
    def die():
        os.kill(os.getpid(), 9)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(die.remote(), timeout=120)


def test_cancel(ray):
    @ray.remote
    def forever():
        while True:
            time.sleep(0.1)

    ref = forever.remote()
    time.sleep(1)
    ray.cancel(ref, force=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)


def test_cross_language_c_function(ray):
    import struct
    add = ray.cross_language.c_function("add")
    ref = add.remote(struct.pack("<q", 40), struct.pack("<q", 2))
    assert struct.unpack("<q", ray.get(ref))[0] == 42


def test_runtime_context_and_cluster(ray):
    ctx = ray.get_runtime_context()
    assert len(ctx.get_node_id()) == 56 and len(ctx.get_job_id()) == 8
    nodes = ray.nodes()
    assert len(nodes) == 1 and nodes[0]["Alive"] and nodes[0]["NodeID"] == ctx.get_node_id()
    assert ray.cluster_resources()["CPU"] == 4

    @ray.remote
    def where():
        c = ray.get_runtime_context()
        return c.get_node_id(), c.get_task_id()

    node, task = ray.get(where.remote())
    assert node == ctx.get_node_id() and task and len(task) == 48


def test_second_init_raises(ray, cluster):
    with pytest.raises(RuntimeError, match="ignore_reinit_error"):
        ray.init(address=cluster.address)
    ray.init(address=cluster.address, ignore_reinit_error=True)
    assert ray.is_initialized()


def test_submodules_reachable_after_import():
    import rayc
    assert rayc.util.placement_group and rayc.exceptions.RayTaskError and rayc.actor.ActorHandle
    assert rayc.util.scheduling_strategies.NodeAffinitySchedulingStrategy


def test_print_is_forwarded_to_the_driver(ray, capfd):
    @ray.remote
    def chatty(i):
        print(f"hello from task {i}")
        return os.getpid()

    pid = ray.get(chatty.remote(7))
    deadline = time.time() + 10
    seen = ""
    while time.time() < deadline:
        seen += capfd.readouterr().out
        if "hello from task 7" in seen:
            break
        time.sleep(0.1)
    line = [l for l in seen.splitlines() if "hello from task 7" in l]
    assert line and line[0] == f"(chatty pid={pid}) hello from task 7"


def test_cancel_running_task_without_force(ray):
    """Ray's example: ray.cancel interrupts a task blocked in a long sleep."""
    @ray.remote
    def blocking_operation():
        time.sleep(10e6)

    obj_ref = blocking_operation.remote()
    time.sleep(1)
    ray.cancel(obj_ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(obj_ref, timeout=60)

    @ray.remote
    def still_fine():
        return "worker still serves"

    assert ray.get(still_fine.remote(), timeout=60) == "worker still serves"


def test_c_driver_calls_python_function_by_name(ray, cluster):
    import subprocess

    def concat(a, b):
        return a + b"-" + b

    ray.cross_language.export_function("concat", concat)
    drv = os.path.join(os.environ["RAYC_BUILD"], "tests", "drivers", "py_call")
    out = subprocess.run([drv, "concat", "left", "right"], env=cluster.env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "left-right"
