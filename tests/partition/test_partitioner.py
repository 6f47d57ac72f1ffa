"""The partitioner on hand-built graphs: convex regions, the cost model, pins,
two accelerators, determinism and the report."""

from __future__ import annotations

import pytest

from tinyc.errors import TinycError
from tinyc.partition import NOT_WORTH_IT, UNSUPPORTED_OP, PartitionOptions, partition_graph

from .helpers import Net, host, npu


def _diamond():
    """a feeds an unsupported op b and a supported c; d joins them. Merging a, c
    and d into one accelerator region would make it wait for b, which waits for it."""
    n = Net()
    x = n.input("x", (256, 256))
    a = n.mm("a", x)
    b = n.op("Softmax", "b", a)
    c = n.mm("c", a)
    d = n.op("Add", "d", b, c)
    return n.build(n.mm("e", d))


def test_diamond_with_an_unsupported_branch_never_forms_a_cycle():
    p = partition_graph(_diamond(), [host(), npu()])
    device = {name: pl.device for name, pl in p.placements.items()}
    assert device == {"a": "npu", "b": "cpu", "c": "npu", "d": "npu", "e": "npu"}
    region = {name: pl.region for name, pl in p.placements.items()}
    assert region["a"] == region["c"] != region["d"] == region["e"]
    assert [r.device for r in p.regions] == ["npu", "cpu", "npu"]
    assert p.regions[1].inputs == ("a",) and p.regions[2].inputs == ("b", "c")


def test_a_tiny_region_is_not_worth_its_transfers():
    n = Net()
    x = n.input("x", (8, 8))
    s = n.op("Softmax", "s", x)
    small = n.mm("small", s, 8)
    g = n.build(n.op("Softmax", "t", small))
    p = partition_graph(g, [host(), npu()])
    small_node = p.placements["small"]
    assert small_node.device == "cpu" and small_node.category == NOT_WORTH_IT
    assert "not worth the transfer" in small_node.why
    assert [r.device for r in p.regions] == ["cpu"]  # one CPU region once it stays home


def test_a_large_region_pays_for_its_transfers():
    n = Net()
    x = n.input("x", (512, 512))
    s = n.op("Softmax", "s", x)
    big = n.mm("big", n.mm("big0", s, 512), 512)
    p = partition_graph(n.build(n.op("Softmax", "t", big)), [host(), npu()])
    assert [r.device for r in p.regions] == ["cpu", "npu", "cpu"]
    offloaded = p.regions[1]
    assert offloaded.cost.total_s < offloaded.cpu_cost_s
    assert offloaded.cost.bytes_in == offloaded.cost.bytes_out == 512 * 512 * 4


def test_siblings_of_one_device_merge_into_one_region():
    n = Net()
    x = n.input("x", (256, 256))
    s = n.op("Softmax", "s", x)
    left, right = n.mm("left", s), n.mm("right", s)
    g = n.build(n.op("Softmax", "t", n.op("Add", "sum", left, right)))
    p = partition_graph(g, [host(), npu()])
    assert [(r.device, r.nodes) for r in p.regions] == [
        ("cpu", ("s",)), ("npu", ("left", "right", "sum")), ("cpu", ("t",))]
    assert p.regions[1].inputs == ("s",)  # read once, moved once


def test_unsupported_ops_are_counted_with_their_reason():
    p = partition_graph(_diamond(), [host(), npu()])
    assert p.fallbacks == {UNSUPPORTED_OP: 1}
    assert "Softmax is not an op the device runs" in p.placements["b"].why


def test_pin_and_avoid():
    g = _diamond()
    p = partition_graph(g, [host(), npu()], PartitionOptions(pin={"c": "cpu"},
                                                             avoid={"npu": ["e"]}))
    assert p.placements["c"].device == "cpu" and p.placements["c"].pinned
    assert p.placements["e"].device == "cpu" and "kept off npu" in p.placements["e"].why
    assert p.placements["a"].device == "npu"


def test_pin_to_a_device_that_cannot_run_the_node_is_an_error():
    with pytest.raises(TinycError, match="'b' is pinned to npu, which cannot run it"):
        partition_graph(_diamond(), [host(), npu()], PartitionOptions(pin={"b": "npu"}))
    with pytest.raises(TinycError, match="unknown device 'gpu'"):
        partition_graph(_diamond(), [host(), npu()], PartitionOptions(pin={"a": "gpu"}))


def test_two_accelerators_are_arbitrated_by_cost():
    fast, slow = npu("big_npu", rows=32), npu("small_npu", rows=8, ops=("MatMul", "Add",
                                                                         "Softmax"))
    p = partition_graph(_diamond(), [host(), slow, fast])
    assert p.accelerators == ("big_npu", "small_npu")
    assert p.placements["a"].device == "big_npu"
    assert p.placements["b"].device in ("small_npu", "cpu")


def test_ties_between_accelerators_break_by_name():
    p = partition_graph(_diamond(), [host(), npu("npu_b"), npu("npu_a")])
    assert {pl.device for pl in p.placements.values()} == {"npu_a", "cpu"}


def test_the_result_is_deterministic():
    runs = [partition_graph(_diamond(), [host(), npu(), npu("other")]).to_json()
            for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_report_text_lists_regions_fallbacks_and_nodes():
    text = partition_graph(_diamond(), [host(), npu()]).text()
    assert "partition of 'net' over cpu + npu: 5 nodes (1 on cpu, 4 on npu), 3 regions" in text
    assert "CPU fallbacks: 1 nodes" in text
    assert "unsupported op" in text and "Softmax x1" in text
