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
        outputs = rep.run([_as_array(i) for i in inputs])
        Runner.assert_similar_outputs([_as_array(e) for e in expected], list(outputs),
                                      rtol=case.rtol, atol=case.atol)
