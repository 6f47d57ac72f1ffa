from __future__ import annotations

from tinyc.link.memory_plan import ALIGN, _place_greedy


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
