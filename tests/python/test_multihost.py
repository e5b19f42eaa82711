"""Ray's walkthrough and key-concepts examples on a 3-node namespace cluster
(tests/netns/python_walkthrough.sh; skipped without root and `ip netns`)."""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def test_walkthrough_on_three_hosts():
    script = os.path.join(HERE, "..", "netns", "python_walkthrough.sh")
    out = subprocess.run(["bash", script, os.environ["RAYC_BUILD"]], capture_output=True, text=True, timeout=600)
    if out.returncode == 77:
        pytest.skip("needs root and network namespaces")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    for example in ("running a task", "calling an actor", "passing an object", "tasks", "objects", "actors",
                    "cluster"):
        assert f"ok {example}\n" in out.stdout
    # print() forwarding from every node, the two without the driver included
    import re
    for n in set(re.findall(r"hello from node-(\w{8}) on ", out.stdout)):
        assert re.search(rf"\(shout pid=\d+\) hello from node-{n} on {n}\n", out.stdout), n
    assert len(set(re.findall(r"\(shout pid=\d+\) hello from node-(\w{8}) on ", out.stdout))) == 3, out.stdout
