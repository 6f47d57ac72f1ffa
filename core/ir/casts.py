"""float -> integer casts as tinyc defines them (docs/casts.md), in numpy.

ONNX leaves a float that does not fit the integer type undefined, and numpy /
ml_dtypes then give whatever the host CPU's conversion instruction gives (C++
undefined behaviour: 0 on one x86 CPU, a wrapped value on another). tinyc's
kernels give one answer on every target; this module computes the same answer
on the host, for constant folding and as the tests' oracle.
"""

from __future__ import annotations

import numpy as np

from .dtypes import DType

# 2- and 4-bit types round to the nearest integer (ties to even), as ONNX's notes
# on int4 / int2 say; every other integer type truncates toward zero.
ROUNDED = frozenset({DType.int4, DType.uint4, DType.int2, DType.uint2})
_BITS = {DType.int2: 2, DType.uint2: 2, DType.int4: 4, DType.uint4: 4, DType.int8: 8,
         DType.uint8: 8, DType.int16: 16, DType.uint16: 16, DType.int32: 32, DType.uint32: 32,
         DType.int64: 64, DType.uint64: 64}
_SIGNED = frozenset({DType.int2, DType.int4, DType.int8, DType.int16, DType.int32, DType.int64})


def is_float_to_int(src: DType, dst: DType) -> bool:
    return src.is_float and dst in _BITS


def float_to_int(x: np.ndarray, dst: DType) -> np.ndarray:
    """x (any float dtype) cast to the integer type dst, as tinyc's kernels do."""
    t = np.asarray(x).astype(np.float64)  # exact for every float type up to double
    t = np.rint(t) if dst in ROUNDED else np.trunc(t)
    bits = 64 if _BITS[dst] == 64 else 32
    r = _unsigned_x86(t, bits) if dst in (DType.uint32, DType.uint64) else _signed_x86(t, bits)
    return _wrap(r, dst)


def defined_mask(x: np.ndarray, dst: DType) -> np.ndarray:
    """Where ONNX (and numpy) define the result of casting x to dst: the rounded
    value is finite and fits dst."""
    t = np.asarray(x).astype(np.float64)
    t = np.rint(t) if dst in ROUNDED else np.trunc(t)
    lo, hi = _range(dst)
    with np.errstate(invalid="ignore"):  # hi + 1 is a power of two: exact as a float
        return (t >= lo) & (t < float(hi + 1))


def _range(dst: DType) -> tuple[int, int]:
    bits = _BITS[dst]
    if dst in _SIGNED:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _signed_x86(t: np.ndarray, bits: int) -> np.ndarray:
    """Integral floats as int64 holding a `bits`-bit value; out of range, NaN and
    inf give the minimum (x86's "integer indefinite")."""
    low = -float(1 << (bits - 1))
    with np.errstate(invalid="ignore"):
        inside = (t >= low) & (t < -low)
    return np.where(inside, t, low).astype(np.int64)


def _unsigned_x86(t: np.ndarray, bits: int) -> np.ndarray:
    """From 2^(bits-1) up: convert less 2^(bits-1), then set the top bit again."""
    half = float(1 << (bits - 1))
    with np.errstate(invalid="ignore"):
        high = t >= half
    r = _signed_x86(np.where(high, t - half, t), bits).view(np.uint64)
    top = np.uint64(1 << (bits - 1))
    return np.where(high, r ^ top, r)


def _wrap(r: np.ndarray, dst: DType) -> np.ndarray:
    """Keep the low bits (ONNX's rule for integer -> integer casts)."""
    bits = _BITS[dst]
    low = np.asarray(r).view(np.uint64)
    if bits == 64:
        return low.view(np.int64) if dst in _SIGNED else low
    value = (low & np.uint64((1 << bits) - 1)).astype(np.int64)
    if dst in _SIGNED:
        value = np.where(value >= 1 << (bits - 1), value - (1 << bits), value)
    return value.astype(dst.numpy)
