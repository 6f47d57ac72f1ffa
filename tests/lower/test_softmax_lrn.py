"""Softmax / LogSoftmax axis semantics per opset, and LRN, against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from op_batch import Case, check_cases


def _x(rng, *shape):
    return (rng.standard_normal(shape) * 4).astype(np.float32)


def softmax_oracle(case: Case) -> np.ndarray:
    """The spec: from opset 13 one axis (default -1); before, the input flattened
    to 2-D at axis (default 1). onnx.reference ignores the latter."""
    x = case.inputs[0].astype(np.float64)
    axis = case.attrs.get("axis", -1 if case.opset >= 13 else 1) % x.ndim
    if case.opset < 13:
        x2 = x.reshape(math.prod(x.shape[:axis]), -1)
        return _softmax(x2, 1, case.op).reshape(x.shape).astype(np.float32)
    return _softmax(x, axis, case.op).astype(np.float32)


def _softmax(x: np.ndarray, axis: int, op: str) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted - log_sum if op == "LogSoftmax" else np.exp(shifted - log_sum)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_axes_per_opset(rng, op):
    cases = []
    for shape in [(2, 3, 4, 5), (3, 37), (1, 1000), (2, 19, 33)]:
        x = _x(rng, *shape)
        for opset in (11, 13):
            cases.append(Case(op, [x], opset=opset))  # default axis
            cases += [Case(op, [x], {"axis": a}, opset=opset)
                      for a in range(-len(shape), len(shape))]
    cases.append(Case(op, [_x(rng, 7)], opset=13))
    cases.append(Case(op, [np.array([[1e4, 0, -1e4, 3]], np.float32)], opset=13))  # no overflow
    check_cases(cases, softmax_oracle, rtol=1e-5, atol=1e-6)


def lrn_oracle(case: Case) -> np.ndarray:
    x = case.inputs[0].astype(np.float64)
    size = case.attrs["size"]
    alpha, beta = case.attrs.get("alpha", 1e-4), case.attrs.get("beta", 0.75)
    bias = case.attrs.get("bias", 1.0)
    channels = x.shape[1]
    square_sum = np.zeros_like(x)
    for c in range(channels):  # onnx.reference loops over the batch dim here by mistake
        lo, hi = max(0, c - (size - 1) // 2), min(channels, c + math.ceil((size - 1) / 2) + 1)
        square_sum[:, c] = (x[:, lo:hi] ** 2).sum(axis=1)
    return (x / (bias + alpha / size * square_sum) ** beta).astype(np.float32)


def test_lrn(rng):
    cases = [Case("LRN", [_x(rng, 2, 7, 5, 6)], dict(size=s, alpha=1e-2, beta=0.75, bias=2.0))
             for s in (1, 2, 3, 4, 5)]
    cases += [Case("LRN", [_x(rng, 1, 16, 13, 13)], dict(size=5)),  # AlexNet defaults
              Case("LRN", [_x(rng, 1, 3, 9, 9)], dict(size=5, alpha=1e-4, beta=0.5, bias=1.0)),
              Case("LRN", [_x(rng, 1, 4, 3, 3)], dict(size=9, alpha=0.1, beta=1.3, bias=0.5))]
    check_cases(cases, lrn_oracle, rtol=1e-5, atol=1e-6)
