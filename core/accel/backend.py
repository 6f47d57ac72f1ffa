"""A GEMM-array accelerator as tinyc sees it: the region compiler (Backend +
AcceleratorBackend), what it runs for the partitioner (OpSupport) and how its
regions run (RuntimeDevice). Everything instance-specific comes from the spec.

Placement: the partitioner takes a node onto the device when the registered
op support runs its op and dtypes, the spec lists the op (`accelerator.ops`)
and `why_not` finds it within this spec's limits, dtypes and post-ops. Cost:
the partitioner's cost model reads the same spec (array, clock, DMA), and the
simulator measures the cycles afterwards.
"""

from __future__ import annotations

from ..errors import TargetError
from ..ir import Graph, Node
from ..schedule import DEFAULT_SCHEDULE, ScheduleSource
from ..target.registrations import OpPattern, OpSupport, RuntimeDevice
from ..target.spec import TargetSpec
from .engine import EngineConfig, engine_of
from .layers import GEMM_OPS, Unsupported, check_limits, job_for
from .program import Program, compile_region

ACTIVATIONS = {"Relu": "relu", "Clip": "clip"}  # fused after the array, if the spec has them
# what the partitioner sees of a node's data: 8-bit tensors, int32 biases, float32 scales
DATA_DTYPES = frozenset({"int8", "uint8", "int32", "float32"})


class GemmArrayBackend:
    """The region compiler for every spec whose `backend:` is `name`."""

    kind = "accelerator"

    def __init__(self, name: str):
        self.name = name

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        try:
            engine_of(spec)
        except ValueError as e:
            return str(e)
        return None

    def cpu_target(self, spec: TargetSpec):
        raise TargetError(f"'{spec.name}' is an accelerator: it has no CPU target")

    def why_not(self, node: Node, graph: Graph, spec: TargetSpec) -> str | None:
        """Limits of this instance (its spec), beyond what the op support says."""
        engine = engine_of(spec)
        post_op = ACTIVATIONS.get(node.qualified_op)
        if post_op is not None:  # only ever taken as a fused post-op of a pattern
            return None if post_op in engine.post_ops else \
                f"{spec.name} has no fused {post_op} (accelerator.post_ops)"
        try:
            job = job_for(node, graph)
        except Unsupported as e:
            return str(e)
        return check_limits(job, engine) or _missing_post_op(job, engine)

    def compile_region(self, graph: Graph, spec: TargetSpec,
                       schedule: ScheduleSource = DEFAULT_SCHEDULE) -> Program:
        """Each job's tiles and buffer split from `schedule` (accel/schedule.py)."""
        return compile_region(graph, engine_of(spec), schedule)


def _missing_post_op(job, engine: EngineConfig) -> str | None:
    needed = (["bias"] if job.bias is not None else []) + \
        (["requantize"] if job.scale is not None else [])
    lacking = [p for p in needed if p not in engine.post_ops]
    if lacking:
        return f"{job.name} needs {', '.join(lacking)} after the array, which {engine.name} lacks"
    return None


def why_not_on_the_array(node: Node, graph: Graph) -> str | None:
    """The array computes dense GEMMs; grouped (depthwise) convolutions do not map."""
    if node.op.endswith("Conv") and int(node.attr("group", 1)) != 1:
        return "grouped convolutions do not map onto the GEMM array"
    return None


def gemm_array_op_support(backend: str) -> OpSupport:
    """What any GEMM array runs; a spec narrows it (its ops, dtypes, post-ops, limits)."""
    fused = [(op, act) for op in ("QLinearConv", "QLinearMatMul", "com.microsoft.QGemm")
             for act in ACTIVATIONS]
    patterns = tuple(OpPattern(f"{op.split('.')[-1].lower()}_{act.lower()}", (op, act))
                     for op, act in fused)
    return OpSupport(backend=backend, ops=frozenset(GEMM_OPS), dtypes=DATA_DTYPES,
                     check=why_not_on_the_array, patterns=patterns)


def gemm_array_runtime_device(backend: str, description: str = "") -> RuntimeDevice:
    """Runs the backend's regions on the kit's simulator (bit-exact, with a cycle model)."""
    from .device import GemmArraySession

    return RuntimeDevice(f"{backend}-simulator", (backend,), GemmArraySession,
                         description=description or "bit-exact int8 GEMM-array simulator "
                                                    "with a cycle model")
