"""Shapes given as run-time data (a Reshape's target, an Expand's shape, a
Tile's repeats, a OneHot's depth, a TopK's k, a MaxUnpool's output_shape, fed
as graph inputs or computed from them) are checked before the node runs: the
kernels were built for the shapes inference derived, so a different value must
be refused (an InputError naming the input, the position, the value and the
value compiled), never honoured silently with the old shape.

One table: per op, which input holds a shape and, per position, the values
that agree with the compiled output. A shape that is a constant, or that
symbolic inference derived from the inputs' sizes (Graph.dim_values), needs
no check: it is what the compile used.
"""

from __future__ import annotations

from collections.abc import Callable

from ..codegen.kernels.ops.check import check_values_kernel
from ..ir import DType, Node
from ..ir.symbolic import same
from ..ir.unbacked import is_data_dependent
from ..program import Buf, Call, ErrorSite, LowerContext, int_table
from .broadcast import shape_of

# (expected value, and two more that are also fine) per position of the shape
Pairs = list[tuple[object, ...]]


def _reshape(node: Node, ctx: LowerContext) -> Pairs:
    """-1 is fine anywhere (the other positions pin the element count); 0
    where it copies the input's dim and that is the dim compiled."""
    x, out = shape_of(ctx, node.inputs[0]), shape_of(ctx, node.outputs[0])
    copies = not int(node.attr("allowzero", 0))
    return [(o, -1, 0 if copies and k < len(x) and same(x[k], o) else o)
            for k, o in enumerate(out)]


def _expand(node: Node, ctx: LowerContext) -> Pairs:
    x, out = shape_of(ctx, node.inputs[0]), shape_of(ctx, node.outputs[0])
    n = _length(ctx, node.inputs[1])
    xs = (1,) * (len(out) - len(x)) + tuple(x)
    pairs = []
    for t in range(len(out) - n, len(out)):
        pairs.append((out[t], 1 if same(xs[t], out[t]) else out[t], out[t]))  # 1 broadcasts x's dim
    return pairs


def _tile(node: Node, ctx: LowerContext) -> Pairs:
    x, out = shape_of(ctx, node.inputs[0]), shape_of(ctx, node.outputs[0])
    return [(o // d,) * 3 if d else (0, 0, 0) for d, o in zip(x, out, strict=True)]


def _exact(node: Node, ctx: LowerContext) -> Pairs:
    return [(o,) * 3 for o in shape_of(ctx, node.outputs[0])]


def _split(node: Node, ctx: LowerContext) -> Pairs:
    axis = int(node.attr("axis", 0)) % len(shape_of(ctx, node.inputs[0]))
    return [(shape_of(ctx, o)[axis],) * 3 for o in node.outputs if o]


def _one_hot(node: Node, ctx: LowerContext) -> Pairs:
    """The depth: the output's extent along `axis` (a scalar or a 1-element tensor)."""
    out = shape_of(ctx, node.outputs[0])
    return [(out[int(node.attr("axis", -1)) % len(out)],) * 3]


def _center_crop_pad(node: Node, ctx: LowerContext) -> Pairs:
    """One size per axis in `axes` (all axes by default), in that order."""
    out = shape_of(ctx, node.outputs[0])
    axes = node.attr("axes") or range(len(out))
    return [(out[int(a) % len(out)],) * 3 for a in axes]


def _topk(node: Node, ctx: LowerContext) -> Pairs:
    """k: the outputs' extent along `axis` (a 1-element tensor)."""
    out = shape_of(ctx, node.outputs[0])
    return [(out[int(node.attr("axis", -1)) % len(out)],) * 3]


def _spatial(node: Node, ctx: LowerContext) -> Pairs:
    """Col2Im's image_shape: the output's spatial dims."""
    return [(o,) * 3 for o in shape_of(ctx, node.outputs[0])[2:]]


# op -> (index of the shape input, expected values)
SHAPE_INPUTS: dict[str, tuple[int, Callable[[Node, LowerContext], Pairs]]] = {
    "Reshape": (1, _reshape), "Expand": (1, _expand), "Tile": (1, _tile),
    "ConstantOfShape": (0, _exact), "Split": (1, _split), "Resize": (3, _exact),
    "OneHot": (1, _one_hot), "CenterCropPad": (1, _center_crop_pad), "TopK": (1, _topk),
    "Col2Im": (1, _spatial), "MaxUnpool": (2, _exact),
}


def _length(ctx: LowerContext, name: str) -> int:
    (n,) = shape_of(ctx, name) or (1,)
    return int(n)


def shape_input_checks(node: Node, ctx: LowerContext) -> list[Call]:
    """The check of the node's shape input, if it is run-time data."""
    spec = None if node.domain else SHAPE_INPUTS.get(node.op)
    if spec is None:
        return []
    k, expected = spec
    name = node.inputs[k] if k < len(node.inputs) else ""
    g = ctx.graph
    if not name or g.is_const(name) or name in g.dim_values \
            or any(is_data_dependent(d) for o in node.outputs if o for d in shape_of(ctx, o)):
        return []  # (a data-dependent output shape is read from the input, not checked)
    dt = g.type_of(name).dtype
    if dt not in (DType.int64, DType.int32):
        return []
    pairs = expected(node, ctx)
    if len(shape_of(ctx, name)) > 1 or _length(ctx, name) != len(pairs) or not pairs:
        return []  # a malformed shape input: the op's own shape checks refuse it
    table = int_table(f"{node.name}.{name}.expected", [v for p in pairs for v in p])
    site = f"{node.op} node '{node.name}': shape input '{name}'"
    return [Call(check_values_kernel(dt, len(pairs)), (ErrorSite(site), Buf(name), table))]
