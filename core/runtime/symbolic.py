"""Running an artifact compiled with symbolic dimensions (one that serves
every size its guards admit).

Per run: the symbols are bound from the feeds' shapes, checked against the
guards the compile recorded, and the library's `tinyc_sizes` gives the arena
size and every output's (and input's) dims for those sizes; the answer is
kept per distinct set of sizes, so a size seen before costs a dict lookup.
The arena only grows: a decode loop allocates it a few times in all.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ..errors import ArtifactError, InputError
from .fastpath import FeedSpecs, SizeBinder
from .kv_share import KVShare
from .native import NativeModel, aligned_empty, check_feed_names, output_buffers

_MAX_REMEMBERED = 4096  # distinct size sets whose shapes are kept


class ShapeGuardError(InputError):
    """The sizes of a run fall outside what the artifact was compiled for."""


def bind_sizes(inputs, symbols: list[str], feeds: dict, as_is: frozenset[str] = frozenset()
               ) -> tuple[list[np.ndarray], tuple]:
    """The feeds in input order and the symbols' values they imply, after
    checking names, dtypes, ranks and the fixed dims (shared by every runtime
    of symbolic artifacts: native, wasm). Inputs named in `as_is` are not made
    contiguous (the native code does not read them)."""
    check_feed_names(feeds, [i.name for i in inputs])
    arrays, values = [], {}
    for info in inputs:
        a = feeds[info.name]
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if a.dtype != np.dtype(info.dtype):
            raise InputError(f"input '{info.name}' has dtype {a.dtype}; expected {info.dtype}")
        if a.ndim != len(info.shape):
            raise InputError(f"input '{info.name}' has shape {list(a.shape)}; expected "
                             f"rank {len(info.shape)} ({info.shape})")
        for d, want in zip(a.shape, info.shape, strict=True):
            if isinstance(want, int) and d != want:
                raise InputError(f"input '{info.name}' has shape {list(a.shape)}; "
                                 f"expected {info.shape}")
            if isinstance(want, str) and want in symbols:
                if values.setdefault(want, int(d)) != int(d):
                    raise InputError(f"dimension '{want}' is {values[want]} in one input "
                                     f"and {int(d)} in '{info.name}'")
        arrays.append(a if info.name in as_is else np.ascontiguousarray(a))
    return arrays, tuple(values[s] for s in symbols)


class SymbolicModel(NativeModel):
    def __init__(self, directory: str, verify: bool = False, threads: int | None = None):
        super().__init__(directory, verify=verify, threads=threads)
        sym = self.meta["symbolic"]
        self.symbols: list[str] = list(sym["symbols"])
        self.guard_texts: list[str] = list(sym["guards"])
        self.minima: list[int] = list(sym.get("minima") or [1] * len(self.symbols))
        self.maxima: list[int | None] = list(sym.get("maxima") or [None] * len(self.symbols))
        self._entry.argtypes = [ctypes.c_void_p] * 5
        self._guards = self._lib.tinyc_guards
        self._guards.argtypes, self._guards.restype = [ctypes.c_void_p], ctypes.c_int32
        self._sizes = self._lib.tinyc_sizes
        self._sizes.argtypes, self._sizes.restype = [ctypes.c_void_p] * 2, None
        self._kv = _kv_share(self)  # a KV cache shared by past and present (or None)
        self._binder = SizeBinder(self.inputs, self.symbols)
        self._dims = (ctypes.c_int64 * (len(self.symbols) + len(self._pad)))()
        self._n_out = sum(len(o.shape) for o in self.outputs)
        self._n_in = sum(len(i.shape) for i in self.inputs)
        self._by_shapes: dict[tuple, tuple] = {}  # feeds' shapes -> what _prepared gives
        self._out_dtypes = [np.dtype(o.dtype) for o in self.outputs]
        if self.maxima and all(m is not None for m in self.maxima):
            self._reserve_arena()

    def bind(self, feeds: dict) -> tuple[list[np.ndarray], tuple[int, ...]]:
        quick = self._binder.bind(feeds)  # arrays as they are: contiguous is checked later
        if quick is not None and all(a.flags.c_contiguous for a in quick[0]):
            return quick
        return bind_sizes(self.inputs, self.symbols, feeds,
                          self._kv.past_names if self._kv else frozenset())

    def _reserve_arena(self) -> None:
        """With every symbol bounded (CompileOptions.max_shapes) the arena is
        allocated once, for the largest sizes: no run reallocates it. Sizes are
        monotone in the symbols, so the maxima's arena holds every smaller run."""
        out = (ctypes.c_int64 * (1 + self._n_out + self._n_in))()
        self._sizes(self._probe(self.maxima), out)
        if out[0] > self._arena.size:
            self._arena = aligned_empty(int(out[0]))

    def accepts(self, values: tuple[int, ...]) -> bool:
        """Do these sizes pass every guard of this artifact?"""
        if any(v < m for v, m in zip(values, self.minima, strict=True)) or \
                any(m is not None and v > m for v, m in zip(values, self.maxima, strict=True)):
            return False
        return self._guards(self._probe(values)) == 0

    def _probe(self, values) -> ctypes.Array:
        """A dims array of its own for asking tinyc_guards / tinyc_sizes, so a
        question never touches the array a run in another thread is using."""
        return (ctypes.c_int64 * max(len(values) + len(self._pad), 1))(*values, *self._pad)

    def shapes_for(self, values: tuple[int, ...]) -> tuple[int, list[tuple], list[int]]:
        """(arena bytes, output shapes, input dims) for these sizes;
        ShapeGuardError if they break a guard. (Runs look the answer up by
        their feeds' shapes, see _prepared.)"""
        bad = [f"{s}={v} (at least {m}{_zero_hint(s) if v == 0 else ''})"
               for s, v, m in zip(self.symbols, values, self.minima, strict=True) if v < m]
        bad += [f"{s}={v} (at most {m}, the max_shapes compiled for)" for s, v, m in
                zip(self.symbols, values, self.maxima, strict=True) if m is not None and v > m]
        if bad:
            raise ShapeGuardError(f"symbolic dimensions out of range: {', '.join(bad)}")
        dims_array = self._probe(values)
        failed = self._guards(dims_array)
        if failed:
            raise ShapeGuardError(
                f"sizes {self._named(values)} break the compiled guard "
                f"'{self.guard_texts[failed - 1]}': this artifact was specialized for "
                f"other sizes; compile it for these (tinyc.InferenceSession does)")
        out = (ctypes.c_int64 * (1 + self._n_out + self._n_in))()
        self._sizes(dims_array, out)
        arena, dims = int(out[0]), list(out[1:])
        shapes = [tuple(dims[k:k + len(o.shape)]) for o, k in
                  zip(self.outputs, _starts(self.outputs), strict=True)]
        return arena, shapes, dims[self._n_out:]

    def run(self, output_names, feeds):
        wanted = self._all_outputs if output_names is None else \
            self._check_output_names(output_names)
        outs = self.run_into(feeds, None)
        return [outs[j] for j in wanted]

    def run_into(self, feeds: dict, buffers: dict[str, np.ndarray] | None) -> list[np.ndarray]:
        """Every output, in order; those named in `buffers` are written by the
        native code into those caller-owned arrays (IOBinding: no copy)."""
        arrays, (values, arena, shapes) = self._prepared(feeds)
        outs = output_buffers(self.outputs, shapes, buffers, self._strided_outputs) \
            if buffers else [np.empty(s, dt) for s, dt in zip(shapes, self._out_dtypes,
                                                               strict=True)]
        if self._kv:  # the capacity symbol, last: from the present buffers
            values = (*values, self._kv.prepare(arrays, outs))
        with self._lock:
            if arena > self._arena.size:  # grows, by half again, to few reallocations
                self._arena = aligned_empty(max(arena, self._arena.size * 3 // 2))
            self._dims[:] = values
            self._call_locked(arrays, outs, self._dims)
        return outs

    def _prepared(self, feeds) -> tuple[list[np.ndarray], tuple]:
        """The feeds in order and (sizes, arena bytes, output shapes) for them:
        a dict lookup by the feeds' shapes once these shapes were checked."""
        arrays = self._feed_specs.arrays(feeds)
        if arrays is not None:
            known = self._by_shapes.get(tuple(a.shape for a in arrays))
            if known is not None:
                return arrays, known
        arrays, values = self.bind(feeds)
        arena, shapes, in_dims = self.shapes_for(values)
        self._check_relations(arrays, in_dims, values)
        if len(self._by_shapes) >= _MAX_REMEMBERED:
            self._by_shapes.clear()
        prepared = (values, arena, shapes)
        self._by_shapes[tuple(a.shape for a in arrays)] = prepared
        return arrays, prepared

    def _check_relations(self, arrays: list[np.ndarray], in_dims: list[int],
                         values: tuple[int, ...]) -> None:
        """An input dim declared as another symbol or an expression must equal
        what the bound symbols give (e.g. a mask of length past + new)."""
        k = 0
        for info, a in zip(self.inputs, arrays, strict=True):
            want = tuple(in_dims[k:k + a.ndim])
            k += a.ndim
            if a.shape != want:
                raise ShapeGuardError(
                    f"input '{info.name}' has shape {list(a.shape)}, but the sizes "
                    f"{self._named(values)} make its shape {info.shape} = {list(want)}")

    def _named(self, values: tuple[int, ...]) -> str:
        return ", ".join(f"{s}={v}" for s, v in zip(self.symbols, values, strict=True))


def _kv_share(model: SymbolicModel) -> KVShare | None:
    """A model compiled with a shared KV cache binds one more symbol, the
    buffers' capacity, from the present arrays (runtime/kv_share.py): it is
    dropped from the symbols the feeds bind, and the dims array gets a slot
    for it (a placeholder where only guards and sizes are asked)."""
    spec = model.meta["symbolic"].get("kv_share")
    model._pad, model._strided_outputs = (), frozenset()
    if not spec:
        return None
    kv = KVShare(spec, [i.name for i in model.inputs], [o.name for o in model.outputs])
    if model.symbols[-1:] != [kv.symbol]:
        raise ArtifactError(f"model.json: kv_share's symbol '{kv.symbol}' is not the last "
                            f"of {model.symbols}")
    for seq in (model.symbols, model.minima, model.maxima):
        del seq[-1]
    model._pad, model._strided_outputs = (1,), kv.present_names
    model._feed_specs = FeedSpecs(model.inputs, kv.past_names)
    return kv


def _starts(infos) -> list[int]:
    out, k = [], 0
    for i in infos:
        out.append(k)
        k += len(i.shape)
    return out


def _zero_hint(symbol: str) -> str:
    """How to get an artifact that serves a dim of 0 (an LLM's empty KV cache)."""
    return (f"; compile with --hint {symbol}=0 (shape_hints={{'{symbol}': 0}}) for an "
            f"artifact that serves 0")
