"""The int8 GEMM tinyc's CPU lowering builds for a node, taken as the engine job.

tinyc lowers quantized convolutions and matrix products by describing an
IntGemm (weights, zero points, int32 bias, float32 requantization scales,
im2col geometry) and handing it to the int8 GEMM planner named by the lowering
context (by default the tensorizer). Running the node's CPU lowering with a
recording planner yields exactly those descriptions: the accelerator then
computes from the same constants as the CPU, so the two agree bit for bit.
"""

from __future__ import annotations

from tinyc.errors import NotLowerable
from tinyc.ir import Graph, Node
from tinyc.lower import lowering_for
from tinyc.program import IntGemm, IntGemmLowering, LowerContext
from tinyc.target.machine import CpuTarget

from .int_gemm import job_from_int_gemm
from .jobs import GemmJob
from .layers import Unsupported

# the constants a lowering prepares do not depend on the CPU it lowers for
_ANY_CPU = CpuTarget("x86_64-unknown-linux-gnu", "generic", "", 128)


def job_from_cpu_lowering(node: Node, graph: Graph) -> GemmJob | None:
    """None when tinyc has no CPU lowering for the node's op."""
    lower = lowering_for(node)
    if lower is None:
        return None
    gemms: list[IntGemm] = []

    def record(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
        gemms.append(gemm)
        return IntGemmLowering([], "recorded for accel_sim")

    try:
        lower(node, LowerContext(graph, _ANY_CPU, int_gemm_planner=record))
    except NotLowerable as e:
        raise Unsupported(str(e)) from None
    if len(gemms) != 1:
        raise Unsupported(f"{node.qualified_op} lowers to {len(gemms)} int8 GEMMs on the CPU "
                          "(one per group, or a direct kernel); the engine runs one")
    return job_from_int_gemm(node.name, gemms[0], node.inputs[0], node.outputs[0])
