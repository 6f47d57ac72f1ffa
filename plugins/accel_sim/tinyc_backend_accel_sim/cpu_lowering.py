"""The int8 GEMM tinyc's CPU lowering builds for a node, taken as the engine job.

tinyc lowers quantized convolutions and matrix products by describing an
IntGemm (weights, zero points, int32 bias, float32 requantization scales,
im2col geometry) and handing it to `tinyc.lower.igemm.int_gemm_calls`, which
asks the tensorizer (`tinyc.tensorize.int_gemm.plan_int_gemm`) for kernel
calls. Running the node's CPU lowering with that planner replaced by a
recorder yields exactly those descriptions: the accelerator then computes from
the same constants as the CPU, so the two agree bit for bit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tinyc.codegen.machine import CpuTarget
from tinyc.ir import Graph, Node
from tinyc.lower import LowerContext, NotLowerable, lowering_for
from tinyc.lower.igemm import IntGemm, IntGemmLowering

from .int_gemm import job_from_int_gemm
from .jobs import GemmJob
from .layers import Unsupported

_LOCK = threading.Lock()  # the planner is replaced process-wide while recording
# the constants a lowering prepares do not depend on the CPU it lowers for
_ANY_CPU = CpuTarget("x86_64-unknown-linux-gnu", "generic", "", 128)


def job_from_cpu_lowering(node: Node, graph: Graph) -> GemmJob | None:
    """None when tinyc has no CPU lowering for the node's op."""
    lower = lowering_for(node)
    if lower is None:
        return None
    with _recording() as gemms:
        try:
            lower(node, LowerContext(graph, _ANY_CPU))
        except NotLowerable as e:
            raise Unsupported(str(e)) from None
    if len(gemms) != 1:
        raise Unsupported(f"{node.qualified_op} lowers to {len(gemms)} int8 GEMMs on the CPU "
                          "(one per group, or a direct kernel); the engine runs one")
    return job_from_int_gemm(node.name, gemms[0], node.inputs[0], node.outputs[0])


@contextlib.contextmanager
def _recording() -> Iterator[list[IntGemm]]:
    import tinyc.tensorize.int_gemm as planner

    gemms: list[IntGemm] = []

    def record(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
        gemms.append(gemm)
        return IntGemmLowering([], "recorded for accel_sim")

    with _LOCK:
        original = planner.plan_int_gemm
        planner.plan_int_gemm = record
        try:
            yield gemms
        finally:
            planner.plan_int_gemm = original
