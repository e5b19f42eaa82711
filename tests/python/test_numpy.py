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
