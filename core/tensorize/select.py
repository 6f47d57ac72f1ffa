"""Choosing the intrinsic for a GEMM and building its register tile.

Every intrinsic of the target's sets (those its features allow) is matched
against the op's GEMM form; those that match are ranked by
  1. fitting the target's vector registers (a value wider than `vector_bits`
     takes several registers: allowed, but a native fit is preferred),
  2. the declared `priority`,
  3. multiply-accumulates per call;
  4. multiply-accumulates per call that do useful work for this shape (a
     16-lane tile on n = 8 wastes half; a GEMV picks the narrower one);
the winner is replicated into a register tile of MR rows x NV vectors, as big
as the vector register file allows. The others are kept with the reason they
lost or did not match, for the compile report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..ir.symbolic import hint_of
from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget
from .gemm_form import GemmForm
from .match import Match, Rejected, match_intrinsic

MAX_ROWS = 8  # more rows add broadcasts faster than they save B loads
MAX_VECTORS = 3


@dataclass(frozen=True)
class RegisterTile:
    mr: int  # rows of C per micro-kernel call, one broadcast of A each
    nv: int  # intrinsic calls across n per row, one B value each

    def text(self, match: Match) -> str:
        return f"{self.mr}x{self.nv * match.tile['n']} ({self.mr} rows x {self.nv} calls)"


@dataclass(frozen=True)
class Choice:
    """The chosen intrinsic (None: the plain LLVM path) and why the others lost."""

    form: GemmForm
    match: Match | None
    tile: RegisterTile | None
    rejected: tuple[tuple[str, str], ...] = field(default=())  # (set.intrinsic, reason)

    @property
    def summary(self) -> str:
        if self.match is None or self.tile is None:
            return "no intrinsic matched: plain LLVM path"
        flips = "".join(f", {r} sign-flipped (x ^ 0x80, zero point moved)"
                        for r in self.match.flips)
        widens = "".join(f", {r} widened to {self.match.dtype(r)} when packed"
                         for r in self.match.widens)
        return f"intrinsic {self.match.name}, tile {self.tile.text(self.match)}{flips}{widens}"


GP_SPARE = 8  # general registers left for scalar values once pointers and counters have theirs


def vector_registers(target: CpuTarget) -> int:
    """Architectural vector registers: AVX-512, NEON/SVE and RVV have 32, AVX2 16,
    Helium 8."""
    features = set(target.features.split(","))
    arch = target.triple.split("-", 1)[0]
    if "+avx512f" in features or arch in ("aarch64", "arm64", "riscv64", "riscv32"):
        return 32
    if "+mve" in features:
        return 8
    return 16


def vscale_of(target: CpuTarget) -> int:
    """How many times its minimum a scalable vector holds at the spec's vector
    length (LLVM's vscale: VLEN / 64 on RISC-V, VL / 128 with SVE); 0 without."""
    features = set(target.features.split(","))
    if "+v" in features and target.triple.startswith("riscv"):
        return max(1, target.vector_bits // 64)
    if "+sve" in features:
        return max(1, target.vector_bits // 128)
    return 0


def registers_of(bits: int, target: CpuTarget) -> int:
    return max(1, -(-bits // target.vector_bits))


Accept = Callable[[Match], "str | None"]  # a kernel's own limits: None or why not


def choose(form: GemmForm, sets: tuple[IntrinsicSet, ...], target: CpuTarget,
           shape: tuple[int, int, int], accept: Accept | None = None) -> Choice:
    """The best intrinsic for `form` of `shape` (m, n, k) on `target`."""
    matches, rejected = [], []
    for iset in sets:
        for intr in iset.intrinsics:
            try:
                mt = match_intrinsic(iset.name, intr, form.dtypes, vscale_of(target))
            except Rejected as e:
                rejected.append((f"{iset.name}.{intr.name}", str(e)))
                continue
            why_not = accept(mt) if accept else None
            if why_not:
                rejected.append((mt.name, why_not))
            else:
                matches.append(mt)
    tiled = []
    for mt in matches:
        tile = register_tile(mt, target, shape[0])
        if tile is None:
            rejected.append((mt.name, "registers: one row of the tile does not fit "
                             f"{vector_registers(target)} vector registers"))
        else:
            tiled.append((mt, tile))
    if not tiled:
        return Choice(form, None, None, tuple(rejected))
    tiled.sort(key=lambda t: _rank(t[0], target, shape), reverse=True)
    best, tile = tiled[0]
    for mt, _ in tiled[1:]:
        why = _why_lower(mt, best, target, shape)
        rejected.append((mt.name, f"ranked below {best.name} ({why})"))
    return Choice(form, best, tile, tuple(rejected))


def _rank(mt: Match, target: CpuTarget, shape: tuple[int, int, int]) -> tuple:
    useful = _useful_macs(mt, shape)
    return (_native(mt, target), mt.priority, useful, useful / mt.macs)


def _useful_macs(mt: Match, shape: tuple[int, int, int]) -> float:
    """MACs per call times the fraction of lanes and k-steps that hold real data."""
    _, n, k = (hint_of(d) for d in shape)  # a ranking: valid whatever the sizes
    if n == 0 or k == 0:  # an empty product (K=0 gives zeros): no lanes hold data
        return 0.0
    tn, tk = mt.tile["n"], mt.tile["k"]
    return mt.macs * n / (-(-n // tn) * tn) * k / (-(-k // tk) * tk)


def _native(mt: Match, target: CpuTarget) -> bool:
    return all(o.type.bits <= target.vector_bits for o in mt.operands)


def _why_lower(mt: Match, best: Match, target: CpuTarget, shape: tuple[int, int, int]) -> str:
    if _native(mt, target) != _native(best, target):
        return f"its vectors are wider than the target's {target.vector_bits} bits"
    if mt.priority != best.priority:
        return f"priority {mt.priority} < {best.priority}"
    useful, best_useful = _useful_macs(mt, shape), _useful_macs(best, shape)
    if mt.macs > useful and mt.macs >= best.macs:
        return (f"shape too small: n={shape[1]}, k={shape[2]} keep {useful:.3g} of its "
                f"{mt.macs} multiply-accumulates per call busy, vs {best_useful:.3g}")
    return f"{useful:.3g} vs {best_useful:.3g} useful multiply-accumulates per call"


def fitting_tiles(target: CpuTarget, acc: int = 1, b_val: int = 1,
                  a_val: int = 1) -> list[RegisterTile]:
    """Every MR x NV tile of one-row calls whose MR*NV accumulators (`acc`
    vector registers each), NV B values and one broadcast A fit the register file."""
    costs = [("vec", acc), ("vec", b_val), ("vec", a_val)]
    return [RegisterTile(mr, nv) for nv in range(1, MAX_VECTORS + 1)
            for mr in range(1, MAX_ROWS + 1) if _fits(costs, (mr * nv, nv, 1), target)]


def match_tiles(mt: Match, target: CpuTarget) -> list[RegisterTile]:
    """The register tiles an intrinsic allows on `target`: MR/tm * NV
    accumulators + NV B values + one A value within the register file (one
    spare, which holds the products of an intrinsic that does not accumulate).
    MR is a multiple of the intrinsic's rows tm. Scalar values (a one-lane
    accumulator, the DSP's packed pairs) take general registers instead."""
    tm = mt.tile["m"]
    costs = [_cost(t, target) for t in (mt.returns, mt.operand("B").type,
                                         mt.operand("A").type)]
    return [RegisterTile(mr, nv) for nv in range(1, MAX_VECTORS + 1)
            for mr in range(tm, MAX_ROWS + 1, tm) if _fits(costs, (mr // tm * nv, nv, 1), target)]


def register_tile(mt: Match, target: CpuTarget, m: int) -> RegisterTile | None:
    """MR x NV calls: the fitting tile with the most accumulators, then the most
    rows; a thinner one where M has fewer rows."""
    tiles = match_tiles(mt, target)
    if not tiles:
        return None
    tm = mt.tile["m"]
    best = max(tiles, key=lambda t: (t.mr * t.nv, t.mr))
    if m >= best.mr:  # a guard where m is symbolic: M >= MR and M < MR compile apart
        return best
    # fewer rows than a full tile: as many as M has (its hint where symbolic,
    # or one row where the hint is on the other side of this decision)
    rows = hint_of(m) if hint_of(m) < best.mr else 1
    return RegisterTile(max(tm, -(-rows // tm) * tm), best.nv)


def _cost(t, target: CpuTarget) -> tuple[str, int]:
    """(register file, registers) one value of type t takes."""
    if t.lanes == 1 and t.bits <= 64:
        return "gp", 1
    return "vec", registers_of(t.bits, target)


def _fits(costs: list[tuple[str, int]], counts: tuple[int, ...], target: CpuTarget) -> bool:
    budget = {"vec": vector_registers(target) - 1, "gp": GP_SPARE}
    for (bank, regs), count in zip(costs, counts, strict=True):
        budget[bank] -= regs * count
    return min(budget.values()) >= 0
