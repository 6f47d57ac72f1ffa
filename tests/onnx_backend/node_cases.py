"""The official ONNX backend node suite, generated in memory from the installed
onnx package (each case's `export` builds its model and data; nothing is
vendored), and how one case runs through tinyc.backend."""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case.test_case import TestCase
from onnx.backend.test.runner import Runner

import tinyc.backend as backend
from tinyc.ir import DType
from tinyc.ir.casts import defined_mask, float_to_int, is_float_to_int

_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


@functools.cache
def node_cases() -> tuple[TestCase, ...]:
    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings():  # some exports overflow casts on purpose
        warnings.simplefilter("ignore")
        return tuple(load_node_model_tests())


def op_of(name: str) -> str:
    """The op a case tests; an '_expanded' case (the op's function body) counts for
    its op too."""
    from onnx.backend.test.case.node import _existing_names  # filled by node_cases()

    node_cases()
    base = _EXPANDED.sub("", name)
    return _existing_names[base].op_type if base in _existing_names else "?"


def _as_array(value: np.ndarray | TensorProto) -> np.ndarray:
    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else np.asarray(value)


def run_case(case: TestCase) -> None:
    """What onnx's own runner does for a node case: prepare once, run every data
    set, compare with the case's tolerances (raises AssertionError on mismatch)."""
    rep = backend.prepare(case.model, "CPU")
    for inputs, expected in case.data_sets:
        inputs = [_as_array(i) for i in inputs]
        outputs = rep.run(inputs)
        expected = [_as_array(e) for e in expected]
        if op_of(case.name) in ("Cast", "CastLike"):
            expected = [defined_or_documented(inputs[0], expected[0])]
        Runner.assert_similar_outputs(expected, list(outputs), rtol=case.rtol, atol=case.atol)


def defined_or_documented(x: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The reference's result where ONNX defines a float -> int cast, and tinyc's
    documented one (docs/casts.md) where it does not. The suite's expected outputs
    are made on the machine running the tests, by ml_dtypes / numpy casting
    out-of-range floats: C++ undefined behaviour that gives 0 on an AMD Zen 4 and
    wrapped values elsewhere (the Cast / CastLike cases to INT4, UINT4, INT2, UINT2)."""
    try:
        src, dst = (DType.from_numpy(a.dtype) for a in (x, expected))
    except KeyError:  # strings: no float -> int cast
        return expected
    if not is_float_to_int(src, dst):
        return expected
    return np.where(defined_mask(x, dst), expected, float_to_int(x, dst))
