"""Static memory plan: where every tensor lives while the model runs.

Activations and scratch buffers share one arena; two buffers may overlap in
the arena only if their lifetimes (the steps between definition and last use)
do not. Placement is greedy by size, largest first, at the lowest offset that
fits (the strategy TFLite's arena planner uses). Views share their source's
storage, so their uses extend the source's lifetime. An elementwise node whose
lowering allows it (LoweredNode.in_place) writes its output over an input that
is read for the last time there, so e.g. a bias Add after a MatMul needs no
second buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph
from ..ir.symbolic import SymDim, smax, split_content
from ..ir.unbacked import upper_bound
from ..program import Buf, Const, LoweredNode, Scratch

ALIGN = 64  # a cache line; also the widest vector load


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Location:
    """Where a storage lives: `space` is 'input', 'output', 'weights' or 'arena';
    `index` the input/output position, `offset` bytes into the weights or arena."""

    space: str
    index: int = 0
    offset: int = 0


@dataclass
class MemoryPlan:
    arena_bytes: int
    weights: bytes
    locations: dict[str, Location]  # value name or scratch key -> location
    root: dict[str, str]  # value -> the value whose storage it shares (itself if none)
    scratch_keys: dict[int, str] = field(default_factory=dict)  # id(Scratch) -> key
    const_keys: dict[int, str] = field(default_factory=dict)  # id(Const) -> key

    def location_of_value(self, value: str) -> Location:
        return self.locations[self.root.get(value, value)]


def plan_memory(g: Graph, lowered: list[LoweredNode], output_slots: dict[str, int]) -> MemoryPlan:
    """`output_slots` names the storage written straight into each caller-provided
    output buffer (a value, or a synthetic name a final copy writes to)."""
    root = _resolve_aliases(g, lowered)
    locations: dict[str, Location] = {}
    for i, v in enumerate(g.inputs):
        locations[v] = Location("input", i)
    for v, j in output_slots.items():
        locations[v] = Location("output", j)
    _share_in_place(g, lowered, root, set(locations))
    weights, const_keys = _place_weights(g, lowered, root, locations)
    intervals, sizes, scratch_keys = _lifetimes(g, lowered, root, locations)
    offsets, arena = _place(intervals, sizes)
    for key, off in offsets.items():
        locations[key] = Location("arena", 0, off)
    return MemoryPlan(arena, weights, locations, root, scratch_keys, const_keys)


def _resolve_aliases(g: Graph, lowered: list[LoweredNode]) -> dict[str, str]:
    root: dict[str, str] = {}
    for ln in lowered:
        if ln.alias_of is not None:
            src = root.get(ln.alias_of, ln.alias_of)
            for o in ln.outputs:
                if o:
                    root[o] = src
    return root


def _share_in_place(g: Graph, lowered: list[LoweredNode], root: dict[str, str],
                    fixed: set[str]) -> None:
    """Point an in-place node's output (and its views) at the storage of an input
    whose last reader it is. Never a caller's buffer (`fixed`) or a constant."""
    last = _last_steps(lowered, root)
    for step, ln in enumerate(lowered):
        out = ln.outputs[0] if len(ln.outputs) == 1 else ""
        if not ln.in_place or not out or out in root or out in fixed:
            continue
        for x in ln.in_place:
            r = root.get(x, x)
            if r in fixed or r in g.constants or last.get(r) != step \
                    or not _same_layout(g, (r, x, out)):
                continue
            for v, src in list(root.items()):
                if src == out:
                    root[v] = r
            root[out] = r
            last[r] = last.get(out, step)
            break


def _last_steps(lowered: list[LoweredNode], root: dict[str, str]) -> dict[str, int]:
    """Per storage, the last step that reads or writes it."""
    last: dict[str, int] = {}
    for step, ln in enumerate(lowered):
        for o in ln.outputs:
            if o:
                last[root.get(o, o)] = step
        for call in ln.every_call:
            for a in call.args:
                if isinstance(a, Buf):
                    last[root.get(a.value, a.value)] = step
    return last


def _same_layout(g: Graph, values: tuple[str, ...]) -> bool:
    """Equal static byte sizes and element sizes: element i of each is at the same offset."""
    types = [g.type_of(v) for v in values]
    sizes = {(t.nbytes, t.dtype.itemsize) for t in types}
    return len(sizes) == 1 and all(isinstance(t.nbytes, int) for t in types)


def _place_weights(g: Graph, lowered: list[LoweredNode], root: dict[str, str],
                   locations: dict[str, Location]) -> tuple[bytes, dict[int, str]]:
    """Lay out every constant a kernel reads (graph constants and lowering's own
    Const arrays) in one blob; constants nobody reads are left out. The blob is
    joined once from views of the arrays (a model's weights may be mappings of
    its files): one copy of the weights, not one per step. A node lowered in
    variants (a symbolic size on either side of a guard) packs its weight once
    per variant, mostly into the same bytes: equal arrays of one node and tag
    share one place (an fp32 LLM's blob was twice its weights)."""
    parts: list = []
    size = 0
    const_keys: dict[int, str] = {}
    placed: dict[tuple, list[tuple[np.ndarray, str]]] = {}  # (node, tag, dtype, shape)

    def put(key: str, array: np.ndarray) -> None:
        nonlocal size
        offset = _align(size)
        data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        parts.extend((bytes(offset - size), data))
        size = offset + data.size
        locations[key] = Location("weights", 0, offset)

    for ln in lowered:
        for call in ln.every_call:
            for a in call.args:
                if isinstance(a, Buf):
                    r = root.get(a.value, a.value)
                    if r in g.constants and r not in locations:
                        put(r, g.constants[r])
                elif isinstance(a, Const) and id(a) not in const_keys:
                    key = f"const:{ln.node_name}:{a.tag}:{len(const_keys)}"
                    const_keys[id(a)] = key
                    array = np.asarray(a.array)
                    kin = placed.setdefault((ln.node_name, a.tag, array.dtype.str,
                                             array.shape), [])
                    same = next((k for other, k in kin if np.array_equal(other, array)), None)
                    if same is not None:
                        locations[key] = locations[same]
                    else:
                        put(key, array)
                        kin.append((array, key))
    return b"".join(parts), const_keys


def _lifetimes(g: Graph, lowered: list[LoweredNode], root: dict[str, str],
               locations: dict[str, Location]):
    """Per arena storage: (first step, last step) and size in bytes."""
    intervals: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    scratch_keys: dict[int, str] = {}

    def touch(key: str, step: int, nbytes: int) -> None:
        nbytes = upper_bound(nbytes)  # a data-dependent size gets room for its bound
        if key in intervals:
            intervals[key][1] = step
        else:
            intervals[key] = [step, step]
            sizes[key] = nbytes

    for step, ln in enumerate(lowered):
        for o in ln.outputs:
            r = root.get(o, o) if o else ""
            if r and r not in locations:
                touch(r, step, g.type_of(r).nbytes)
        for call in ln.every_call:
            for a in call.args:
                if isinstance(a, Buf):
                    r = root.get(a.value, a.value)
                    if r not in locations:
                        touch(r, step, g.type_of(r).nbytes)
                elif isinstance(a, Scratch):
                    # one buffer per (node, tag): every call of a node naming the
                    # same scratch shares it, sized for the largest request
                    key = f"scratch:{ln.node_name}:{a.tag}"
                    scratch_keys[id(a)] = key
                    touch(key, step, a.nbytes)
                    sizes[key] = smax(sizes[key], upper_bound(a.nbytes))
    return {k: tuple(v) for k, v in intervals.items()}, sizes, scratch_keys


def _place(intervals: dict[str, tuple[int, int]],
           sizes: dict[str, int | SymDim]) -> tuple[dict[str, int | SymDim], int | SymDim]:
    """Static sizes first, planned together; then one region per family of
    symbolic sizes (sizes g * q for one expression q of the symbols, e.g. every
    activation of a batched CNN is some g * N). Within a family the plan is
    made on the multipliers g, so it holds for every value of q, with no guard;
    families sit one above the other."""
    families: dict[tuple, dict[str, int]] = {}
    static = {}
    for key, size in sizes.items():
        if isinstance(size, SymDim):
            g, q = split_content(size)
            families.setdefault(q.poly, {})[key] = (g, q)
        else:
            static[key] = size
    offsets, arena = _place_greedy({k: intervals[k] for k in static}, static)
    for members in families.values():
        q = next(iter(members.values()))[1]
        units = {k: -(-g // ALIGN) * ALIGN for k, (g, _) in members.items()}
        local, top = _place_greedy({k: intervals[k] for k in members}, units, align=False)
        for k, o in local.items():
            offsets[k] = arena + o * q
        arena = arena + top * q
    return offsets, arena


def _place_greedy(intervals: dict[str, tuple[int, int]], sizes: dict[str, int],
                  align: bool = True) -> tuple[dict[str, int], int]:
    order = sorted(intervals, key=lambda k: (-sizes[k], intervals[k][0], k))
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offsets: dict[str, int] = {}
    arena = 0
    for key in order:
        first, last = intervals[key]
        size = _align(max(sizes[key], 1)) if align else max(sizes[key], 1)
        live = sorted((o, e) for o, e, f, la in placed if not (la < first or f > last))
        offset = 0
        for o, e in live:
            if offset + size <= o:
                break
            offset = max(offset, e)
        offsets[key] = offset
        placed.append((offset, offset + size, first, last))
        arena = max(arena, offset + size)
    return offsets, arena
