"""Questions about data-dependent ("unbacked") sizes, asked of the compile in
progress (Tracer.unbacked, ir/symbolic.py): is a size one, which symbol is
it, and how large can it be (what memory is planned for)."""

from __future__ import annotations

from .symbolic import SymDim, current_tracer, dim, evaluate_poly, poly_substitute, poly_symbols


def upper_bound(d: int | SymDim) -> int | SymDim:
    """A size with each data-dependent symbol at its bound: what memory is
    planned for (sizes only grow with their symbols)."""
    t = current_tracer()
    if not isinstance(d, SymDim) or t is None or not t.unbacked \
            or not poly_symbols(d.poly) & t.unbacked.keys():
        return d
    p = poly_substitute(d.poly, t.unbacked)
    return dim(p, evaluate_poly(p, t.hints))


def is_data_dependent(d: object) -> bool:
    t = current_tracer()
    return isinstance(d, SymDim) and t is not None \
        and bool(poly_symbols(d.poly) & t.unbacked.keys())


def unbacked_symbol(d: object) -> str | None:
    """The name of the data-dependent symbol `d` is, if it is exactly one."""
    t = current_tracer()
    if not isinstance(d, SymDim) or t is None or len(d.poly) != 1:
        return None
    (mono, coef), = d.poly
    if coef != 1 or len(mono) != 1 or mono[0][1] != 1 or mono[0][0] not in t.unbacked:
        return None
    return mono[0][0]


def data_dependent_run(dims) -> str | None:
    """The first of `dims` if all are data-dependent symbols that follow one
    another in the dims array (one kernel can then write them as an array)."""
    names = [unbacked_symbol(d) for d in dims]
    t = current_tracer()
    if not names or None in names or t is None:
        return None
    order = list(t.unbacked)
    start = order.index(names[0])
    return names[0] if order[start:start + len(names)] == names else None
