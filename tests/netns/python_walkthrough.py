"""Ray's "Ray Core walkthrough" and "Key concepts" examples, as Ray documents them, with only
`import ray` changed to `import rayc as ray`, run as a driver of a 3-node cluster
(python_walkthrough.sh); then checks that the work really spread over the nodes. Prints one
"ok <name>" line per example; any failure raises."""
import sys
import time

import rayc as ray

ray.init()

# ---- walkthrough: running a task ----
# Define the square task.
@ray.remote
def square(x):
    return x * x

# Launch four parallel square tasks.
futures = [square.remote(i) for i in range(4)]

# Retrieve results.
print(ray.get(futures))
# -> [0, 1, 4, 9]
assert ray.get(futures) == [0, 1, 4, 9]
print("ok running a task")

# ---- walkthrough: calling an actor ----
# Define the Counter actor.
@ray.remote
class Counter:
    def __init__(self):
        self.i = 0

    def get(self):
        return self.i

    def incr(self, value):
        self.i += value

# Create a Counter actor.
c = Counter.remote()

# Submit calls to the actor. These calls run asynchronously but in
# submission order on the remote actor process.
for _ in range(10):
    c.incr.remote(1)

# Retrieve final actor state.
print(ray.get(c.get.remote()))
# -> 10
assert ray.get(c.get.remote()) == 10
print("ok calling an actor")

# ---- walkthrough: passing an object ----
import numpy as np

# Define a task that sums the values in a matrix.
@ray.remote
def sum_matrix(matrix):
    return np.sum(matrix)

# Call the task with a literal argument value.
print(ray.get(sum_matrix.remote(np.ones((100, 100)))))
# -> 10000.0
assert ray.get(sum_matrix.remote(np.ones((100, 100)))) == 10000.0

# Put a large array into the object store.
matrix_ref = ray.put(np.ones((1000, 1000)))

# Call the task with the object reference as an argument.
print(ray.get(sum_matrix.remote(matrix_ref)))
# -> 1000000.0
assert ray.get(sum_matrix.remote(matrix_ref)) == 1000000.0
print("ok passing an object")

# ---- key concepts / tasks ----
@ray.remote
def my_function():
    return 1

obj_ref = my_function.remote()
assert ray.get(obj_ref) == 1

@ray.remote
def slow_function():
    time.sleep(1)
    return 1

for _ in range(4):
    slow_function.remote()

@ray.remote(num_cpus=2)  # (Ray's example asks for num_gpus=1; these nodes have no GPU)
def f():
    return 1

assert ray.get(f.remote()) == 1

@ray.remote
def function_with_an_argument(value):
    return value + 1

obj_ref1 = my_function.remote()
assert ray.get(obj_ref1) == 1
obj_ref2 = function_with_an_argument.remote(obj_ref1)
assert ray.get(obj_ref2) == 2

object_refs = [slow_function.remote() for _ in range(2)]
ready_refs, remaining_refs = ray.wait(object_refs, num_returns=1, timeout=None)
assert len(ready_refs) == 1 and len(remaining_refs) == 1

@ray.remote(num_returns=3)
def return_multiple():
    return 1, 2, 3

a, b, c3 = return_multiple.remote()
assert ray.get([a, b, c3]) == [1, 2, 3]

@ray.remote
def blocking_operation():
    time.sleep(10e6)

obj_ref = blocking_operation.remote()
time.sleep(1)  # (so that it is running, not just queued)
ray.cancel(obj_ref)
try:
    ray.get(obj_ref)
except ray.exceptions.TaskCancelledError:
    print("Object reference was cancelled.")
else:
    raise AssertionError("not cancelled")
print("ok tasks")

# ---- key concepts / objects ----
y = 1
object_ref = ray.put(y)
assert ray.get(object_ref) == 1
obj_ref = ray.put(1)
assert ray.get(obj_ref) == 1
assert ray.get([ray.put(i) for i in range(3)]) == [0, 1, 2]
from rayc.exceptions import GetTimeoutError

@ray.remote
def long_running_function():
    time.sleep(8)

obj_ref = long_running_function.remote()
try:
    ray.get(obj_ref, timeout=4)
except GetTimeoutError:
    print("`get` timed out.")
else:
    raise AssertionError("no timeout")
print("ok objects")

# ---- key concepts / actors ----
@ray.remote
class Counter2:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value

    def get_counter(self):
        return self.value

counter = Counter2.remote()
obj_ref = counter.increment.remote()
assert ray.get(obj_ref) == 1
counters = [Counter2.remote() for _ in range(4)]
[cc.increment.remote() for cc in counters]
results = ray.get([cc.get_counter.remote() for cc in counters])
assert results == [1, 1, 1, 1]

@ray.remote
def g(counter):
    for _ in range(10):
        time.sleep(0.1)
        counter.increment.remote()

counter = Counter2.remote()
[g.remote(counter) for _ in range(3)]
deadline = time.time() + 60
while ray.get(counter.get_counter.remote()) < 30:
    assert time.time() < deadline
    time.sleep(0.2)
print("ok actors")

# ---- the cluster: SPREAD over the three nodes, node affinity, a placement group ----
from rayc.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from rayc.util.placement_group import placement_group

@ray.remote(num_cpus=1)
def where():
    time.sleep(0.5)
    return ray.get_runtime_context().get_node_id()

nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
assert len(nodes) == 3, nodes
assert ray.cluster_resources()["CPU"] == 6
spread = set(ray.get([where.options(scheduling_strategy="SPREAD").remote() for _ in range(6)]))
assert spread == nodes, (spread, nodes)
for n in nodes:
    pin = NodeAffinitySchedulingStrategy(node_id=n, soft=False)
    got = ray.get(where.options(scheduling_strategy=pin).remote())
    assert got == n, (got, n)
pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
assert ray.get(pg.ready(), timeout=60)
print("ok cluster")

# print() in tasks on every node reaches this driver's stdout (the other nodes' through the GCS KV)
@ray.remote(num_cpus=0)
def shout(tag):
    print(f"hello from {tag} on {ray.get_runtime_context().get_node_id()[:8]}")
    return ray.get_runtime_context().get_node_id()

me = ray.get_runtime_context().get_node_id()
for i, n in enumerate(sorted(nodes)):
    pin = NodeAffinitySchedulingStrategy(node_id=n, soft=False)
    assert ray.get(shout.options(scheduling_strategy=pin).remote(f"node-{n[:8]}")) == n
time.sleep(2)  # the lines are flushed to the driver within about half a second
sys.stdout.flush()
print("ok printing on", len(nodes), "nodes")
print("ALL OK")
