"""Ray's ray_perf.py Python rows on rayc (`import rayc as ray`), named as Ray names them with a
`python_` prefix. bench/run-bench runs it once per metric against its head node:

    python3 bench/python_perf.py METRIC REPS

and reads `rep NAME VALUE UNIT` lines (one per repetition of BENCH_REP_SECONDS, default 1 s)."""
import os
import sys
import time

import rayc as ray

REP_SECONDS = float(os.environ.get("BENCH_REP_SECONDS", "1"))


@ray.remote
def small_value():
    return b"ok"


@ray.remote
class Actor:
    def small_value(self):
        return b"ok"


def timeit(name, fn, multiplier, reps, unit="/s"):
    fn()  # warm-up: workers started, functions exported
    for _ in range(reps):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < REP_SECONDS:
            fn()
            count += 1
        print(f"rep {name} {count * multiplier / (time.perf_counter() - start):.6g} {unit}", flush=True)


def main(metric, reps):
    ray.init()
    name = "python_" + metric
    if metric == "single_client_tasks_sync":
        timeit(name, lambda: ray.get(small_value.remote()), 1, reps)
    elif metric == "single_client_tasks_async":
        timeit(name, lambda: ray.get([small_value.remote() for _ in range(1000)]), 1000, reps)
    elif metric == "1_1_actor_calls_sync":
        a = Actor.remote()
        timeit(name, lambda: ray.get(a.small_value.remote()), 1, reps)
    elif metric == "1_1_actor_calls_async":
        a = Actor.remote()
        timeit(name, lambda: ray.get([a.small_value.remote() for _ in range(1000)]), 1000, reps)
    elif metric == "single_client_put_calls_Plasma_Store":
        timeit(name, lambda: ray.put(0), 1, reps)
    elif metric == "single_client_get_calls_Plasma_Store":
        ref = ray.put(0)
        timeit(name, lambda: ray.get(ref), 1, reps)
    elif metric == "single_client_put_gigabytes":
        import numpy as np
        arr = np.zeros(100 * 1024 * 1024, dtype=np.int64)  # 800 MB, as Ray's row
        timeit(name, lambda: ray.put(arr), 8 * 0.1024 * 1.024 * 1.024, reps, "GB/s")
    else:
        print(f"error {metric} unknown metric")
        return 1
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5))
