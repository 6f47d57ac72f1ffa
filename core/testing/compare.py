"""Comparing tinyc's outputs with a reference, relative to the output's range."""

from __future__ import annotations

import numpy as np


def range_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| divided by max |want| (the issue's "of the output range")."""
    want = np.asarray(want, np.float64)
    got = np.asarray(got, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape} != expected {want.shape}")
    if want.size == 0:
        return 0.0
    scale = max(float(np.abs(want).max()), 1e-12)
    return float(np.abs(got - want).max()) / scale


def assert_close_to_range(got: np.ndarray, want: np.ndarray, tol: float = 1e-3,
                          what: str = "output") -> float:
    err = range_error(got, want)
    if not err <= tol:  # also catches NaN
        raise AssertionError(f"{what}: max error {err:.3e} of the output range exceeds {tol:g}")
    return err
