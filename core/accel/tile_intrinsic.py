"""Which GEMM command of the spec's intrinsic sets drives the array.

The engine's GEMM command is declared in YAML by its semantics, like any
intrinsic; the core's tensorizer classifies both it and the layer as the GEMM
core C[m, n] += A[m, k] * B[k, n] (tinyc.tensorize.gemm_form), so an intrinsic
matches by what it computes: its k and n extents must be the array's rows and
columns, its dtypes 8-bit inputs and an int32 accumulator (an int8 operand
stands for a uint8 one: the datapath subtracts zero points before multiplying).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..target.intrinsics import IntrinsicSet
from ..tensorize.gemm_form import NotAGemm, gemm_form

EIGHT_BIT = {"int8", "uint8"}


@dataclass(frozen=True)
class GemmTile:
    name: str  # set.intrinsic
    opcode: str
    m: int
    n: int
    k: int


class NoTile(ValueError):
    """No intrinsic of the spec's sets drives this array; the message lists why."""


def array_tile(sets: tuple[IntrinsicSet, ...] | list[IntrinsicSet], rows: int,
               cols: int) -> GemmTile:
    reasons = []
    for iset in sets:
        for intr in iset.intrinsics:
            why = _why_not(intr, rows, cols)
            if why is None:
                form = gemm_form(intr.compute, intr.dtypes, intr.compute.inputs[0].tensor)
                ext = {r: math.prod(intr.tile[i] for i in getattr(form, r)) for r in "mnk"}
                return GemmTile(f"{iset.name}.{intr.name}", intr.emit.code, **ext)
            reasons.append(f"{iset.name}.{intr.name}: {why}")
    raise NoTile(f"no GEMM command for a {rows}x{cols} array"
                 + "".join(f"; {r}" for r in reasons))


def _why_not(intr, rows: int, cols: int) -> str | None:
    if intr.emit.kind != "opcode":
        return "not an engine opcode"
    try:
        form = gemm_form(intr.compute, intr.dtypes, intr.compute.inputs[0].tensor)
    except NotAGemm as e:
        return f"semantics: {e}"
    if form.batch:
        return "semantics: a batched tile"
    if form.dtypes["A"] not in EIGHT_BIT or form.dtypes["B"] not in EIGHT_BIT \
            or form.dtypes["C"] != "int32":
        return f"dtypes {form.dtypes} are not 8-bit inputs into int32"
    k = math.prod(intr.tile[i] for i in form.k)
    n = math.prod(intr.tile[i] for i in form.n)
    if (k, n) != (rows, cols):
        return f"tile k={k}, n={n} is not the {rows}x{cols} array"
    return None
