"""What lowering produces: per graph node, the kernel calls that compute it.
The contract between lowering, tensorizing, memory planning and codegen.

A Kernel names a generated function with a plain C signature; codegen builds
it (codegen/kernel.py get_or_build).

An argument of a call is one of:
- Buf(value, offset): a tensor of the graph (input, output, activation or
  constant), `offset` bytes into it;
- Scratch(tag, nbytes): temporary memory living only during this node
  (e.g. an im2col matrix), placed in the arena by the memory planner;
- Const(tag, array): a compile-time array made by lowering (e.g. weights
  packed for a GEMM micro-kernel), stored with the model's weights;
- DimTable(tag, values): a small i64 array (shapes, strides) some of whose
  values are symbolic; the entry fills it on its stack from the run's sizes;
- DimSlot(symbol): the address of a data-dependent size's slot in the run's
  dims array, for the kernel that computes that size (ir/symbolic.py,
  Tracer.unbacked); the entry reads it back for every later use;
- ErrorSite(text): the error record, for a check kernel; `text` names what
  is checked ("Gather node 'emb': input 'ids'") in the error a failure raises;
- int / float: an i64 / f32 immediate; an int may be a SymDim, computed by the
  entry from the run's sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..ir.symbolic import SymDim
from ..schedule import Decision

if TYPE_CHECKING:  # a Kernel's build function emits LLVM IR; describing one needs no llvmlite
    import llvmlite.ir as ir

    from ..target.machine import CpuTarget

# Parameter kinds of a kernel's C signature. ERR: the error record
# (runtime/status.py); a kernel taking it is a check and returns an i32 status.
PTR, I64, F32, ERR = "ptr", "i64", "f32", "err"


@dataclass(frozen=True)
class Kernel:
    name: str  # the symbol; encodes the specialization, e.g. "gemm_f32_8x32_biasrow"
    params: tuple[str, ...]  # one of PTR / I64 / F32 per argument
    build: Callable[[ir.Module, CpuTarget], ir.Function]  # defines a function called `name`

    @property
    def is_check(self) -> bool:
        return ERR in self.params

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kernel) and other.name == self.name


@dataclass(frozen=True)
class Buf:
    value: str
    offset: int = 0


@dataclass(frozen=True)
class Scratch:
    tag: str
    nbytes: int


@dataclass(frozen=True, eq=False)
class Const:
    tag: str
    array: np.ndarray


@dataclass(frozen=True, eq=False)
class DimTable:
    tag: str
    values: tuple
    bits: int = 64  # element width: i64, or i32 for an int32 tensor

def int_table(tag: str, values) -> Const | DimTable:
    """An i64 array argument: a compile-time constant where every value is
    known, else filled in by the entry for each run."""
    values = tuple(values)
    if any(isinstance(v, SymDim) for v in values):
        return DimTable(tag, values)
    return Const(tag, np.array(values, np.int64))



@dataclass(frozen=True)
class DimSlot:
    symbol: str


@dataclass(frozen=True)
class ErrorSite:
    text: str


Arg = Buf | Scratch | Const | DimTable | DimSlot | ErrorSite | int | float


@dataclass(frozen=True)
class Call:
    kernel: Kernel
    args: tuple[Arg, ...]

    def __post_init__(self) -> None:
        if len(self.args) != len(self.kernel.params):
            raise AssertionError(
                f"{self.kernel.name} takes {len(self.kernel.params)} args, got {len(self.args)}"
            )


@dataclass
class LoweredNode:
    """The calls computing one node. `alias_of` marks a view (Reshape, Flatten,
    Dropout, ...): the output shares the input's memory and no call is made."""

    node_name: str
    op: str
    outputs: tuple[str, ...]
    calls: list[Call] = field(default_factory=list)
    semantics: str = ""  # the op in index notation, for reports
    alias_of: str | None = None
    # inputs whose storage the output may take (link/memory_plan.py decides): the
    # calls read each element of such an input only to write the same element of
    # the output, through kernels that do not promise noalias
    in_place: tuple[str, ...] = ()
    note: str = ""  # which kernel/schedule was chosen and why, for reports
    intrinsic: str = ""  # the tensorized intrinsic ("set.name"), "" if none
    rejected: tuple[tuple[str, str], ...] = ()  # (intrinsic, why it was not used)
    # symbolic sizes: (guard, calls, note) — `calls` above run where the guard
    # holds, these where it does not (e.g. a GEMM tiled for M < 8 and M >= 8)
    alt: tuple | None = None
    # calls run before the variant is chosen: kernels that set the data-dependent
    # sizes (DimSlot) the choice reads
    setup: list[Call] = field(default_factory=list)
    # a tunable lowering's decision (schedule.Decision): its knobs and whether
    # they came from a tuning record; None where the node has no tunable workload
    schedule: Decision | None = None

    @property
    def every_call(self) -> list[Call]:
        """Every call any variant makes. (With data-dependent sizes, the other
        variant, and an item of `calls`, may be a LoweredNode of variants.)"""
        own = [c for item in self.setup + self.calls
               for c in (item.every_call if isinstance(item, LoweredNode) else [item])]
        if self.alt is None:
            return own
        other = self.alt[1]
        return own + (other.every_call if isinstance(other, LoweredNode) else list(other))
