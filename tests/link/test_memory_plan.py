from __future__ import annotations

from tinyc.codegen.memory_plan import ALIGN, _place_greedy


def test_buffers_with_disjoint_lifetimes_share_memory():
    offsets, arena = _place_greedy({"a": (0, 1), "b": (2, 3)}, {"a": 1000, "b": 1000})
    assert offsets["a"] == offsets["b"] == 0
    assert arena == 1024


def test_overlapping_lifetimes_never_overlap_in_memory():
    intervals = {"a": (0, 2), "b": (1, 3), "c": (2, 4), "d": (5, 6)}
    sizes = {"a": 100, "b": 300, "c": 200, "d": 600}
    offsets, arena = _place_greedy(intervals, sizes)
    for x in intervals:
        for y in intervals:
            (fx, lx), (fy, ly) = intervals[x], intervals[y]
            if x < y and not (lx < fy or ly < fx):
                ex = offsets[x] + sizes[x]
                ey = offsets[y] + sizes[y]
                assert ex <= offsets[y] or ey <= offsets[x], (x, y)
    assert all(o % ALIGN == 0 for o in offsets.values())
    assert arena <= 640 + 320 + 256  # d reuses the space of a, b, c


def test_calls_of_one_node_share_a_scratch_by_tag():

    from tinyc.codegen.kernels.bytes_copy import COPY_BYTES
    from tinyc.codegen.memory_plan import plan_memory
    from tinyc.ir import DType, Graph, Node, TensorType
    from tinyc.program import Buf, Call, LoweredNode, Scratch

    t = TensorType(DType.float32, (4,))
    g = Graph("g", ("x",), ("y",), (Node("Relu", ("x",), ("y",), {}, "n"),), {"x": t, "y": t},
              {}, {})
    calls = [Call(COPY_BYTES, (Scratch("tmp", n), Buf("x"), 16)) for n in (100, 300)]
    calls.append(Call(COPY_BYTES, (Buf("y"), Scratch("tmp", 200), 16)))
    plan = plan_memory(g, [LoweredNode("n", "Relu", ("y",), calls)], {"y": 0})
    keys = {plan.scratch_keys[id(c.args[0 if i < 2 else 1])] for i, c in enumerate(calls)}
    assert len(keys) == 1
    assert plan.arena_bytes == 320  # the largest request, aligned
