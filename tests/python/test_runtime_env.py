"""runtime_env given to init() (env_vars and working_dir reach the job's workers; other keys are
refused), and ObjectRefs as actor constructor arguments (resolved to their values first)."""
import os
import tempfile
import textwrap

import pytest


def test_init_runtime_env_reaches_workers(cluster):
    wd = tempfile.mkdtemp(prefix="rayc-wd-")
    with open(os.path.join(wd, "helper_mod.py"), "w") as f:
        f.write("def shout(s):\n    return s.upper() + '!'\n")
    os.makedirs(os.path.join(wd, "data"))
    with open(os.path.join(wd, "data", "words.txt"), "w") as f:
        f.write("from the working dir\n")
    code = textwrap.dedent(f"""
        import os
        import rayc as ray
        ray.init(runtime_env={{"env_vars": {{"GREETING": "hello"}}, "working_dir": {wd!r}}})

        @ray.remote
        def probe():
            import helper_mod
            with open("data/words.txt") as f:
                words = f.read().strip()
            return os.environ.get("GREETING"), helper_mod.shout("hi"), words, os.getcwd() != {wd!r}

        @ray.remote
        class Probe:
            def env(self):
                return os.environ.get("GREETING")

        print(ray.get(probe.remote()))
        print(ray.get(Probe.remote().env.remote()))
        print("driver", os.environ.get("GREETING"))
    """)
    out = cluster.run_driver(code).splitlines()
    assert out[0] == "('hello', 'HI!', 'from the working dir', True)"  # a copy of the dir, not the dir
    assert out[1] == "hello"
    assert out[2] == "driver None"  # as in Ray: the driver's own environment is left alone


def test_init_runtime_env_unsupported_keys(cluster):
    code = textwrap.dedent("""
        import rayc as ray
        for env, kind in (({"pip": ["requests"]}, ValueError), ({"env_vars": {"A": 1}}, TypeError),
                          ({"working_dir": "/no/such/dir"}, ValueError)):
            try:
                ray.init(runtime_env=env)
            except kind as e:
                print(type(e).__name__, e)
            assert not ray.is_initialized()
    """)
    out = cluster.run_driver(code)
    assert "ValueError runtime_env keys ['pip'] are not supported by rayc" in out
    assert "TypeError runtime_env['env_vars'] must map str names to str values" in out
    assert "ValueError runtime_env['working_dir'] must be a local directory" in out


def test_object_ref_as_actor_constructor_argument(ray):
    np = pytest.importorskip("numpy")

    @ray.remote
    def make(n):
        return list(range(n))

    @ray.remote
    class Holder:
        def __init__(self, items, arr, scale=1):
            self.total = sum(items) * scale + int(arr.sum())

        def get(self):
            return self.total

    arr_ref = ray.put(np.ones(1 << 16, dtype=np.int64))  # 512 KiB: in the store
    h = Holder.remote(make.remote(5), arr_ref, scale=ray.put(10))
    assert ray.get(h.get.remote()) == 100 + (1 << 16)


def test_failed_constructor_argument(ray):
    @ray.remote
    def boom():
        raise ValueError("no argument for you")

    @ray.remote
    class Holder:
        def __init__(self, x):
            self.x = x

    with pytest.raises(ValueError, match="no argument for you"):
        Holder.remote(boom.remote())
