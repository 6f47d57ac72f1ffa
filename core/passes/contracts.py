"""Shape contracts: every node's parameter shapes against its attributes and
against each other, checked before lowering, as onnxruntime's kernels check
them at run time (ONNX shape inference accepts all of these).

One table, CONTRACTS: op -> the rules for it. A rule takes a view of the node
(`_N`: dims of its inputs, its attributes) and returns a problem or None; it
only judges dims that are numbers (a symbolic dim is checked by guards). The
first problem becomes a ModelError naming the node, the op and what is wrong.
A lowering that meets a violated contract would divide by zero, index past a
weight, or return garbage; here it is a sentence instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import ModelError
from ..ir import Graph, Node
from .base import FunctionPass

# The most any one tensor may hold; a model asking for more (ConstantOfShape of
# [2^40]) is refused here, not by a numpy MemoryError at load.
MAX_TENSOR_BYTES = 1 << 34  # 16 GiB


class _N:
    """A node with its inputs' dims at hand; dims that are not numbers are None."""

    def __init__(self, node: Node, g: Graph):
        self.node, self.g = node, g

    def dims(self, i: int) -> list[int | None] | None:
        """Input i's dims, or None if it is absent or of unknown rank."""
        if i >= len(self.node.inputs) or not self.node.inputs[i]:
            return None
        t = self.g.types.get(self.node.inputs[i])
        return None if t is None else [d if isinstance(d, int) else None for d in t.shape]

    def attr(self, key: str, default=None):
        return self.node.attr(key, default)


Rule = Callable[[_N], "str | None"]


def _differ(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a != b


def _at_least_one(*keys: str) -> Rule:
    """Integer attributes (or each entry of a list) that must be positive."""
    def rule(n: _N) -> str | None:
        for k in keys:
            v = n.attr(k)
            values = list(v) if isinstance(v, list | tuple) else [] if v is None else [v]
            if any(not isinstance(x, int) or x < 1 for x in values):
                return f"attribute {k}={v} must be at least 1"
        return None
    return rule


def _conv_groups(n: _N) -> str | None:
    x, w, group = n.dims(0), n.dims(1), n.attr("group", 1)
    if not x or not w or len(x) < 2 or len(w) < 2:
        return None
    c_in = x[1]
    transposed = n.node.op == "ConvTranspose"
    per_group = w[0] if transposed else w[1]
    if _differ(c_in, None if per_group is None else per_group * (1 if transposed else group)):
        return (f"input has {c_in} channels but the weight {w} with group={group} "
                f"takes {per_group * (1 if transposed else group)}")
    if not transposed and w[0] is not None and w[0] % group:
        return f"{w[0]} output channels do not divide into group={group}"
    return None


def _transpose_bias(n: _N) -> str | None:
    """ConvTranspose: W is [C_in, C_out/group, k...]; the bias holds one value
    per output channel, C_out = W[1] * group (shape inference does not check it)."""
    w, b, group = n.dims(1), n.dims(2), n.attr("group", 1)
    if w and len(w) > 1 and w[1] is not None and b is not None \
            and (len(b) != 1 or _differ(b[0], w[1] * group)):
        return f"the bias has shape {b}; W {w} with group={group} makes [{w[1] * group}]"
    return None


def _channel_vectors(*inputs: int) -> Rule:
    """Inputs that hold one value per channel (dim 1 of input 0)."""
    def rule(n: _N) -> str | None:
        x = n.dims(0)
        c = x[1] if x and len(x) > 1 else None
        for i in inputs:
            v = n.dims(i)
            if v is not None and (len(v) != 1 or _differ(v[0], c)):
                return f"input {i} ('{n.node.inputs[i]}') has shape {v}; expected [{c}]"
        return None
    return rule


def _group_norm(n: _N) -> str | None:
    x, groups = n.dims(0), n.attr("num_groups", 1)
    c = x[1] if x and len(x) > 1 else None
    if c is not None and c % groups:
        return f"{c} channels do not divide into num_groups={groups}"
    return None


def _recurrent(gates: int) -> Rule:
    """W [dirs, gates*H, input], R [dirs, gates*H, H], B [dirs, 2*gates*H]."""
    def rule(n: _N) -> str | None:
        h = n.attr("hidden_size")
        dirs = 2 if n.attr("direction", "forward") in ("bidirectional", b"bidirectional") else 1
        x, w, r = n.dims(0), n.dims(1), n.dims(2)
        want = {1: [dirs, gates * h if h else None, x[-1] if x else None],
                2: [dirs, gates * h if h else None, h],
                3: [dirs, 2 * gates * h if h else None]}
        for i, shape in want.items():
            got = n.dims(i)
            if got is None:
                continue
            if len(got) != len(shape) or any(_differ(a, b) for a, b in zip(got, shape,
                                                                             strict=False)):
                return (f"input {i} ('{n.node.inputs[i]}') has shape {got}; hidden_size={h}, "
                        f"{dirs} direction(s) and the input's size make it {shape}")
        if h is None and w and r and _differ(w[1], None if r[2] is None else gates * r[2]):
            return f"W {w} and R {r} disagree on the hidden size"
        return None
    return rule


def _einsum(n: _N) -> str | None:
    eq = n.attr("equation", "")
    eq = eq.decode() if isinstance(eq, bytes) else eq
    lhs = eq.replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for i, term in enumerate(lhs):
        dims = n.dims(i)
        if dims is None or "..." in term or len(term) != len(dims):
            continue  # broadcast dims and wrong ranks: shape inference's business
        for letter, d in zip(term, dims, strict=True):
            if d is not None and sizes.setdefault(letter, d) != d:
                return (f"index '{letter}' is {sizes[letter]} in one operand and {d} in "
                        f"operand {i} of '{eq}'")
    return None


def _attention(n: _N) -> str | None:
    """Q [.., S, E], K [.., L, E], V [.., L, Ev] (3-D: hidden sizes, 4-D: per head)."""
    q, k, v = n.dims(0), n.dims(1), n.dims(2)
    if not k or not v or len(k) != len(v):
        return None
    if _differ(k[-2], v[-2]):
        return f"K has {k[-2]} positions but V has {v[-2]}"
    if q and len(q) == len(k) == 4 and _differ(q[-1], k[-1]):
        return f"Q's head size {q[-1]} differs from K's {k[-1]}"
    return None


def _nonempty_spatial(n: _N) -> str | None:
    x = n.dims(0)
    if x and len(x) > 2 and any(d == 0 for d in x[2:]):
        return f"input of shape {x} has no elements to pool over"
    return None


def _reduces_over_something(k_of: Callable[[_N], int | None]) -> Rule:
    """A product over an empty K that folding could not turn into zeros (some
    input is computed at run time) has no kernel that writes its output."""
    def rule(n: _N) -> str | None:
        out = n.g.types.get(n.node.outputs[0])
        nonempty = out is not None and all(isinstance(d, int) and d > 0 for d in out.shape)
        if k_of(n) == 0 and nonempty:
            return "the product runs over an empty dimension (K=0) with run-time inputs"
        return None
    return rule


def _matmul_k(n: _N) -> int | None:
    a = n.dims(0)
    if not a:
        return None
    return a[-2] if n.node.op == "Gemm" and n.attr("transA", 0) else a[-1]


def _conv_k(n: _N) -> int | None:
    w = n.dims(1)
    return None if not w or len(w) < 2 else math.prod(d or 1 for d in w[1:]) and w[1]


def _blocks(n: _N) -> str | None:
    """DepthToSpace: channels divide into blocksize^2; SpaceToDepth: H and W into blocksize."""
    x, b = n.dims(0), n.attr("blocksize", 1)
    if not x or len(x) != 4 or b < 1:
        return None
    if n.node.op == "DepthToSpace" and x[1] is not None and x[1] % (b * b):
        return f"{x[1]} channels do not divide into blocksize^2 = {b * b}"
    if n.node.op == "SpaceToDepth" and any(d is not None and d % b for d in x[2:]):
        return f"height and width {x[2:]} do not divide into blocksize {b}"
    return None


CONTRACTS: dict[str, tuple[Rule, ...]] = {
    "Conv": (_at_least_one("group", "strides", "dilations", "kernel_shape"), _conv_groups,
             _reduces_over_something(_conv_k)),
    "MatMul": (_reduces_over_something(_matmul_k),),
    "Gemm": (_reduces_over_something(_matmul_k),),
    "ConvTranspose": (_at_least_one("group", "strides", "dilations", "kernel_shape"),
                      _conv_groups, _transpose_bias),
    "QLinearConv": (_at_least_one("group", "strides", "dilations"),),
    "ConvInteger": (_at_least_one("group", "strides", "dilations"),),
    "MaxPool": (_at_least_one("kernel_shape", "strides", "dilations"),),
    "AveragePool": (_at_least_one("kernel_shape", "strides"),),
    "LpPool": (_at_least_one("kernel_shape", "strides"),),
    "GlobalMaxPool": (_nonempty_spatial,),
    "GlobalLpPool": (_nonempty_spatial,),
    "LRN": (_at_least_one("size"),),
    "GroupNormalization": (_at_least_one("num_groups"), _group_norm),
    "InstanceNormalization": (_channel_vectors(1, 2),),
    "LSTM": (_at_least_one("hidden_size"), _recurrent(4)),
    "GRU": (_at_least_one("hidden_size"), _recurrent(3)),
    "RNN": (_at_least_one("hidden_size"), _recurrent(1)),
    "Einsum": (_einsum,),
    "Attention": (_at_least_one("q_num_heads", "kv_num_heads"), _attention),
    "SpaceToDepth": (_at_least_one("blocksize"), _blocks),
    "DepthToSpace": (_at_least_one("blocksize"), _blocks),
}


def check_contracts(g: Graph) -> Graph:
    """Raise ModelError for the first node that breaks its op's contract or
    makes a tensor larger than MAX_TENSOR_BYTES; the graph is returned as is."""
    for node in g.nodes:
        problem = broken_contract(node, g)
        if problem:
            raise ModelError(f"node '{node.name}' ({node.op}): {problem}")
    _check_sizes(g)
    return g


def broken_contract(node: Node, g: Graph) -> str | None:
    """What `node` breaks of its op's contract, or None. Constant folding asks
    for Einsum: numpy evaluates some broken ones anyway (a diagonal of sizes 0
    and 1 gives one uninitialized element), and the check must see them."""
    if node.domain not in ("", "ai.onnx"):
        return None
    n = _N(node, g)
    for rule in CONTRACTS.get(node.op, ()):
        problem = rule(n)
        if problem:
            return problem
    return None


def _check_sizes(g: Graph) -> None:
    for name, t in g.types.items():
        if any(isinstance(d, int) and d < 0 for d in t.shape):
            raise ModelError(f"value '{name}' has a negative dimension: shape {list(t.shape)}")
        if all(isinstance(d, int) for d in t.shape):
            # zeros left out: [0, 2^32, 2^32] is empty, yet no allocator takes it
            nbytes = math.prod(d or 1 for d in t.shape) * max(t.dtype.itemsize, 1)
            if nbytes > MAX_TENSOR_BYTES:
                raise ModelError(f"value '{name}' of shape {list(t.shape)} would take "
                                 f"{nbytes / 2**30:.0f} GiB; tinyc refuses tensors over "
                                 f"{MAX_TENSOR_BYTES >> 30} GiB")


check_contracts_pass = FunctionPass("check_contracts", check_contracts)
