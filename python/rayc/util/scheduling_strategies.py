"""Ray's scheduling strategies: "DEFAULT", "SPREAD", node affinity and placement groups."""


class NodeAffinitySchedulingStrategy:
    """Run on node node_id (hex, as rayc.nodes() and get_runtime_context().get_node_id() give
    it); with soft=True, elsewhere when that node cannot."""

    def __init__(self, node_id, soft, _spill_on_unavailable=False, _fail_on_unavailable=False):
        self.node_id = node_id
        self.soft = soft


class PlacementGroupSchedulingStrategy:
    """Run in a placement group's bundle (index -1: any of its bundles)."""

    def __init__(self, placement_group, placement_group_bundle_index=-1,
                 placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks
