"""The raylet's memory monitor seen from Python: a task whose worker is killed for memory raises
Ray's OutOfMemoryError (rayc.exceptions), with the node, the worker's RSS and the threshold."""
import os

import pytest

from conftest import Cluster


@pytest.fixture(scope="module")
def oom_ray():
    c = Cluster(num_cpus=2, env={"RAYC_MEMORY_LIMIT": "300M", "RAYC_MEMORY_MONITOR_REFRESH_MS": "50"})
    saved = {k: os.environ.get(k) for k in ("RAYC_ADDRESS", "RAYC_TOKEN_FILE", "RAYC_CODE_PATH")}
    os.environ.update({k: c.env[k] for k in saved})
    import rayc
    rayc.init(address=c.address)
    yield rayc
    rayc.shutdown()
    c.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_oom_kill_raises_out_of_memory_error(oom_ray):
    ray = oom_ray

    @ray.remote(max_retries=0)
    def hog(mib):
        import time
        held = []
        for _ in range(mib // 8):
            held.append(b"\x01" * (8 << 20))  # written: resident
            time.sleep(0.02)
        return len(held) * 8

    @ray.remote
    def small():
        return sum(bytearray(b"\x02" * (16 << 20)))

    ok = small.remote()
    with pytest.raises(ray.exceptions.OutOfMemoryError) as e:
        ray.get(hog.remote(600), timeout=120)
    assert isinstance(e.value, ray.exceptions.RayError)
    assert "memory monitor of node" in str(e.value) and "threshold of 95%" in str(e.value)
    assert ray.get(ok, timeout=60) == 2 * (16 << 20)
