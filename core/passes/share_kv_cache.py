"""share_kv_cache: let a KV cache's past input and present output share one
buffer, so a decode step writes only its new rows (as onnxruntime-genai's
past_present_share_buffer).

The pattern, checked strictly:

    present = Concat(past, new, axis=a)   present a graph output, past a graph
                                          input read by nothing else but Shape
    readers of present: MatMul(X, present)
                        MatMul(X, Transpose(present, perm swapping the last two axes))
                        with a the second-to-last axis and no broadcast batch dims

becomes

    present = tinyc.KVAppend(new)         attrs: axis, past (past's length along axis)
    tinyc.KVMatMul(X, present)            attrs: trans_b (1 for the Transpose form)

The present buffer holds `capacity` rows along `a` (a symbol the runtime binds
from the caller's arrays, runtime/kv_share.py): row r of outer index o is at
(o * capacity + r) * inner. KVAppend writes the new rows at row `past`; the
rows before it are the past, already in the buffer (the runtime copies them
there first when the caller gave the past in another array). KVMatMul reads
present's first rows with that capacity stride. Nothing reads the past input.
A pair that does not match exactly is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Node
from ..ir.symbolic import same

TINYC = "tinyc"
# the run-time symbol for the cache buffers' row capacity (runtime/kv_share.py binds it)
CAPACITY = "kv_capacity"
_SHAPE_ONLY = ("Shape", "DimValues")  # readers of the past that do not read its data


@dataclass(frozen=True)
class KVPair:
    past: str  # graph input
    present: str  # graph output
    axis: int  # the sequence axis (non-negative)


def share_kv_cache(g: Graph, capacity) -> tuple[Graph, list[KVPair]]:
    """The rewritten graph and the pairs that now share storage (none: `g`).
    `capacity`: the buffers' row count, a SymDim of the symbol CAPACITY."""
    readers = _readers(g)
    replaced: dict[int, Node | None] = {}  # node index -> its rewrite (None: dropped)
    pairs = []
    for k, node in enumerate(g.nodes):
        pair = _kv_pair(g, node, readers)
        if pair is None:
            continue
        rewrites = _reader_rewrites(g, pair, readers, capacity)
        if rewrites is None:
            continue
        past_len = g.types[pair.past].shape[pair.axis]
        attrs = {"axis": pair.axis, "past": past_len, "capacity": capacity}
        replaced[k] = Node("KVAppend", (node.inputs[1],), node.outputs, attrs, node.name, TINYC)
        replaced.update(rewrites)
        pairs.append(pair)
    if not pairs:
        return g, []
    nodes = tuple(replaced.get(k, n) for k, n in enumerate(g.nodes))
    return g.replace(nodes=tuple(n for n in nodes if n is not None)), pairs


def _readers(g: Graph) -> dict[str, list[tuple[int, Node]]]:
    out: dict[str, list[tuple[int, Node]]] = {}
    for k, n in enumerate(g.nodes):
        for v in n.inputs:
            if v:
                out.setdefault(v, []).append((k, n))
    return out


def _kv_pair(g: Graph, node: Node, readers) -> KVPair | None:
    if node.domain or node.op != "Concat" or len(node.inputs) != 2:
        return None
    past, new = node.inputs
    (present,) = node.outputs
    if past not in g.inputs or present not in g.outputs or past in g.outputs \
            or g.outputs.count(present) != 1:
        return None
    if any(n is not node and n.op not in _SHAPE_ONLY for _, n in readers.get(past, [])):
        return None
    tp, tn, tout = g.types[past], g.types[new], g.types[present]
    rank = tout.rank
    axis = int(node.attr("axis")) % rank if rank else 0
    if rank < 3 or axis != rank - 2 or tp.rank != rank or tn.rank != rank:
        return None  # rows must be whole [.., T, inner] matrices for the MatMul readers
    if not (tp.dtype == tn.dtype == tout.dtype):
        return None
    for d in range(rank):
        if d != axis and not (same(tp.shape[d], tout.shape[d]) and
                              same(tn.shape[d], tout.shape[d])):
            return None
    return KVPair(past, present, axis)


def _reader_rewrites(g: Graph, pair: KVPair, readers, capacity
                     ) -> dict[int, Node | None] | None:
    """KVMatMul for every reader of present, or None if one is not a MatMul's
    B (directly or through a last-two-axes Transpose read only by MatMuls)."""
    out: dict[int, Node | None] = {}
    rank = g.types[pair.present].rank
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    for k, n in readers.get(pair.present, []):
        if _is_b_of_matmul(g, n, pair.present):
            out[k] = _kv_matmul(n, pair.present, 0, capacity)
        elif not n.domain and n.op == "Transpose" and list(n.attr("perm", [])) == swap \
                and n.outputs[0] not in g.outputs:
            users = readers.get(n.outputs[0], [])
            if not users or not all(_is_b_of_matmul(g, m, n.outputs[0]) for _, m in users):
                return None
            out[k] = None
            for j, m in users:
                out[j] = _kv_matmul(m, pair.present, 1, capacity)
        else:
            return None
    return out


def _is_b_of_matmul(g: Graph, n: Node, b: str) -> bool:
    """MatMul(A, b) with A of b's rank and the same batch dims (no broadcast)."""
    if n.domain or n.op != "MatMul" or n.inputs[1] != b or n.inputs[0] == b:
        return False
    ta, tb = g.types[n.inputs[0]], g.types[b]
    return ta.rank == tb.rank and all(same(x, y) for x, y in
                                      zip(ta.shape[:-2], tb.shape[:-2], strict=True))


def _kv_matmul(n: Node, present: str, trans_b: int, capacity) -> Node:
    return Node("KVMatMul", (n.inputs[0], present), n.outputs,
                {"trans_b": trans_b, "capacity": capacity}, n.name, TINYC)

