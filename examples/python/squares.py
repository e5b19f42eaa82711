"""The README's Python job: Ray's first program, run on a rayc cluster with only the import changed.

Submit it with `rayc job submit --working-dir examples/python -- python3 squares.py`.
"""
import rayc as ray

ray.init()  # inside a job: the cluster the job runs on (RAYC_ADDRESS)


@ray.remote
def square(x):
    return x * x


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self, by):
        self.n += by
        return self.n


squares = ray.get([square.remote(i) for i in range(4)])
print("squares:", squares)
assert squares == [0, 1, 4, 9]

counter = Counter.remote()
total = ray.get([counter.incr.remote(s) for s in squares])[-1]
print("sum of squares counted by an actor:", total)
assert total == 14

print("nodes:", len(ray.nodes()), "CPUs:", ray.cluster_resources().get("CPU"))
