"""print() in tasks shows up in the driver's terminal, as in Ray.

Worker side: sys.stdout and sys.stderr become line writers that prefix each line with the running
task's name and the worker's pid, and tag it with the job ("\\x1e<job>\\x1f(name pid=N) text"); the
raylet already sends a worker's output to SESSION/logs/worker-<id>.out.

Driver side: a daemon thread follows the worker output files of the driver's node and prints the
lines of its own job (tag removed) to the driver's stdout.

Other nodes: the driver writes its node id into the GCS KV (namespace rayc_log, key
"<job>:driver"); a worker on another node also ships its lines there, batched every 0.1 s, under
"<job>:L:<node>:<pid>:<seq>", and the driver's thread lists, prints and deletes them (a few KV
calls a second; the job's keys go when the driver shuts down).
"""
import glob
import os
import sys
import threading
import time

TAG, SEP = "\x1e", "\x1f"
LOG_NS = "rayc_log"  # GCS KV namespace of forwarded lines
_local = threading.local()


def job_tag(job_hex):
    """The job's tag: its id with the actor-worker bit cleared (actors run under job | 0x80...)."""
    first = int(job_hex[:2], 16) & 0x7F
    return f"{first:02x}{job_hex[2:]}"


def set_task_name(name):
    _local.name = name


class _TaskWriter:
    def __init__(self, raw, tag):
        self._raw = raw
        self._tag = tag
        self._pid = os.getpid()
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, s):
        with self._lock:
            text = self._partial + s
            lines = text.split("\n")
            self._partial = lines.pop()
            name = getattr(_local, "name", None) or "worker"
            for line in lines:
                self._raw.write(f"{TAG}{self._tag}{SEP}({name} pid={self._pid}) {line}\n")
                if _shipper is not None:
                    _shipper.add(f"({name} pid={self._pid}) {line}")
            self._raw.flush()
        return len(s)

    def flush(self):
        self._raw.flush()

    def isatty(self):
        return False

    @property
    def encoding(self):
        return self._raw.encoding

    def fileno(self):
        return self._raw.fileno()


class _Shipper:
    """Worker side: ships the job's lines to the GCS KV when its driver runs on another node."""

    def __init__(self, tag):
        self._tag = tag
        self._lines = []
        self._lock = threading.Lock()
        self._seq = 0
        self._thread = None
        self._me = self._driver = None

    def add(self, line):
        with self._lock:
            self._lines.append(line)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="rayc-log-shipper")
                self._thread.start()

    def _run(self):
        while True:
            time.sleep(0.1)
            try:
                self._flush()
            except Exception:  # noqa: BLE001 - forwarding output must never break the worker
                pass

    def _flush(self):
        from . import _rayc
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines:
            return
        if self._me is None:
            self._me = _rayc.context()[3]
        if not self._driver:
            d = _rayc.kv_get(LOG_NS, f"{self._tag}:driver".encode())
            self._driver = d.decode() if d else None
        if self._driver == self._me:  # the driver follows this node's files itself
            return
        self._seq += 1
        key = f"{self._tag}:L:{self._me}:{os.getpid()}:{self._seq:012d}"
        _rayc.kv_put(LOG_NS, key.encode(), "\n".join(lines).encode(errors="replace"), True)


_shipper = None


def install_worker_writers(job_hex):
    global _shipper
    tag = job_tag(job_hex)
    _shipper = _Shipper(tag)
    sys.stdout = _TaskWriter(sys.__stdout__, tag)
    sys.stderr = _TaskWriter(sys.__stderr__, tag)


class Follower:
    """Prints the lines of job_hex's workers from logs_dir to out."""

    def __init__(self, logs_dir, job_hex, out=None, node=None):
        self._dir = logs_dir
        self._tag = f"{TAG}{job_tag(job_hex)}{SEP}"
        self._kv_job = job_tag(job_hex)
        self._kv_polls = 0
        if node is not None:  # workers on other nodes ship this job's lines to the GCS KV
            from . import _rayc
            _rayc.kv_put(LOG_NS, f"{self._kv_job}:driver".encode(), node.encode(), True)
        self._out = out
        self._offsets = {p: os.path.getsize(p) for p in glob.glob(os.path.join(logs_dir, "worker-*.out"))}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rayc-log-follower")
        self._thread.start()

    def _poll(self):
        for path in glob.glob(os.path.join(self._dir, "worker-*.out")):
            start = self._offsets.get(path, 0)
            try:
                size = os.path.getsize(path)
                if size <= start:
                    continue
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read(size - start)
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            self._offsets[path] = start + end
            out = self._out or sys.stdout
            for line in data[:end].decode(errors="replace").split("\n"):
                if line.startswith(self._tag):
                    out.write(line[len(self._tag):] + "\n")
            out.flush()

    def _poll_kv(self):
        """Prints (and deletes) the lines workers on other nodes shipped to the GCS KV."""
        from . import _rayc
        out = self._out or sys.stdout
        try:
            keys = sorted(_rayc.kv_keys(LOG_NS, f"{self._kv_job}:L:".encode()))
            for k in keys:
                v = _rayc.kv_get(LOG_NS, k)
                if v is not None:
                    out.write(v.decode(errors="replace") + "\n")
                _rayc.kv_del(LOG_NS, k)
            if keys:
                out.flush()
        except Exception:  # noqa: BLE001 - the GCS may be restarting: next time
            pass

    def _run(self):
        while not self._stop.is_set():
            self._poll()
            self._kv_polls += 1
            if self._kv_polls % 3 == 0:
                self._poll_kv()
            self._stop.wait(0.1)

    def stop(self):
        """Prints what is left, then stops (and drops this job's keys)."""
        time.sleep(0.3)
        self._stop.set()
        self._thread.join(timeout=2)
        self._poll()
        self._poll_kv()
        try:
            from . import _rayc
            _rayc.kv_del(LOG_NS, f"{self._kv_job}:".encode(), True)
        except Exception:  # noqa: BLE001
            pass
