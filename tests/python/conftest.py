"""Fixtures of the Python tests: a real head node (rayc start: GCS, raylet, store as processes)
per test module, and this process connected to it as a driver (import rayc as ray)."""
import os
import subprocess
import sys
import tempfile

import pytest

BUILD = os.environ["RAYC_BUILD"]
RAYC = os.path.join(BUILD, "bin", "rayc")


class Cluster:
    def __init__(self, num_cpus=4, extra=(), env=None):
        self.temp = tempfile.mkdtemp(prefix="rayc-pytest-")
        # a fresh head: no RAYC_* of an earlier module's cluster (its token file is gone)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RAYC_") or k == "RAYC_BUILD"}
        clean.update(env or {})  # daemon settings for this cluster (RAYC_MEMORY_LIMIT, ...)
        out = subprocess.run([RAYC, "start", "--head", "--port", "0", "--temp-dir", self.temp,
                              "--num-cpus", str(num_cpus), *extra], capture_output=True, text=True, env=clean)
        assert out.returncode == 0, out.stdout + out.stderr
        with open(os.path.join(self.temp, "session_latest", "address")) as f:
            self.address = f.read().strip()
        self.env = dict(os.environ, RAYC_ADDRESS=self.address,
                        RAYC_TOKEN_FILE=os.path.join(self.temp, "cluster_token"),
                        RAYC_CODE_PATH=os.path.join(BUILD, "lib", "libtest_tasks.so"))

    def run_driver(self, code, timeout=120):
        """Runs code in a second driver process; returns its stdout."""
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def stop(self):
        plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # (asan runs preload libasan)
        subprocess.run([RAYC, "stop", "--temp-dir", self.temp], capture_output=True)
        left = subprocess.run(["pgrep", "-f", self.temp], capture_output=True, text=True, env=plain,
                              timeout=60).stdout.split()
        assert not left, f"processes of the session left after rayc stop: {left}"
        reports = subprocess.run(["grep", "-l", "-r", "-E", "Sanitizer|runtime error", "--include=*.out", self.temp],
                                 capture_output=True, text=True, env=plain).stdout.split()
        assert not reports, f"sanitizer reports in {reports}"
        subprocess.run(["rm", "-rf", self.temp])


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    os.environ.update({k: c.env[k] for k in ("RAYC_ADDRESS", "RAYC_TOKEN_FILE", "RAYC_CODE_PATH")})
    import rayc as ray
    ray.init(address=c.address)
    yield c
    ray.shutdown()
    c.stop()
    for k in ("RAYC_ADDRESS", "RAYC_TOKEN_FILE", "RAYC_CODE_PATH"):
        os.environ.pop(k, None)


@pytest.fixture
def ray(cluster):
    import rayc
    return rayc
