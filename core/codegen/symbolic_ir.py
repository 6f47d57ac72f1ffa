"""Symbolic dimensions in generated code: the sizes of a run arrive as an i64
array (one per symbol, in the artifact's order) and every SymDim argument,
offset and size is computed from it (LLVM folds the repeats).

Besides the entry, a symbolic library exports two small functions the runtime
calls before a run:

    int  tinyc_guards(const int64_t *dims)  0 if every guard holds, else 1 + the
                                            index of the first that does not
    void tinyc_sizes(const int64_t *dims, int64_t *out)
                                            the arena's bytes, then the dims of
                                            every output, then of every input
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from ..ir.symbolic import Guard, Poly, SymDim
from . import llvm_util as u

GUARDS = "tinyc_guards"
SIZES = "tinyc_sizes"


class SymbolValues:
    """Loads each symbol's value from the dims array once, at the builder's
    current position (the function's entry block). A data-dependent symbol
    (`unbacked`) is written into its slot by a kernel during the run, so it is
    loaded where it is used instead."""

    def __init__(self, b: ir.IRBuilder, dims: ir.Value, symbols: Sequence[str],
                 unbacked: Sequence[str] = ()):
        self.dims, self.unbacked = dims, set(unbacked)
        self.index = {s: k for k, s in enumerate(symbols)}
        self.values = {s: u.load(b, dims, u.i64(k), u.I64, align=8)
                       for k, s in enumerate(symbols) if s not in self.unbacked}

    def slot(self, b: ir.IRBuilder, symbol: str) -> ir.Value:
        """The address of a symbol's slot in the dims array (for the kernel that sets it)."""
        return b.gep(self.dims, [u.i64(8 * self.index[symbol])], source_etype=u.I8)

    def emit(self, b: ir.IRBuilder, d: int | SymDim) -> ir.Value:
        if not isinstance(d, SymDim):
            return u.i64(int(d))
        return self.poly(b, d.poly)

    def poly(self, b: ir.IRBuilder, p: Poly) -> ir.Value:
        total = None
        for mono, coef in p:
            term = u.i64(coef)
            for atom, power in mono:
                v = self._atom(b, atom)
                for _ in range(power):
                    term = v if (isinstance(term, ir.Constant) and coef == 1) else b.mul(term, v)
            total = term if total is None else b.add(total, term)
        return total if total is not None else u.i64(0)

    def holds(self, b: ir.IRBuilder, g: Guard) -> ir.Value:
        """An i1: whether the guard's relation has its recorded outcome."""
        v = self.poly(b, g.poly)
        cond = b.icmp_signed(">=" if g.kind == "ge" else "==", v, u.i64(0))
        return cond if g.holds else b.not_(cond)

    def _atom(self, b: ir.IRBuilder, atom) -> ir.Value:
        if isinstance(atom, str):
            if atom in self.unbacked:
                return u.load(b, self.dims, u.i64(self.index[atom]), u.I64, align=8)
            return self.values[atom]
        kind, q, d = atom
        num, den = self.poly(b, q), u.i64(d)
        if kind == "ceildiv":  # ceil(q / d) == floor((q + d - 1) / d)
            num, kind = b.add(num, u.i64(d - 1)), "floordiv"
        rem = b.srem(num, den)
        # floor semantics for a negative numerator (d > 0): C's % truncates
        fix = b.icmp_signed("<", rem, u.i64(0))
        if kind == "mod":
            return b.select(fix, b.add(rem, den), rem)
        quo = b.sdiv(num, den)
        return b.select(fix, b.sub(quo, u.i64(1)), quo)


def build_guards(module: ir.Module, symbols: Sequence[str], guards: Sequence[Guard]) -> None:
    fn, b = u.define(module, GUARDS, [u.PTR], ["dims"], ret=u.I32)
    fn.linkage = "external"
    sv = SymbolValues(b, fn.args[0], symbols)
    for k, g in enumerate(guards):
        holds = sv.holds(b, g)
        with b.if_then(b.not_(holds)):
            b.ret(ir.Constant(u.I32, k + 1))
    b.ret(ir.Constant(u.I32, 0))


def build_sizes(module: ir.Module, symbols: Sequence[str],
                values: Sequence[int | SymDim]) -> None:
    fn, b = u.define(module, SIZES, [u.PTR, u.PTR], ["dims", "out"], ret=ir.VoidType())
    fn.linkage = "external"
    sv = SymbolValues(b, fn.args[0], symbols)
    for k, d in enumerate(values):
        u.store(b, sv.emit(b, d), fn.args[1], u.i64(k))
    b.ret_void()


CAPACITIES = "tinyc_capacities"
UNBACKED_COUNT = "tinyc_unbacked_count"


def build_capacities(module: ir.Module, symbols: Sequence[str], unbacked: Sequence[str],
                     capacities: Sequence[int | SymDim]) -> None:
    """For a model with data-dependent sizes (the last len(unbacked) slots of
    the dims array, set by kernels during a run):

        void tinyc_capacities(const int64_t *dims, int64_t *out)
                                    each output's element count at the bounds
                                    of those sizes (what the runtime allocates)
        const int64_t tinyc_unbacked_count  how many slots kernels write (the
                                    runtime checks model.json against it)
    """
    fn, b = u.define(module, CAPACITIES, [u.PTR, u.PTR], ["dims", "out"], ret=ir.VoidType())
    fn.linkage = "external"
    sv = SymbolValues(b, fn.args[0], symbols, unbacked)
    for k, d in enumerate(capacities):
        u.store(b, sv.emit(b, d), fn.args[1], u.i64(k))
    b.ret_void()
    count = ir.GlobalVariable(module, u.I64, UNBACKED_COUNT)
    count.initializer = u.i64(len(unbacked))
    count.global_constant = True
