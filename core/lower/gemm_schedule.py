"""The fp32 GEMM's tunable schedule: the register tile among those its
intrinsic allows (tensorize/fp32.py), the block sizes MC/NC/KC
(codegen/kernels/gemm/gemm_blocking.py) and, for threaded code, the axis of C the
threads split (codegen/kernels/gemm/gemm_parallel.py), as one knob space per node. Without a
tuning record the defaults are exactly the hand-picked choices."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..codegen.kernels.gemm.gemm import SPLITS, default_tile
from ..codegen.kernels.gemm.gemm_blocking import (
    KC_CAP,
    KC_CAP_ONE_PANEL,
    Blocking,
    blocking_knobs,
    configured_blocking,
    default_blocking,
)
from ..codegen.kernels.gemm.gemm_ukernel import PREFETCH_BYTES
from ..ir import Node
from ..ir.symbolic import SymDim
from ..program import LowerContext
from ..schedule import Decision, Knob, KnobSpace
from ..tensorize.fp32 import Fp32Plan, tile_candidates
from ..tensorize.select import RegisterTile
from .tunable import decide, node_workload

KERNEL = "gemm_f32"
# how far ahead the micro-kernel may prefetch (bytes): none, about a cache-line
# run of A, up to a few k-steps of B (gemm_ukernel.py's measurements)
PREFETCH_DISTANCES = (0, 512, 1024, 2048, 4096)


def one_row_panel(plan: Fp32Plan, m: int) -> bool:
    """A GEMM whose rows fit one thin tile (a GEMV-like m, a decode step's): it
    reads each line of B once. Read off the plan's tile, which default_tile
    narrows to m's rows when m is small (for a symbolic m, on the side of the
    guard this variant is for: no new guard on m); a static m must fit it (the
    small-image conv's 7-row tile runs over 49 pixels)."""
    thin = plan.mr < default_tile(plan.lanes, 1 << 30)[0]
    return thin and (isinstance(m, SymDim) or m <= plan.mr)


def default_prefetch(plan: Fp32Plan, m: int) -> int:
    """No software prefetch for a GEMM of one row panel (a GEMV-like m, a decode
    step's): each line of B is read once, from memory, and the hardware's stream
    prefetcher does better alone. Measured, 6 chained 1x4096x4096 GEMVs: 1 thread
    27.2 GB/s without against 23.4 with 2 KB (onnxruntime 24.3), 2 threads 32.9
    against 31.3 (onnxruntime 33.6). More rows reuse B from cache: PREFETCH_BYTES
    (a 32-row GEMM measured alike with 0-4 KB)."""
    return 0 if one_row_panel(plan, m) else PREFETCH_BYTES


def default_kc_cap(plan: Fp32Plan, m: int) -> int:
    """The longest default K block (gemm_blocking.py): one block up to
    KC_CAP_ONE_PANEL for a GEMM of one row panel, which reuses no B panel."""
    return KC_CAP_ONE_PANEL if one_row_panel(plan, m) else KC_CAP


@dataclass(frozen=True)
class GemmSchedule:
    plan: Fp32Plan  # the tensorizer's plan with the decided register tile
    decision: Decision | None  # None: symbolic sizes, not tunable (the defaults)
    mnk: tuple[int, int, int]
    kc_fixed: int | None
    kc_cap: int  # the longest default K block (default_kc_cap)

    @property
    def prefetch(self) -> int:
        """Bytes ahead the micro-kernel prefetches its panels (GemmSpec.prefetch)."""
        default = default_prefetch(self.plan, self.mnk[0])
        if self.decision is None:
            return default
        return int(self.decision.config.get("prefetch", default))

    @property
    def split(self) -> str:
        """The axis of C the threads split (GemmSpec.split)."""
        return "auto" if self.decision is None else self.decision.config.get("split", "auto")

    def blocking(self) -> Blocking:
        m, n, k = self.mnk
        if self.decision is None:
            return default_blocking(self.plan.mr, self.plan.nr, m, n, k, self.kc_fixed,
                                    self.kc_cap)
        return configured_blocking(self.decision.config, self.plan.mr, self.plan.nr, m, n, k,
                                   self.kc_fixed, self.kc_cap)


def schedule_gemm(ctx: LowerContext, node: Node, plan: Fp32Plan, mnk: tuple[int, int, int],
                  kc_fixed: int | None = None) -> GemmSchedule:
    """The tile and blocks of C = A @ B of size (m, n, k) computed for `node`.
    `kc_fixed`: a K block a summation order fixes (not tunable then)."""
    m, n, k = mnk
    kc_cap = default_kc_cap(plan, m)
    workload = node_workload(node, ctx, KERNEL, (("m", m), ("n", n), ("k", k)))
    if workload is None:
        return GemmSchedule(plan, None, mnk, kc_fixed, kc_cap)
    knobs = (Knob("tile", tuple(tile_candidates(plan, ctx.target, m)), (plan.mr, plan.nv)),) \
        + blocking_knobs(plan.mr, plan.nr, m, n, k, kc_fixed, kc_cap)
    if ctx.target.threads > 1:  # the thread split: the run-time cost model's, or fixed
        knobs += (Knob("split", SPLITS, "auto"),)
    knobs += (Knob("prefetch", PREFETCH_DISTANCES, default_prefetch(plan, m)),)
    decision = decide(ctx, node, workload, KnobSpace(knobs))
    mr, nv = (int(x) for x in decision.config["tile"])
    choice = plan.choice
    if decision.tuned and choice is not None and choice.tile is not None:  # the tile used
        choice = replace(choice, tile=RegisterTile(mr, nv))
    return GemmSchedule(replace(plan, mr=mr, nv=nv, choice=choice), decision, mnk, kc_fixed,
                        kc_cap)


def tuned_text(decision: Decision | None) -> str:
    """What a note adds for a tuned node (untuned notes stay as they were)."""
    if decision is None or not decision.tuned:
        return ""
    return f", tuned ({', '.join(f'{k}={v}' for k, v in decision.config.items())})"
