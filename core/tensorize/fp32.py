"""Tensorizing fp32 GEMMs: which intrinsic step and register tile the GEMM
driver (codegen/kernels/gemm/gemm.py) gets for an op, or the plain path."""

from __future__ import annotations

from dataclasses import dataclass

from ..codegen.kernels.gemm.gemm import default_tile
from ..codegen.kernels.gemm.micro_step import MicroStep
from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget
from .gemm_form import GemmForm, NotAGemm, gemm_form
from .match import Match
from .select import Choice, choose, fitting_tiles, match_tiles
from .steps import micro_step


@dataclass(frozen=True)
class Fp32Plan:
    choice: Choice | None  # None: the op is not a GEMM (see reason)
    step: MicroStep | None  # None: plain fmul + fadd
    mr: int
    nv: int
    lanes: int
    reason: str = ""

    @property
    def nr(self) -> int:
        return self.nv * self.lanes

    @property
    def summary(self) -> str:
        if self.choice is None:
            return f"not tensorized ({self.reason}): plain LLVM path"
        if self.step is None:
            return f"{self.choice.summary}, tile {self.mr}x{self.nr}"
        return self.choice.summary

    @property
    def step_text(self) -> str:
        """The multiply-accumulate alone (for kernels with their own tiling)."""
        if self.step is None or self.choice is None or self.choice.match is None:
            return "plain LLVM multiply-add (no intrinsic matched)"
        return f"intrinsic {self.choice.match.name}"

    @property
    def rejected(self) -> tuple[tuple[str, str], ...]:
        return self.choice.rejected if self.choice else ()


def fp32_accepts(mt: Match) -> str | None:
    """The fp32 GEMM driver's own limits."""
    if mt.tile["k"] != 1:
        return f"k extent {mt.tile['k']}: the fp32 panels hold one k per step"
    if mt.tile["m"] != 1 or mt.tile["n"] == 1:
        return "tile: the fp32 micro-kernel keeps a vector of n lanes within one row"
    if mt.returns.vscale:
        return "scalable vectors: the fp32 micro-kernel feeds fixed ones only"
    return None


def plan_fp32_gemm(statement: str, dtypes: dict[str, str], a: str, shape: tuple[int, int, int],
                   target: CpuTarget, sets: tuple[IntrinsicSet, ...],
                   rows: int | None = None) -> Fp32Plan:
    """The plan for C = A @ B of `shape` (m, n, k) stated as `statement` with `a` as
    A; `rows` overrides the tile's row count (the transposed conv's 7-row panels)."""
    try:
        form: GemmForm = gemm_form(statement, dtypes, a)
    except NotAGemm as e:
        mr, nv = default_tile(target.f32_lanes, shape[0])
        return Fp32Plan(None, None, mr, nv, target.f32_lanes, str(e))
    choice = choose(form, sets, target, shape, fp32_accepts)
    if choice.match is None or choice.tile is None:
        mr, nv = default_tile(target.f32_lanes, shape[0])
        return Fp32Plan(choice, None, rows or mr, nv, target.f32_lanes)
    step = micro_step(choice.match)
    return Fp32Plan(choice, step, rows or choice.tile.mr, choice.tile.nv, step.n)


def tile_candidates(plan: Fp32Plan, target: CpuTarget, m: int) -> list[tuple[int, int]]:
    """The register tiles (MR, NV) a tuner may try for this plan: those its
    intrinsic (or the plain path, one register per value) fits in the register
    file with at least half the accumulators of the largest, no more rows than
    M has; the plan's own tile always among them."""
    if plan.step is not None and plan.choice is not None and plan.choice.match is not None:
        tiles = match_tiles(plan.choice.match, target)
    else:
        tiles = fitting_tiles(target)
    most = max((t.mr * t.nv for t in tiles), default=0)
    keep = {(t.mr, t.nv) for t in tiles if 2 * t.mr * t.nv >= most and t.mr <= max(1, m)}
    return sorted(keep | {(plan.mr, plan.nv)})
