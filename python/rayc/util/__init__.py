"""rayc.util: placement groups, scheduling strategies, ActorPool (Ray's names)."""
from . import scheduling_strategies
from .actor_pool import ActorPool
from .placement_group import PlacementGroup, get_current_placement_group, placement_group, remove_placement_group

__all__ = ["ActorPool", "PlacementGroup", "get_current_placement_group", "placement_group",
           "remove_placement_group", "scheduling_strategies"]
