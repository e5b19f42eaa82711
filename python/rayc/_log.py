"""print() in tasks shows up in the driver's terminal, as in Ray.

Worker side: sys.stdout and sys.stderr become line writers that prefix each line with the running
task's name and the worker's pid, and tag it with the job ("\\x1e<job>\\x1f(name pid=N) text"); the
raylet already sends a worker's output to SESSION/logs/worker-<id>.out.

Driver side: a daemon thread follows the worker output files of the driver's node and prints the
lines of its own job (tag removed) to the driver's stdout. Known gap: output of workers on other
nodes is in their nodes' logs only.
"""
import glob
import os
import sys
import threading
import time

TAG, SEP = "\x1e", "\x1f"
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


def install_worker_writers(job_hex):
    tag = job_tag(job_hex)
    sys.stdout = _TaskWriter(sys.__stdout__, tag)
    sys.stderr = _TaskWriter(sys.__stderr__, tag)


class Follower:
    """Prints the lines of job_hex's workers from logs_dir to out."""

    def __init__(self, logs_dir, job_hex, out=None):
        self._dir = logs_dir
        self._tag = f"{TAG}{job_tag(job_hex)}{SEP}"
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

    def _run(self):
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(0.1)

    def stop(self):
        """Prints what is left, then stops."""
        time.sleep(0.2)
        self._poll()
        self._stop.set()
