"""runtime_env given to init(): Ray's env_vars and working_dir for the job's Python workers.

The driver checks it and publishes it once in the GCS KV (namespace rayc_fn, key
<job>:runtime_env, JSON; the working dir as a zip archive under <job>:working_dir, named by its
SHA-256). Workers belong to one job, so each applies it once, before its first task: env_vars go
into os.environ; the working dir is unpacked once per node under <session>/runtime_env/py_<sha>/
and becomes the worker's current directory and the first entry of its import path. Other keys
(pip, conda, container, py_modules...) raise ValueError: rayc does not install software.
"""
import hashlib
import io
import json
import os
import sys
import zipfile

from . import _core, _rayc

SUPPORTED = ("env_vars", "working_dir")
MAX_WORKING_DIR = 100 << 20  # zipped bytes, kept in the GCS KV
KEY = "{}:runtime_env"
DIR_KEY = "{}:working_dir"


def check(runtime_env):
    """Raises ValueError/TypeError for what rayc cannot honour; returns the env as a dict."""
    if runtime_env is None:
        return {}
    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(runtime_env).__name__}")
    bad = sorted(k for k, v in runtime_env.items() if k not in SUPPORTED and v)
    if bad:
        raise ValueError(f"runtime_env keys {bad} are not supported by rayc (supported: env_vars, working_dir)")
    env = runtime_env.get("env_vars") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise TypeError("runtime_env['env_vars'] must map str names to str values")
    wd = runtime_env.get("working_dir")
    if wd is not None and (not isinstance(wd, (str, os.PathLike)) or not os.path.isdir(wd)):
        raise ValueError(f"runtime_env['working_dir'] must be a local directory, got {wd!r}")
    return {"env_vars": dict(env), "working_dir": os.fspath(wd) if wd is not None else None}


def _zip_dir(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
            for f in sorted(files):
                full = os.path.join(root, f)
                z.write(full, os.path.relpath(full, path))
                if buf.tell() > MAX_WORKING_DIR:
                    raise ValueError(f"runtime_env['working_dir'] {path} is larger than "
                                     f"{MAX_WORKING_DIR >> 20} MiB zipped")
    return buf.getvalue()


def publish(env):
    """Stores the checked env for this job's workers (the driver, right after connecting)."""
    if not env or not (env["env_vars"] or env["working_dir"]):
        return
    job = _core.job_hex()
    record = {"env_vars": env["env_vars"], "working_dir": None}
    if env["working_dir"]:
        data = _zip_dir(env["working_dir"])
        record["working_dir"] = hashlib.sha256(data).hexdigest()
        _rayc.kv_put(_core.FN_NAMESPACE, DIR_KEY.format(job).encode(), data, True)
    _rayc.kv_put(_core.FN_NAMESPACE, KEY.format(job).encode(), json.dumps(record).encode(), True)


def _unpack(job, sha, session_dir):
    root = os.path.join(session_dir or "/tmp", "runtime_env")
    dest = os.path.join(root, "py_" + sha)
    if os.path.isdir(dest):
        return dest
    data = _rayc.kv_get(_core.FN_NAMESPACE, DIR_KEY.format(job).encode())
    if data is None or hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"the job's working_dir (sha256 {sha}) is not in the GCS")
    tmp = f"{dest}.tmp{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(tmp)
    try:
        os.rename(tmp, dest)  # another worker of this node may have won: use its copy
    except OSError:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def apply_in_worker(job, session_dir):
    """Before the worker's first task: the job's env_vars and working dir, if it has them."""
    data = _rayc.kv_get(_core.FN_NAMESPACE, KEY.format(job).encode())
    if data is None:
        return
    record = json.loads(data)
    os.environ.update(record.get("env_vars") or {})
    if record.get("working_dir"):
        dest = _unpack(job, record["working_dir"], session_dir)
        os.chdir(dest)
        if dest not in sys.path:
            sys.path.insert(0, dest)
