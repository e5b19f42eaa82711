"""Placement groups: rayc.util.placement_group(bundles, strategy) and friends."""
from .. import _core, _rayc

_STRATEGIES = {"PACK": 0, "SPREAD": 1, "STRICT_PACK": 2, "STRICT_SPREAD": 3}


class PlacementGroupID:
    def __init__(self, b):
        self._b = b

    def binary(self):
        return self._b

    def hex(self):
        return self._b.hex()


class PlacementGroup:
    def __init__(self, pg_id, bundles=None):
        self.id = PlacementGroupID(pg_id)
        self.bundle_specs = bundles or []

    @property
    def bundle_count(self):
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that is ready once every bundle is reserved."""
        from .. import remote
        pg_id = self.id.binary()
        # the create may still be on its way to the GCS (sent ahead): let it land before
        # another process asks the GCS about the group
        try:
            _rayc.pg_wait(pg_id, 0)
        except _rayc.Error:
            pass  # the task below reports it

        @remote(num_cpus=0)
        def _pg_ready():
            from rayc import _rayc as core
            while not core.pg_wait(pg_id, 60000):
                pass
            return True
        return _pg_ready.remote()

    def wait(self, timeout_seconds=30):
        """True once every bundle is reserved, False after timeout_seconds."""
        return _rayc.pg_wait(self.id.binary(), int(timeout_seconds * 1000))

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other.id.binary() == self.id.binary()

    def __hash__(self):
        return hash(self.id.binary())

    def __reduce__(self):
        return PlacementGroup, (self.id.binary(), self.bundle_specs)


def placement_group(bundles, strategy="PACK", name="", lifetime=None, **_):
    _core.state.ensure()
    if strategy not in _STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy}")
    if not bundles or any(not b for b in bundles):
        raise ValueError("bundles must be a non-empty list of non-empty resource dicts")
    spec = [{k: float(v) for k, v in b.items()} for b in bundles]
    try:
        pg_id = _rayc.pg_create(spec, _STRATEGIES[strategy], name or None)
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None
    return PlacementGroup(pg_id, spec)


def remove_placement_group(pg):
    try:
        _rayc.pg_remove(pg.id.binary())
    except _rayc.Error as e:
        raise _core.error_from_core(e) from None


def get_current_placement_group():
    return None
