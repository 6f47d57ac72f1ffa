"""Shared by the quantization tests: one-node ONNX models, onnxruntime on one
thread, the targets to compile for (host-runnable ones only)."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import tinyc

F32 = np.float32
TARGETS = ("x86-avx2", "x86-avx512-vnni")


@functools.cache
def _host_features() -> str:
    from tinyc.target.machine import host_features

    return host_features()


def target_params() -> list:
    """Each target, skipped where this host cannot run its code."""
    needs = {"x86-avx2": "+avx2", "x86-avx512-vnni": "+avx512vnni"}
    return [pytest.param(t, marks=pytest.mark.skipif(needs[t] not in _host_features(),
                                                      reason=f"host lacks {needs[t]}"))
            for t in TARGETS]


def one_node(op: str, inputs: list[tuple[str, type, list[int]]],
             outputs: list[tuple[str, type, list[int]]], consts: dict[str, np.ndarray],
             domain: str = "", opset: int = 13, **attrs) -> onnx.ModelProto:
    """A model of one node; `inputs` in the node's order, those in `consts` are
    initializers, the others graph inputs."""
    def info(name, dtype, shape):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(
            np.dtype(dtype)), shape)

    node = helper.make_node(op, [n for n, _, _ in inputs], [n for n, _, _ in outputs],
                            domain=domain, **attrs)
    graph = helper.make_graph(
        [node], op, [info(*i) for i in inputs if i[0] not in consts],
        [info(*o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)]
                                                 if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def tinyc_run(model: onnx.ModelProto, feeds: dict, target: str) -> list[np.ndarray]:
    return tinyc.InferenceSession(model, target=target).run(None, feeds)


def assert_bit_exact(model: onnx.ModelProto, feeds: dict, target: str) -> None:
    got, want = tinyc_run(model, feeds, target), ort_run(model, feeds)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
        assert bad.size == 0, (f"{bad.size} of {g.size} differ, first at {bad[0]}: "
                               f"{g.reshape(-1)[bad[0]]} != {w.reshape(-1)[bad[0]]}")
