"""If nodes whose condition is known when compiling, replaced by the branch
they take.

Exporters write `If` where the model's Python code branched on a shape
(`if x.shape[0] == 1`) or on a flag the export fixed; with the input shapes
known, the condition is a constant and the node is plain code. The condition
counts as known when every value it is computed from is an initializer, a
Constant, or the Shape / Size of a tensor whose shape shape inference fixed
(never an input's values); onnx.reference evaluates it (compile-time folding,
as passes/fold_constants.py does). The branch's nodes then take the If's place,
their own names prefixed so they cannot clash, and Identity nodes give the
If's outputs their values. An If whose condition depends on run-time values is
left alone (its lowering refuses it); so is one whose branch holds subgraphs
of its own (their references into the branch would need renaming too).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

_SHAPE_OPS = ("Shape", "Size")


def inline_static_ifs(proto: onnx.ModelProto) -> onnx.ModelProto:
    """`proto` with every If of a known condition replaced by its branch (the
    same object when there is none)."""
    if not any(n.op_type == "If" and n.domain in ("", "ai.onnx") for n in proto.graph.node):
        return proto
    try:
        inferred = shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # noqa: BLE001 - the strict pass after this reports the model's error
        return proto
    static = _static_shapes(inferred.graph)
    graph = proto.graph
    nodes, inits, changed = [], [], False
    for node in graph.node:
        taken = _taken_branch(node, graph, static, _opset(proto))
        if taken is None:
            nodes.append(node)
            continue
        changed = True
        nodes += _inlined(node, taken, inits)
    if not changed:
        return proto
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(inits)
    return out


def _opset(proto: onnx.ModelProto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)


def _static_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    """Values whose shape inference found every dimension."""
    out = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[vi.name] = tuple(d.dim_value for d in t.shape.dim)
    for init in graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _taken_branch(node: onnx.NodeProto, graph: onnx.GraphProto,
                  static: dict[str, tuple[int, ...]], opset: int) -> onnx.GraphProto | None:
    if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
        return None
    branches = {a.name: a.g for a in node.attribute}
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for b in branches.values() for n in b.node for a in n.attribute):
        return None
    cond = _known_value(node.input[0], graph, static, opset)
    if cond is None or cond.size != 1:
        return None
    return branches["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"]


def _known_value(name: str, graph: onnx.GraphProto, static: dict[str, tuple[int, ...]],
                 opset: int) -> np.ndarray | None:
    """The value of `name` if it follows from constants and static shapes alone."""
    producers = {o: n for n in graph.node for o in n.output}
    inits = {t.name: t for t in graph.initializer}
    if name in inits:
        return numpy_helper.to_array(inits[name])
    needed, seen, stack = [], set(), [name]
    while stack:
        v = stack.pop()
        if v in seen or v in inits or v == "":
            continue
        seen.add(v)
        node = producers.get(v)
        if node is None or node.domain not in ("", "ai.onnx") or \
                any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            return None  # a graph input's values, or a node we do not evaluate
        if node.op_type in _SHAPE_OPS:
            if node.input[0] not in static:
                return None
        else:
            stack.extend(node.input)
        needed.append(node)
    return _evaluate(name, needed, inits, static, opset)


def _evaluate(name: str, needed: list[onnx.NodeProto], inits: dict, static: dict,
              opset: int) -> np.ndarray | None:
    """Run the nodes `name` needs with onnx.reference; a Shape / Size reads its
    input's static shape (a zero tensor of it stands in for the values)."""
    feeds, inputs = {}, []
    produced = {o for n in needed for o in n.output}
    for node in needed:
        if node.op_type in _SHAPE_OPS and node.input[0] not in feeds.keys() | produced:
            src = node.input[0]
            feeds[src] = np.zeros(static[src], np.float32)
            inputs.append(helper.make_tensor_value_info(src, onnx.TensorProto.FLOAT, None))
    used = {i for n in needed for i in n.input}
    graph = helper.make_graph(list(reversed(needed)), "cond", inputs,
                              [helper.make_tensor_value_info(name, 0, None)],
                              [t for k, t in inits.items() if k in used])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        (value,) = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # noqa: BLE001 - an op it cannot evaluate: leave the If alone
        return None
    return np.asarray(value)


def _inlined(node: onnx.NodeProto, branch: onnx.GraphProto,
             inits: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """The branch's nodes under new names, then Identity nodes onto the If's
    outputs; the branch's initializers, renamed, go to `inits`."""
    prefix = f"{node.name or node.output[0]}/{branch.name or 'branch'}/"
    local = {o for n in branch.node for o in n.output} | {t.name for t in branch.initializer}
    rename = {v: prefix + v for v in local if v}
    out = []
    for t in branch.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = rename[t.name]
        inits.append(copy)
    for n in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = prefix + (n.name or n.output[0])
        copy.input[:] = [rename.get(i, i) for i in n.input]
        copy.output[:] = [rename.get(o, o) for o in n.output]
        out.append(copy)
    for result, target in zip(branch.output, node.output, strict=True):
        out.append(helper.make_node("Identity", [rename.get(result.name, result.name)], [target],
                                    name=f"{prefix}{target}"))
    return out
