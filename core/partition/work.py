"""How much work a node is: multiply-accumulates for the GEMM family, element
operations for everything else. Shapes must be static (they are after import).

The cost model only needs orders of magnitude, so a node is recognised by the
shape of its operands rather than by knowing every op's input order: a
convolution has a weight of the input's rank, a matrix product a reduction over
its first operand's last axis.
"""

from __future__ import annotations

import math

from ..ir import Graph, Node

CONV_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "tinyc.Conv", "tinyc.QLinearConv"})
MATMUL_OPS = frozenset({"MatMul", "MatMulInteger", "QLinearMatMul", "Gemm", "tinyc.Gemm",
                        "tinyc.QLinearMatMul", "tinyc.QLinearGemm"})


def macs(node: Node, graph: Graph) -> int:
    """Multiply-accumulates of a convolution or matrix product; 0 for other ops."""
    op = node.qualified_op
    if op in CONV_OPS:
        return _conv_macs(node, graph)
    if op in ("ConvTranspose", "tinyc.ConvTranspose"):  # each input element x C_out/g * taps
        w = graph.type_of(node.inputs[1])
        return graph.type_of(node.inputs[0]).numel * math.prod(int(d) for d in w.shape[1:])
    if op in MATMUL_OPS:
        return _matmul_macs(node, graph)
    return 0


def element_ops(node: Node, graph: Graph) -> int:
    """Elements the node writes: the work of a non-GEMM op, to first order."""
    return sum(graph.type_of(o).numel for o in node.outputs if o)


def bytes_of(graph: Graph, value: str) -> int:
    return graph.type_of(value).nbytes


def _conv_macs(node: Node, graph: Graph) -> int:
    x = graph.type_of(node.inputs[0])
    out = graph.type_of(node.outputs[0])
    kernel = node.attr("kernel_shape")
    if not kernel:
        weight = next((graph.type_of(v) for v in node.inputs[1:]
                       if v and graph.type_of(v).rank == x.rank), None)
        kernel = weight.shape[2:] if weight is not None else (1,)
    cin_per_group = int(x.shape[1]) // int(node.attr("group", 1) or 1)
    return out.numel * cin_per_group * math.prod(int(k) for k in kernel)


def _matmul_macs(node: Node, graph: Graph) -> int:
    a = graph.type_of(node.inputs[0])
    out = graph.type_of(node.outputs[0])
    k = a.shape[0] if node.attr("transA", 0) and a.rank == 2 else a.shape[-1]
    return out.numel * int(k)
