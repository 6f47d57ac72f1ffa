"""On random DAGs, regions always run in the order listed: every value a region
reads comes from a graph input or an earlier region (the region graph is a DAG)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.partition import partition_graph

from .helpers import Net, host, npu


def _random_dag(seed: int, size: int = 40):
    rng = np.random.default_rng(seed)
    n = Net()
    values = [n.input("x", (64, 64))]
    for i in range(size):
        op = str(rng.choice(["Add", "Mul", "Sub"]))  # the npu runs Add and Mul
        a, b = rng.choice(len(values), 2)
        values.append(n.op(op, f"n{i}", values[a], values[b]))
    return n.build(values[-1], values[size // 2])


@pytest.mark.parametrize("seed", range(12))
def test_regions_run_in_order_on_random_graphs(seed):
    g = _random_dag(seed)
    fast_link = npu(ops=("Add", "Mul"), bytes_per_cycle=1 << 20, setup_cycles=1)
    p = partition_graph(g, [host(), fast_link])
    assert sorted(n for r in p.regions for n in r.nodes) == sorted(x.name for x in g.nodes)
    ready = set(g.inputs)
    for region in p.regions:
        assert set(region.inputs) <= ready, f"region {region.index} reads a later value"
        ready |= {n for n in region.nodes}  # node names are their output names here
    assert {r.device for r in p.regions} == {"cpu", "npu"}
