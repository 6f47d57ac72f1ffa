"""simplify_shapes: remove ops that only forward or re-view their input.

- Identity, and inference Dropout whose mask nobody reads, are removed: their
  readers read the input instead. An inference Dropout whose mask is read
  becomes Identity plus a mask of trues expanded to the input's shape.
- A chain of Reshape / Flatten / Squeeze / Unsqueeze over static types becomes
  one Reshape to the final shape; a Reshape to the shape it already has goes.

A removed op's output that is a graph output keeps its name: the op that
produced the input is renamed to produce it instead. When that is impossible
(the input is a graph input, a constant, or another graph output) the op stays.

Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains over static shapes are
left to fold_constants, which turns the shape operand into a constant.
"""

from __future__ import annotations

import numpy as np

from ..ir import Node, TensorType
from .base import FunctionPass
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph

_VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def remove_identity(view: GraphView, node: Node) -> Rewrite | None:
    if not is_onnx(node, "Identity"):
        return None
    return forward_input(view, node)


def remove_inference_dropout(view: GraphView, node: Node) -> Rewrite | None:
    if not is_onnx(node, "Dropout") or not _is_inference_dropout(view, node):
        return None
    return forward_input(view, node)


def inference_dropout_mask(view: GraphView, node: Node) -> Rewrite | None:
    """An inference Dropout whose mask is read: y = x, and the mask is all true
    (ONNX's definition when not training), expanded to x's shape at run time so
    that symbolic shapes work too."""
    if not is_onnx(node, "Dropout") or len(node.outputs) < 2 or not node.outputs[1]:
        return None
    if not _is_inference_dropout(view, node, mask_read=True):
        return None
    y, mask = node.outputs[0], node.outputs[1]
    true, shape = view.fresh(mask + "_true"), view.fresh(mask + "_shape")
    rank = len(view.type_of(node.inputs[0]).shape)
    new = (Node("Identity", (node.inputs[0],), (y,), name=node.name),
           Node("Shape", (node.inputs[0],), (shape,), name=view.fresh(node.name + "_shape")),
           Node("Expand", (true, shape), (mask,), name=view.fresh(node.name + "_mask")))
    value = np.ones((), np.bool_)
    return Rewrite(old=(node,), new=new, constants={true: value},
                   types={true: TensorType.of(value),
                          shape: TensorType.of(np.zeros(rank, np.int64))})


def remove_noop_reshape(view: GraphView, node: Node) -> Rewrite | None:
    if not is_onnx(node, *_VIEW_OPS):
        return None
    src, dst = view.type_of(node.inputs[0]), view.type_of(node.outputs[0])
    if not (src.is_static and src == dst):
        return None
    return forward_input(view, node)


def collapse_reshape_chain(view: GraphView, node: Node) -> Rewrite | None:
    """view_op(view_op(x)) -> Reshape(x, static shape of the result)."""
    if not is_onnx(node, *_VIEW_OPS):
        return None
    inner = view.producer(node.inputs[0])
    if inner is None or not is_onnx(inner, *_VIEW_OPS) or not view.has_single_use(inner.outputs[0]):
        return None
    src, dst = view.type_of(inner.inputs[0]), view.type_of(node.outputs[0])
    if not (src.is_static and dst.is_static) or 0 in dst.shape:
        return None  # a literal 0 in a Reshape shape means "copy this dim"
    shape = np.array(dst.shape, dtype=np.int64)
    shape_name = view.fresh(node.outputs[0] + "_shape")
    reshape = Node("Reshape", (inner.inputs[0], shape_name), node.outputs, name=node.name)
    return Rewrite(old=(inner, node), new=(reshape,), constants={shape_name: shape},
                   types={shape_name: TensorType.of(shape)})


def forward_input(view: GraphView, node: Node) -> Rewrite | None:
    """Remove `node`, whose first output equals its first input."""
    src, dst = node.inputs[0], node.outputs[0]
    if dst not in view.outputs:
        return Rewrite(old=(node,), renames={dst: src})
    producer = view.producer(src)
    if producer is None or src in view.outputs:
        return None  # the graph output needs a node to define it under its own name
    renamed = producer.with_(outputs=tuple(dst if o == src else o for o in producer.outputs))
    return Rewrite(old=(producer, node), new=(renamed,), at=producer, renames={src: dst})


def _is_inference_dropout(view: GraphView, node: Node, mask_read: bool = False) -> bool:
    if not mask_read and len(node.outputs) > 1 and node.outputs[1] and \
            view.is_used(node.outputs[1]):
        return False
    if node.attr("is_test", 1) == 0:
        return False  # opset < 7 training mode
    training = view.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if len(node.inputs) > 2 and node.inputs[2] and training is None:
        return False  # training_mode decided at run time
    return training is None or not bool(training)


SIMPLIFY_RULES = (remove_identity, remove_inference_dropout, inference_dropout_mask,
                  remove_noop_reshape, collapse_reshape_chain)

simplify_shapes_pass = FunctionPass("simplify_shapes",
                                    lambda g: rewrite_graph(g, SIMPLIFY_RULES))
