"""numpy arrays through the object store: pickle protocol 5 with out-of-band buffers, read back as
read-only views of the store's shared memory (no copy), in the driver and in a task."""
import pytest

np = pytest.importorskip("numpy")


def shared_mapping(address):
    """The path of the memory mapping that holds address in this process (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                return fields[5] if len(fields) > 5 else "[anonymous]"
    return None


def buffer_of(arr):
    """The rayc Buffer an array's memory comes from (following .base), or None."""
    import rayc._rayc as core
    b = arr
    while b is not None:
        if isinstance(b, core.Buffer):
            return b
        b = getattr(b, "base", None) if not isinstance(b, memoryview) else b.obj
    return None


def zero_copy_facts(arr):
    buf = buffer_of(arr)
    addr = arr.__array_interface__["data"][0]
    inside = buf is not None and buf.address <= addr < buf.address + len(buf)
    return {"writeable": arr.flags.writeable, "in_buffer": inside,
            "mapping": shared_mapping(addr), "sum": float(arr[::1 << 16].sum())}


def test_200mb_array_zero_copy(ray):
    arr = np.arange(200 * 1024 * 1024 // 8, dtype=np.float64)
    ref = ray.put(arr)
    got = ray.get(ref)
    assert got.shape == arr.shape and got.dtype == arr.dtype and got[12345] == 12345.0
    facts = zero_copy_facts(got)
    assert facts["in_buffer"], "the array's memory is not the object's buffer"
    assert not facts["writeable"]
    assert facts["mapping"] and ("/dev/shm" in facts["mapping"] or "memfd" in facts["mapping"]
                                 or "rayc" in facts["mapping"]), facts["mapping"]
    with pytest.raises(ValueError):
        got[0] = 1.0

    @ray.remote
    def look(a):
        from test_numpy import zero_copy_facts as facts_of
        return facts_of(a)

    remote = ray.get(look.remote(ref))
    assert remote["in_buffer"] and not remote["writeable"] and remote["mapping"] == facts["mapping"]
    assert remote["sum"] == facts["sum"]


def test_small_arrays_and_mixed_values(ray):
    value = {"a": np.ones((3, 4), dtype=np.int32), "b": [np.zeros(5), "text"], "c": 7}
    got = ray.get(ray.put(value))
    assert (got["a"] == 1).all() and got["a"].shape == (3, 4) and got["b"][1] == "text" and got["c"] == 7

    @ray.remote
    def double(x):
        return x * 2

    assert (ray.get(double.remote(np.arange(10))) == np.arange(10) * 2).all()


def pattern(n, seed):
    """n bytes that differ from any shifted copy of themselves (a misplaced slice shows)."""
    i = np.arange(n, dtype=np.uint64)
    return ((i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24) ^ seed) & 0xFF).astype(np.uint8)


def copy_threads():
    """Threads of this process named rayc-copy (the core worker's large-copy pool)."""
    import os
    n = 0
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                n += f.read().startswith("rayc-copy")
        except OSError:
            pass
    return n


def test_large_puts_and_results_exact(ray):
    """Large objects are copied into shared memory by several threads (worker/cw_copy.c): every
    byte of a put, of a pickle-5 value with a header and gaps, and of a task's large result
    reads back exactly."""
    import os
    for n in (8 * 1024 * 1024 - 1, 24 * 1024 * 1024 + 4097):
        arr = pattern(n, 0x3C)
        got = ray.get(ray.put(arr))
        assert got.shape == arr.shape and np.array_equal(got, arr), f"{n}-byte array differs"
    value = {"head": "x" * 1000, "a": pattern(9 * 1024 * 1024 + 3, 1), "b": pattern(12 * 1024 * 1024, 2)}
    got = ray.get(ray.put(value))
    assert got["head"] == value["head"]
    assert np.array_equal(got["a"], value["a"]) and np.array_equal(got["b"], value["b"])
    cores = len(os.sched_getaffinity(0))
    assert copy_threads() == min(cores, 4) - 1

    @ray.remote
    def make(n, seed):
        return pattern(n, seed), b"\x07" * (16 * 1024 * 1024)

    arr, blob = ray.get(make.remote(20 * 1024 * 1024 + 5, 0x99))
    assert np.array_equal(arr, pattern(20 * 1024 * 1024 + 5, 0x99))
    assert blob == b"\x07" * (16 * 1024 * 1024)


def test_puts_of_untouched_partly_written_and_file_backed_arrays(ray, tmp_path):
    """Pages the kernel maps to its zero page (np.zeros never touched, or only read) are written
    into the object without being read (worker/cw_copy_src.c); the object is still exactly the
    array's bytes: for an untouched np.zeros, a partly written one, and an array over an mmap of a
    sparse file of which only a part is resident. Each object is a copy: writing the array afterwards
    does not change it."""
    n = 24 * 1024 * 1024 // 8 + 515
    untouched = np.zeros(n, dtype=np.int64)
    got = ray.get(ray.put(untouched[3:]))  # never read before the put, not page-aligned
    assert got.shape == (n - 3,) and not got.any()

    partly = np.zeros(n, dtype=np.int64)
    partly[::4096] = np.arange(len(partly[::4096])) + 1  # one written value every 8 pages
    partly[n // 2:n // 2 + 70000] = -5
    want = partly.copy()
    ref = ray.put(partly)
    partly[:] = 9
    assert np.array_equal(ray.get(ref), want)

    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(n * 8)  # holes read as zeros
        for page in range(0, n * 8 // 4096, 5):
            f.seek(page * 4096)
            f.write(bytes([page % 251 + 1]) * 4096)
    want = np.fromfile(path, dtype=np.int64)
    import mmap
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), n * 8, prot=mmap.PROT_READ)  # a plain ndarray over it: no copy
    arr = np.frombuffer(mm, dtype=np.int64)  # (a np.memmap would be pickled in band, a copy)
    arr[: 8 * 1024 * 1024 // 8 : 512].copy()  # the first 8 MiB partly resident, not the rest
    assert np.array_equal(ray.get(ray.put(arr)), want)
    del arr
    mm.close()
