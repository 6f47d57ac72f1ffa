"""Running an artifact whose output sizes depend on input values (NonZero,
Compress, Unique, TopK with a run-time k).

The compile gave each such size an "unbacked" symbol with an upper bound in
the input sizes; its slot follows the input symbols' in the dims array, and
the kernel that computes the size writes it there during the run. So a run
here: binds and checks the input sizes (SymbolicModel), allocates each output
for its bound (`tinyc_capacities`), runs, reads the sizes the kernels wrote,
asks `tinyc_sizes` for the outputs' actual shapes and returns each output
trimmed to its shape (a view of the first elements).
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

from ..errors import ArtifactError, InputError, TinycError
from .native import _symbol, aligned_empty
from .symbolic import _MAX_REMEMBERED, SymbolicModel, _starts


class DataDependentModel(SymbolicModel):
    def __init__(self, directory: str, verify: bool = False, threads: int | None = None):
        super().__init__(directory, verify=verify, threads=threads)
        self.unbacked = [u["name"] for u in self.meta["symbolic"]["unbacked"]]
        written = ctypes.c_int64.in_dll(self._lib, "tinyc_unbacked_count").value
        if written != len(self.unbacked):  # the kernels write that many slots
            raise ArtifactError(f"{directory}/model.json lists {len(self.unbacked)} "
                                f"data-dependent sizes; the library writes {written}")
        self._dims = (ctypes.c_int64 * self._n_dims())()
        self._capacities = _symbol(self._lib, "tinyc_capacities", directory)
        self._capacities.argtypes, self._capacities.restype = [ctypes.c_void_p] * 2, None
        self._caps: dict[tuple, list[int]] = {}

    def _n_dims(self) -> int:
        return len(self.symbols) + len(self.meta["symbolic"]["unbacked"])

    def _probe(self, values) -> ctypes.Array:
        """Input sizes, then 0 for every data-dependent size (nothing asked
        before a run depends on those)."""
        return (ctypes.c_int64 * max(self._n_dims(), 1))(*values)

    def capacities(self, values: tuple[int, ...]) -> list[int]:
        """Elements each output may hold for these input sizes."""
        if values not in self._caps:
            if len(self._caps) >= _MAX_REMEMBERED:
                self._caps.clear()
            out = (ctypes.c_int64 * max(len(self.outputs), 1))()
            self._capacities(self._probe(values), out)
            self._caps[values] = list(out)[:len(self.outputs)]
        return self._caps[values]

    def run_into(self, feeds: dict, buffers: dict[str, np.ndarray] | None) -> list[np.ndarray]:
        if buffers:
            raise InputError("this model's outputs have sizes that depend on input values; "
                             "they cannot be bound to caller buffers (run() returns them)")
        arrays, (values, arena, _) = self._prepared(feeds)
        flat = [np.empty(c, dt) for c, dt in zip(self.capacities(values), self._out_dtypes,
                                                  strict=True)]
        with self._lock:
            if arena > self._arena.size:
                self._arena = aligned_empty(max(arena, self._arena.size * 3 // 2))
            self._dims[:] = list(values) + [0] * len(self.unbacked)
            self._call_locked(arrays, flat, self._dims)
            after = list(self._dims)
        return [self._trimmed(a, s) for a, s in zip(flat, self._shapes_after(after),
                                                     strict=True)]

    def _shapes_after(self, dims: list[int]) -> list[tuple[int, ...]]:
        """The outputs' shapes with the sizes the run's kernels wrote."""
        out = (ctypes.c_int64 * (1 + self._n_out + self._n_in))()
        self._sizes(self._probe(dims), out)
        got = list(out[1:])
        return [tuple(got[k:k + len(o.shape)]) for o, k in
                zip(self.outputs, _starts(self.outputs), strict=True)]

    @staticmethod
    def _trimmed(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        n = math.prod(shape)
        if n > a.size or min(shape, default=0) < 0:  # the kernels keep counts in bounds
            raise TinycError(f"a data-dependent output came out {list(shape)}, beyond the "
                             f"{a.size} elements allocated for it")
        return a[:n].reshape(shape)
