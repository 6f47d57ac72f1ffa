"""The int8 GEMM tinyc's CPU lowering builds for a node, taken as the engine job.

tinyc lowers quantized convolutions and matrix products by describing an
IntGemm (weights, zero points, int32 bias, float32 requantization scales,
im2col geometry); `tinyc.lower.igemm.int_gemms_of` hands those descriptions to an
accelerator instead of planning CPU kernels for them. The accelerator then
computes from the same constants as the CPU, so the two agree bit for bit.
"""

from __future__ import annotations

from ..errors import NotLowerable
from ..ir import Graph, Node
from ..lower.igemm import int_gemms_of
from .int_gemm import job_from_int_gemm
from .jobs import GemmJob
from .layers import Unsupported


def job_from_cpu_lowering(node: Node, graph: Graph) -> GemmJob | None:
    """None when tinyc has no CPU lowering for the node's op."""
    try:
        gemms = int_gemms_of(node, graph)
    except NotLowerable as e:
        raise Unsupported(str(e)) from None
    if gemms is None:
        return None
    if len(gemms) != 1:
        raise Unsupported(f"{node.qualified_op} lowers to {len(gemms)} int8 GEMMs on the CPU "
                          "(one per group, or a direct kernel); the engine runs one")
    return job_from_int_gemm(node.name, gemms[0], node.inputs[0], node.outputs[0])
