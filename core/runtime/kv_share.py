"""Runs of a model whose KV cache pairs share storage (the compiler's
passes/share_kv_cache.py; model.json "symbolic" -> "kv_share").

Each pair's present output lives in a buffer of `capacity` rows along the
sequence axis: element (o, r, j) at ((o * capacity + r) * inner + j), o the
flattened index of the dims before the axis. The native code writes only the
new rows (at row `past`) and reads the first past + new rows; the capacity
reaches it as the last symbol of the dims array.

A present may be any array with that layout: a compact one (capacity = its
rows, as a plain run allocates), or a view `buf[..., :past + new, :]` of a
caller's buffer of `capacity` rows. A past that already is the first rows of
its present (`buf[..., :past, :]`, the same memory) is not copied; any other
past is copied into the present first (the copying path). Every pair must
agree on the capacity, and a layout the native code would misread is refused
with an InputError before it runs.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArtifactError, InputError


class KVShare:
    def __init__(self, spec: dict, input_names: list[str], output_names: list[str]):
        self.symbol: str = spec["symbol"]
        if not all(p in input_names and q in output_names for p, q, _ in spec["pairs"]):
            raise ArtifactError(f"model.json: kv_share pairs {spec['pairs']} are not inputs "
                                f"and outputs of the model")
        self.pairs = [(input_names.index(p), output_names.index(q), int(a))
                      for p, q, a in spec["pairs"]]
        self.past_names = frozenset(input_names[i] for i, _, _ in self.pairs)
        self.present_names = frozenset(output_names[j] for _, j, _ in self.pairs)
        self._names = {(i, j): (input_names[i], output_names[j]) for i, j, _ in self.pairs}

    def prepare(self, arrays: list[np.ndarray], outs: list[np.ndarray]) -> int:
        """The capacity every present buffer has, after putting each past's
        rows into its present where they are not there already."""
        caps = {}
        for i, j, axis in self.pairs:
            cap = row_capacity(outs[j], axis, self._names[i, j][1])
            if cap is not None:
                caps[self._names[i, j][1]] = cap
        if len(set(caps.values())) > 1:
            raise InputError(f"the KV cache buffers have different capacities {caps}; "
                             f"allocate every present buffer with the same row count")
        capacity = next(iter(caps.values()), None)
        for i, j, axis in self.pairs:
            past, present = arrays[i], outs[j]
            if capacity is None:
                capacity = present.shape[axis]
            if past.shape[axis] and not _is_prefix(past, present):
                np.copyto(present[(slice(None),) * axis + (slice(0, past.shape[axis]),)], past)
        return max(int(capacity or 1), 1)


def row_capacity(a: np.ndarray, axis: int, name: str) -> int | None:
    """The row capacity `a`'s strides give, None where any would do (one outer
    index); InputError if `a` is not [outer..., rows of a buffer, inner] laid out."""
    shape, e = a.shape, a.itemsize
    inner = math.prod(shape[axis + 1:])
    if not a.flags.writeable:
        raise InputError(f"the KV cache buffer '{name}' is read-only")
    expected = e
    for d in range(len(shape) - 1, axis - 1, -1):  # rows and inner: compact
        if shape[d] > 1 and a.strides[d] != expected:
            raise _layout_error(name, a)
        expected *= shape[d]
    cap, block = None, None  # block: elements between consecutive outer indices
    for d in range(axis - 1, -1, -1):
        if shape[d] == 1:
            continue
        if block is None:
            if a.strides[d] % (inner * e) or a.strides[d] // (inner * e) < shape[axis]:
                raise _layout_error(name, a)
            cap = a.strides[d] // (inner * e)
            block = cap * inner * e
        elif a.strides[d] != block:
            raise _layout_error(name, a)
        block *= shape[d]
    return cap


def _layout_error(name: str, a: np.ndarray) -> InputError:
    return InputError(
        f"the KV cache buffer '{name}' (shape {list(a.shape)}, strides {list(a.strides)}) "
        f"is not a run of rows of one buffer: bind a C-contiguous array, or a view "
        f"buf[..., :rows, :] of a C-contiguous buffer with room for the rows")


def _is_prefix(past: np.ndarray, present: np.ndarray) -> bool:
    """Is `past` the memory of present's first rows (a view of the same buffer)?"""
    if past.__array_interface__["data"][0] != present.__array_interface__["data"][0]:
        return False
    return all(n == 1 or s == t for n, s, t in
               zip(past.shape, past.strides, present.strides, strict=True))
