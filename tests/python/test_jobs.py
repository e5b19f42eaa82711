"""`rayc job submit -- python3 script.py`: a Python entrypoint whose working dir is the import path
of its tasks on the workers."""
import os
import subprocess

from conftest import RAYC


def test_python_entrypoint_with_working_dir(cluster, tmp_path):
    wd = tmp_path / "project"
    wd.mkdir()
    (wd / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (wd / "script.py").write_text(
        "import rayc as ray\n"
        "import helper\n"
        "ray.init()\n"
        "@ray.remote\n"
        "def f(x):\n"
        "    import helper\n"
        "    return helper.twice(x)\n"
        "print('result', ray.get([f.remote(i) for i in range(4)]))\n")
    out = subprocess.run([RAYC, "job", "submit", "--address", cluster.address, "--working-dir", str(wd),
                          "--env", f"PYTHONPATH={os.environ['PYTHONPATH']}", "--", "/usr/bin/python3", "script.py"],
                         env=cluster.env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "result [0, 2, 4, 6]" in out.stdout
