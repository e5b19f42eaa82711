"""Serialization of rayc's Python values.

An object is laid out as one block (written once, into shared memory when large):

    header  "RCP1", flags (u32), pickle length (u64), buffer count (u32), then per out-of-band
            buffer its (offset, length) as two u64
    pickle  protocol 5; ObjectRefs inside are persistent ids (indexes into the object's refs,
            which the core carries beside the bytes: Ray's borrowing)
    buffers each at a 64-byte aligned offset (numpy arrays' memory, pickled out of band)

Reading it back makes the buffers memoryviews of the object's bytes: a numpy array comes back as
a read-only view of the shared memory, with no copy. Bytes without the header (a C task's result)
read back as bytes.
"""
import io
import pickle
import struct

import cloudpickle

MAGIC = b"RCP1"
HEADER = struct.Struct("<4sIQI")
FLAG_ERROR = 1
ALIGN = 64
_PRIMITIVE = (int, float, str, bytes, bool, type(None))

_ref_class = None  # rayc.ObjectRef, set by the package


class _Pickler(cloudpickle.CloudPickler):
    def __init__(self, f, refs, buffers):
        super().__init__(f, protocol=5, buffer_callback=buffers.append)
        self._refs = refs

    def persistent_id(self, obj):
        if isinstance(obj, _ref_class):
            self._refs.append(obj)
            return len(self._refs) - 1
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, refs, buffers):
        super().__init__(f, buffers=buffers)
        self._refs = refs

    def persistent_load(self, pid):
        return self._refs[pid]


def _describe(value):
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."


def dumps(value, flags=0):
    """Serializes value: (total length, [(offset, bytes-like)], [ObjectRef])."""
    refs, buffers = [], []
    if type(value) in _PRIMITIVE:  # the common small case: no refs, no out-of-band buffers
        data = pickle.dumps(value, protocol=5)
        return HEADER.size + len(data), [(0, HEADER.pack(MAGIC, flags, len(data), 0) + data)], refs
    else:
        f = io.BytesIO()
        try:
            _Pickler(f, refs, buffers).dump(value)
        except Exception as e:
            raise TypeError(f"Could not serialize the value {_describe(value)} "
                            f"({type(value).__name__}): {e}") from e
        data = f.getbuffer()
    raws = [b.raw() for b in buffers]
    head = HEADER.size + 16 * len(raws)
    offsets, at = [], head + len(data)
    for r in raws:
        at = (at + ALIGN - 1) // ALIGN * ALIGN
        offsets.append((at, r.nbytes))
        at += r.nbytes
    table = b"".join(struct.pack("<QQ", o, n) for o, n in offsets)
    first = HEADER.pack(MAGIC, flags, len(data), len(raws)) + table + bytes(data)
    parts = [(0, first)] + [(o, r) for (o, _), r in zip(offsets, raws)]
    return at, parts, refs


def flatten(total, parts):
    """The object's bytes in one buffer (for small values passed inline)."""
    if len(parts) == 1 and parts[0][0] == 0 and len(parts[0][1]) == total:
        return parts[0][1]
    out = bytearray(total)
    for off, data in parts:
        mv = memoryview(data).cast("B")
        out[off:off + mv.nbytes] = mv
    return out


def loads(buf, refs):
    """The value of an object: buf a buffer (rayc._rayc.Buffer), refs the ObjectRefs it contains.
    Returns (value, is_error)."""
    mv = memoryview(buf)
    if mv.nbytes < HEADER.size:
        return bytes(mv), False
    magic, flags, plen, nbufs = HEADER.unpack_from(mv)
    if magic != MAGIC:
        return bytes(mv), False
    if not nbufs and not refs:  # the common small case
        return pickle.loads(mv[HEADER.size:HEADER.size + plen]), bool(flags & FLAG_ERROR)
    table = struct.unpack_from("<%dQ" % (2 * nbufs), mv, HEADER.size) if nbufs else ()
    start = HEADER.size + 16 * nbufs
    buffers = [mv[table[2 * i]:table[2 * i] + table[2 * i + 1]] for i in range(nbufs)]
    body = mv[start:start + plen]
    if not refs and not nbufs:
        value = pickle.loads(body)
    else:
        value = _Unpickler(io.BytesIO(body), refs, buffers).load()
    return value, bool(flags & FLAG_ERROR)
