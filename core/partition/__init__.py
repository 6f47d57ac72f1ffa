"""Split-graph deployment: place each node on a device, in convex regions, where it pays.

    partition = partition_for(graph, resolve_devices("x86,accel_sim"))
    print(partition.text())
"""

from __future__ import annotations

from ..ir import Graph
from ..target import registry
from ..target.targets import Deployment
from .cost import Estimator, RegionCost
from .devices import (
    CATEGORIES,
    NOT_WORTH_IT,
    UNSUPPORTED_DTYPE,
    UNSUPPORTED_OP,
    UNSUPPORTED_SHAPE,
    DeviceProfile,
    Verdict,
    accelerator_profile,
    cpu_profile,
    judge_from_support,
    profiles_for,
)
from .model import Partition, Placement, Region
from .partitioner import PartitionOptions, one_region, partition_graph


def partition_for(graph: Graph, deployment: Deployment,
                  options: PartitionOptions | None = None) -> Partition:
    """Partition `graph` over a resolved deployment, asking the installed plugins
    what each accelerator runs. One device and no pins: the whole graph, unpriced."""
    options = options or PartitionOptions()
    if not deployment.accelerators and not options.pin and not options.avoid:
        return one_region(graph, deployment.host.spec.name)
    return partition_graph(graph, profiles_for(deployment, registry().op_support_for), options)


__all__ = ["CATEGORIES", "NOT_WORTH_IT", "UNSUPPORTED_DTYPE", "UNSUPPORTED_OP",
           "UNSUPPORTED_SHAPE", "DeviceProfile", "Estimator", "Partition", "PartitionOptions",
           "Placement", "Region", "RegionCost", "Verdict", "accelerator_profile", "cpu_profile",
           "judge_from_support", "one_region", "partition_for", "partition_graph", "profiles_for"]
