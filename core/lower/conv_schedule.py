"""The depthwise convolution's tunable algorithm: where its taps are loaded
from (codegen/kernels/gemm/conv_direct.py has both):

- "padded": each input plane copied into a zero-padded plane first, then
  plain vector loads (any stride);
- "direct": masked loads straight from the input, no copy (W-strides 1 and 2).

Untuned, direct is taken where a row is one vector (DepthwiseSpec.direct_pays);
with a W-stride of 1 or 2 both are legal everywhere, so the choice is a knob of
the workload there. Other strides have one algorithm: not tunable."""

from __future__ import annotations

from ..codegen.kernels.gemm.conv_direct import DepthwiseSpec
from ..ir import Node
from ..program import LowerContext
from ..schedule import Decision, Knob, KnobSpace
from .tunable import decide, node_workload

KERNEL = "conv_dw_f32"
ALGORITHMS = ("padded", "direct")


def schedule_depthwise(ctx: LowerContext, node: Node, planes: int, ho: int, wo: int,
                       taps: int, sw: int, lanes: int) -> tuple[bool, Decision | None]:
    """(direct loads?, the decision; None where there is nothing to choose)."""
    default = DepthwiseSpec.direct_pays(sw, wo, lanes)
    if sw not in (1, 2):
        return default, None
    dims = (("planes", planes), ("ho", ho), ("wo", wo), ("taps", taps))
    workload = node_workload(node, ctx, KERNEL, dims)
    if workload is None:
        return default, None
    space = KnobSpace((Knob("algorithm", ALGORITHMS, ALGORITHMS[default]),))
    decision = decide(ctx, node, workload, space)
    return decision.config["algorithm"] == "direct", decision
