"""Symbolic shape inference: every value's shape as expressions of the inputs'
sizes, and the contents of the small integer tensors exporters compute shapes
with (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, Range, Slice ends).

ONNX's own inference names a dimension it cannot compute `unk__N`, which
loses how it relates to the inputs (a KV cache's `past + seq`). Here each
node's outputs are derived again from SymDims (ir/symbolic.py), with rules for
the ops that shape chains are made of; other ops keep ONNX's types, whose
named dims must then be input symbols. Runs under the compile's tracer, so a
decision on a symbol (a Slice clamp, a Reshape's -1) is decided or guarded.

A node whose integer output is fully known becomes a constant (all numbers)
or a `tinyc.DimValues` node (some symbolic), which writes the values from the
run's sizes: consumers that need the contents at compile time (Reshape,
Expand, ConstantOfShape) read them from `Graph.dim_values`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ModelError
from ..ir import DType, Graph, Node, TensorType
from ..ir.symbolic import SymDim
from ..ir.unbacked import is_data_dependent
from . import shape_rules_llm  # noqa: F401  (registers the LLM ops' rules)
from .data_dependent_shapes import data_dependent_nodes  # noqa: F401 (registers its rules)
from .shape_rules import MAX_VALUES, RULES, VALUE_TYPES, Dims, ShapeState


def infer_symbolic(g: Graph, symbols: Mapping[str, SymDim]) -> Graph:
    """The graph with SymDim shapes for every value, DimValues nodes for
    symbolic shape tensors, and constants for the ones that became numbers."""
    st = ShapeState(g, symbols)
    for v, t in g.types.items():
        if v in g.constants:
            st.shapes[v] = tuple(t.shape)
            a = g.constants[v]
            if t.dtype in VALUE_TYPES and a.size <= MAX_VALUES and a.ndim <= 1:
                st.values[v] = tuple(int(x) for x in a.reshape(-1))
    for v in g.inputs:
        st.shapes[v] = _bound(g.types[v].shape, symbols, v)
    nodes, constants = [], dict(g.constants)
    dim_values: dict[str, Dims] = {}
    for node in g.nodes:
        _infer_node(st, node)
        known = _known_outputs(st, node)
        if known is None:
            nodes.append(node)
            continue
        out = node.outputs[0]
        if all(not isinstance(d, SymDim) for d in known):
            dtype = g.types[out].dtype.numpy
            constants[out] = np.array(known, dtype).reshape([int(d) for d in st.shape(out)])
        else:
            dim_values[out] = known
            nodes.append(Node("DimValues", (), (out,), {"values": known},
                              name=node.name, domain="tinyc"))
    types = {v: TensorType(g.types[v].dtype if v in g.types else _dtype_of(g, v), st.shapes[v])
             for v in st.shapes if v in g.types}
    return g.with_nodes(nodes, types=types, constants=constants).replace(dim_values=dim_values)


def _dtype_of(g: Graph, v: str) -> DType:
    raise ModelError(f"value '{v}' has no type")


def _known_outputs(st: ShapeState, node: Node) -> Dims | None:
    """The contents of a node's single integer output, when all are known."""
    if len(node.outputs) != 1 or node.domain:
        return None
    out = node.outputs[0]
    return st.values.get(out)


def _bound(shape: Sequence, symbols: Mapping[str, SymDim], value: str) -> Dims:
    out = []
    for d in shape:
        if isinstance(d, str):
            bound = symbols.get(d)
            if bound is None:
                bound = parse_dim(d, symbols)
            if bound is None:
                raise ModelError(f"dimension '{d}' of '{value}' is not a size of any input "
                                 "and could not be derived from them")
            out.append(bound)
        else:
            out.append(d)
    return tuple(out)


_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b,
           ast.Mod: lambda a, b: a % b}


def parse_dim(text: str, symbols: Mapping[str, SymDim]):
    """A dim_param that is an expression of the inputs' symbols, as exporters
    write them ("past + seq", "batch*seq"); None if it is anything else."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    return _eval_dim(tree, symbols)


def _eval_dim(node: ast.AST, symbols: Mapping[str, SymDim]):
    if isinstance(node, ast.Name):
        return symbols.get(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval_dim(node.left, symbols), _eval_dim(node.right, symbols)
        return None if a is None or b is None else _BINOPS[type(node.op)](a, b)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        a = _eval_dim(node.operand, symbols)
        return None if a is None else -a
    return None


def _infer_node(st: ShapeState, node: Node) -> None:
    rule = RULES.get(node.qualified_op)  # other domains' ops are named with theirs
    derived = None
    if rule is not None and all(not i or i in st.shapes for i in node.inputs):
        derived = rule(st, node)
    for k, out in enumerate(node.outputs):
        if not out:
            continue
        onnx_type = st.g.types.get(out)
        mine = derived[k] if derived is not None and k < len(derived) else None
        if mine is None:
            if onnx_type is None:
                raise ModelError(f"the shape of '{out}' ({node.op} '{node.name}') is unknown")
            st.shapes[out] = _bound(onnx_type.shape, st.symbols, out)
        else:
            st.shapes[out] = _agree(mine, onnx_type, out)


def _agree(mine: Dims, onnx_type: TensorType | None, name: str) -> Dims:
    """Our shape, checked against ONNX's numbers where it has them."""
    if onnx_type is None:
        return mine
    theirs = onnx_type.shape
    if len(theirs) != len(mine):
        raise ModelError(f"'{name}' has rank {len(theirs)} by ONNX's inference, "
                         f"{len(mine)} by tinyc's")
    for a, b in zip(mine, theirs, strict=True):
        if is_data_dependent(a):  # a declared number is only one run's count
            continue
        if isinstance(b, int) and a != b:  # a guard where `a` is symbolic
            raise ModelError(f"'{name}' has shape {list(theirs)} by ONNX's inference, "
                             f"{[str(d) for d in mine]} by tinyc's")
    return tuple(b if isinstance(b, int) and not is_data_dependent(a) else a
                 for a, b in zip(mine, theirs, strict=True))


