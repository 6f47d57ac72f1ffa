"""The per-run Python work of a loaded model, kept small: an LLM decode step
costs a few hundred microseconds, so a microsecond per tensor matters.

A run's feeds are checked against specs computed at load (no dtype or list
building per run); anything unusual (a missing name, a list instead of an
array, a strided view) takes the careful path with its clear errors.
"""

from __future__ import annotations

import ctypes

import numpy as np


class FeedSpecs:
    """Per input: name, numpy dtype, and the shape (a tuple of ints, or None
    where the model's dims are symbolic)."""

    def __init__(self, inputs, strided: frozenset[str] = frozenset()):
        self.names = [i.name for i in inputs]
        # inputs the native code never reads (a shared KV cache's past): views pass
        self.any_layout = [i.name in strided for i in inputs]
        self.dtypes = [np.dtype(i.dtype) for i in inputs]
        self.shapes = [tuple(i.shape) if all(isinstance(d, int) for d in i.shape) else None
                       for i in inputs]

    def arrays(self, feeds) -> list[np.ndarray] | None:
        """The feeds in input order if each is a C-contiguous array of the
        right dtype (and shape, where fixed); None: check them carefully."""
        arrays = in_order(feeds, self.names)
        if arrays is None:
            return None
        for a, dt, shape, free in zip(arrays, self.dtypes, self.shapes, self.any_layout,
                                      strict=True):
            if type(a) is not np.ndarray or a.dtype != dt or not (a.flags.c_contiguous or free) \
                    or (shape is not None and a.shape != shape):
                return None
        return arrays


def in_order(feeds, names: list[str]) -> list | None:
    """feeds[name] for each name, if `feeds` is a dict of exactly those names."""
    if type(feeds) is not dict or len(feeds) != len(names):
        return None
    try:
        return [feeds[n] for n in names]
    except KeyError:
        return None


def address(a: np.ndarray) -> int:
    """The data pointer of a C-contiguous array (ctypes' buffer view is about
    twice as fast as `a.ctypes.data`; it needs a writable, non-empty array).
    A view (a shared KV cache's rows) goes the array interface's way, with no
    exception raised and caught."""
    if not a.flags.c_contiguous:
        return a.__array_interface__["data"][0]
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


class SizeBinder:
    """The symbols' sizes in a run's feeds, in one pass over precomputed
    specs: per input its dtype, rank, fixed dims and which axes carry which
    symbol. `bind` returns None for anything unusual (a missing name, a list,
    a wrong dtype or dim, one symbol with two sizes): the careful path then
    raises the clear error."""

    def __init__(self, inputs, symbols):
        index = {s: k for k, s in enumerate(symbols)}
        self.symbols = list(symbols)
        self.count = len(symbols)
        self.names = [i.name for i in inputs]
        self.specs = [(np.dtype(i.dtype), len(i.shape),
                       tuple((a, d) for a, d in enumerate(i.shape) if isinstance(d, int)),
                       tuple((a, index[d]) for a, d in enumerate(i.shape) if d in index))
                      for i in inputs]

    def bind(self, feeds) -> tuple[list[np.ndarray], tuple[int, ...]] | None:
        arrays = in_order(feeds, self.names)
        if arrays is None:
            return None
        values: list[int | None] = [None] * self.count
        for a, (dtype, rank, fixed, syms) in zip(arrays, self.specs, strict=True):
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != rank:
                return None
            shape = a.shape
            for axis, want in fixed:
                if shape[axis] != want:
                    return None
            for axis, k in syms:
                seen = values[k]
                if seen is None:
                    values[k] = shape[axis]
                elif seen != shape[axis]:
                    return None
        if None in values:
            return None
        return arrays, tuple(values)
