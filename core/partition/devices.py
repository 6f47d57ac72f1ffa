"""What the partitioner knows of each device: what it runs and how fast.

A `DeviceProfile` is plain data plus one function, so tests can build devices
that do not exist; `profiles_for` builds them for a resolved deployment from
the target specs (array size, clock, DMA) and the op support plugins registered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..ir import Graph, Node
from ..target.registrations import OpPattern, OpSupport
from ..target.targets import Deployment, Device

# Why a device does not take a node. The explain report counts CPU fallbacks by these.
UNSUPPORTED_OP = "unsupported op"
UNSUPPORTED_DTYPE = "unsupported dtype"
UNSUPPORTED_SHAPE = "unsupported shape"
NOT_WORTH_IT = "not worth the transfer"
AVOIDED = "kept off by the user"
CATEGORIES = (UNSUPPORTED_OP, UNSUPPORTED_DTYPE, UNSUPPORTED_SHAPE, NOT_WORTH_IT, AVOIDED)

# A CPU's speed when nothing better is known: a core at ~3 GHz with two FMA
# pipes reaching about half of peak on GEMMs, and elementwise ops bound by memory.
CPU_CLOCK_HZ = 3.0e9
CPU_FMA_PIPES = 2
CPU_GEMM_EFFICIENCY = 0.5
CPU_ELEMENTS_PER_CYCLE = 4.0
# 8-bit GEMMs over fp32 ones: VNNI dot products do 4x the MACs per instruction,
# but packing, sign flips, zero-point sums and requantization eat much of it;
# taken as the fp32 rate (a declared figure, like the ones above).
CPU_INT8_SPEEDUP = 1.0


@dataclass(frozen=True)
class Verdict:
    category: str  # one of CATEGORIES
    reason: str


Judge = Callable[[Node, Graph], Verdict | None]  # None: the device runs the node


@dataclass(frozen=True)
class DeviceProfile:
    name: str  # the target name, e.g. accel_sim
    kind: str  # "cpu" or "accelerator"
    judge: Judge
    macs_per_s: float  # float32 (an accelerator: its native dtype)
    elements_per_s: float
    int8_macs_per_s: float = 0.0  # 0: the same as macs_per_s
    patterns: tuple[OpPattern, ...] = ()
    dma_bytes_per_s: float = float("inf")  # device memory <-> on-chip buffers
    link_bytes_per_s: float = float("inf")  # host memory <-> device memory
    link_latency_s: float = 0.0  # per transfer or per launch


def runs_everything(node: Node, graph: Graph) -> Verdict | None:
    return None


def cpu_profile(name: str, vector_bits: int) -> DeviceProfile:
    lanes = max(vector_bits // 32, 1)
    return DeviceProfile(
        name, "cpu", runs_everything,
        macs_per_s=lanes * CPU_FMA_PIPES * CPU_CLOCK_HZ * CPU_GEMM_EFFICIENCY,
        elements_per_s=CPU_ELEMENTS_PER_CYCLE * CPU_CLOCK_HZ,
        int8_macs_per_s=CPU_INT8_SPEEDUP * lanes * CPU_FMA_PIPES * CPU_CLOCK_HZ
        * CPU_GEMM_EFFICIENCY)


def accelerator_profile(name: str, params: dict, judge: Judge,
                        patterns: tuple[OpPattern, ...] = ()) -> DeviceProfile:
    """From a spec's `accelerator:` mapping: array {rows, cols}, clock_mhz, dma."""
    clock = float(params.get("clock_mhz", 1000)) * 1e6
    array = params.get("array", {"rows": 1, "cols": 1})
    dma = params.get("dma", {})
    bytes_per_cycle = float(dma.get("bytes_per_cycle", 8))
    return DeviceProfile(
        name, "accelerator", judge,
        macs_per_s=array["rows"] * array["cols"] * clock,
        elements_per_s=array["cols"] * clock,
        patterns=patterns,
        dma_bytes_per_s=bytes_per_cycle * clock,
        link_bytes_per_s=bytes_per_cycle * clock,
        link_latency_s=float(dma.get("setup_cycles", 0)) / clock)


def judge_from_support(supports: Sequence[OpSupport], spec_ops: Sequence[str] = (),
                       spec_check: Callable[[Node, Graph], str | None] | None = None) -> Judge:
    """A node is taken when some registration runs its op on its dtypes and its
    finer check passes, the spec lists the op (if the spec lists ops) and the
    backend's spec-aware check (shape limits of this instance) finds nothing wrong."""
    listed = frozenset(spec_ops)

    def judge(node: Node, graph: Graph) -> Verdict | None:
        op = node.qualified_op
        takers = [s for s in supports if op in s.ops]
        if not takers or (listed and not _listed(op, listed)):
            return Verdict(UNSUPPORTED_OP, f"{op} is not an op the device runs")
        refused = [_dtype_refusal(s, node, graph) for s in takers]
        if all(refused):
            return Verdict(UNSUPPORTED_DTYPE, str(refused[0]))
        reasons = [s.why_not(node, graph) for s in takers]
        if all(reasons):
            return Verdict(UNSUPPORTED_SHAPE, str(reasons[0]))
        problem = spec_check(node, graph) if spec_check else None
        return Verdict(UNSUPPORTED_SHAPE, problem) if problem else None

    return judge


def _dtype_refusal(support: OpSupport, node: Node, graph: Graph) -> str | None:
    if not support.dtypes:
        return None
    for v in (*node.inputs, *node.outputs):
        if v and graph.type_of(v).dtype.name not in support.dtypes:
            return f"{graph.type_of(v).dtype.name} data ({v}) is not a dtype the device takes"
    return None


def _listed(op: str, listed: frozenset[str]) -> bool:
    """Spec op lists use ONNX names; tinyc's fused ops (tinyc.QLinearConv) count as theirs."""
    return op in listed or op.split(".")[-1] in listed


def profiles_for(deployment: Deployment, support_for: Callable[[str], list[OpSupport]]
                 ) -> list[DeviceProfile]:
    """Host first, then the accelerators sorted by name (ties break by name)."""
    host = deployment.host
    profiles = [cpu_profile(host.spec.name, host.cpu.vector_bits if host.cpu else 128)]
    for dev in sorted(deployment.accelerators, key=lambda d: d.spec.name):
        profiles.append(_accelerator(dev, support_for(dev.spec.backend)))
    return profiles


def _accelerator(dev: Device, supports: list[OpSupport]) -> DeviceProfile:
    params = dev.spec.accelerator or {}
    spec_check = getattr(dev.backend, "why_not", None)
    check = (lambda n, g: spec_check(n, g, dev.spec)) if spec_check else None
    judge = judge_from_support(supports, params.get("ops", ()), check)
    patterns = tuple(p for s in supports for p in s.patterns)
    return accelerator_profile(dev.spec.name, params, judge, patterns)
