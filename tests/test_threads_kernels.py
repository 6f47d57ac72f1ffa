"""Kernels split across the runtime's thread pool: the same bits with 1, 2 and
more threads than the kernel has scratch slices for (GEMM, depthwise conv,
pooling, elementwise, concat, softmax), and the IR shape of a parallel loop (serial
targets never call the pool)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.codegen.kernels.gemm.gemm import GemmSpec, default_tile
from tinyc.codegen.kernels.gemm.gemm_epilogue import Epilogue
from tinyc.codegen.machine import new_module
from tinyc.codegen.parallel import POOL_FOR
from tinyc.testing.gemm_bench import GemmRun
from tinyc.testing.kernel_harness import CompiledKernels, host_target
from tinyc.testing.reference import reference_outputs

TARGET = host_target(512)
SOURCES = [(a, b) for a in ("packed", "strided") for b in ("packed", "strided")]
# (M, N, K): tall, wide, one row (a fully-connected layer), few panels, several blocks
SHAPES = [(256, 600, 300), (40, 3136, 64), (1, 1000, 512), (300, 20, 100), (9, 50, 700)]


def gemm_spec(m: int, a_src: str, b_src: str, threads: int) -> GemmSpec:
    mr, nv = default_tile(TARGET.f32_lanes, m)
    return GemmSpec(mr, nv, TARGET.f32_lanes, a_src, b_src, Epilogue("row", clip=True),
                    threads=threads)


@pytest.fixture(scope="module")
def lib():
    specs = {gemm_spec(m, a, b, 2) for m in (1, 9, 40) for a, b in SOURCES}
    return CompiledKernels([s.kernel() for s in specs], TARGET)


def set_threads(lib: CompiledKernels, n: int) -> None:
    fn = lib.lib.tinyc_set_num_threads
    fn.argtypes, fn.restype = [ctypes.c_int64], None
    fn(n)


def run(lib, spec: GemmSpec, a, b, bias, threads: int) -> np.ndarray:
    set_threads(lib, threads)
    r = GemmRun.make(spec, a, b)
    r.values.update(bias=bias, ldbias=1, bias_bstride=0, lo=-3.0, hi=3.0)
    lib(spec.name, *spec.args(r.values))
    return r.c


@pytest.mark.parametrize("a_src,b_src", SOURCES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_same_bits_for_any_thread_count(lib, m, n, k, a_src, b_src):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k), np.float32)
    b = rng.standard_normal((k, n), np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    spec = gemm_spec(min(m, 40), a_src, b_src, 2)
    one = run(lib, spec, a, b, bias, 1)
    np.testing.assert_allclose(one, np.clip(a @ b + bias[:, None], -3, 3), rtol=1e-4,
                               atol=1e-3)
    for threads in (2, 3):  # 3: more than the kernel's 2 scratch slices
        np.testing.assert_array_equal(run(lib, spec, a, b, bias, threads), one)


def test_batched_gemm_splits_across_items(lib):
    """A batch of 3 small GEMMs: a worker's range may start inside one item and
    end inside the next."""
    rng = np.random.default_rng(3)
    m, n, k, batch = 40, 100, 64, 3
    a = rng.standard_normal((batch, m, k), np.float32)
    b = rng.standard_normal((batch, k, n), np.float32)
    spec = gemm_spec(40, "strided", "strided", 2)
    outs = []
    for threads in (1, 2):
        set_threads(lib, threads)
        r = GemmRun.make(spec, a[0], b[0])
        c = np.full((batch, m, n), np.nan, np.float32)
        r.values.update(a=a, b=b, c=c, batch=batch, a_bstride=m * k, b_bstride=k * n,
                        c_bstride=m * n, bias=np.zeros(m, np.float32), ldbias=1,
                        bias_bstride=0, lo=-1e9, hi=1e9)
        lib(spec.name, *spec.args(r.values))
        outs.append(c)
    np.testing.assert_allclose(outs[0], a @ b, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(outs[1], outs[0])


def test_serial_target_never_calls_the_pool():
    module = new_module("m", TARGET)
    gemm_spec(40, "strided", "strided", 1).kernel().build(module, TARGET)
    assert POOL_FOR not in str(module)


def test_threaded_kernel_calls_the_pool_through_a_task():
    module = new_module("m", TARGET)
    spec = gemm_spec(40, "strided", "strided", 2)
    spec.kernel().build(module, TARGET)
    text = str(module)
    assert f"declare void @\"{POOL_FOR}\"" in text or f"declare void @{POOL_FOR}" in text
    assert f"{spec.name}.range.task" in text


def _one_node_model(op: str, shapes: list[tuple[int, ...]], attrs: dict, out_shape,
                    weights: dict | None = None):
    names = [f"x{i}" for i in range(len(shapes))]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))
              for n, s in zip(names, shapes, strict=True)]
    inits = [numpy_helper.from_array(v, k) for k, v in (weights or {}).items()]
    node = helper.make_node(op, names + list(weights or {}), ["y"], **attrs)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))
    graph = helper.make_graph([node], op.lower(), inputs, [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _dw_weights(rng):
    return {"w": (rng.standard_normal((32, 1, 3, 3)) * 0.3).astype(np.float32),
            "bias": rng.standard_normal(32).astype(np.float32)}


def _winograd_weights(rng):
    return {"w": (rng.standard_normal((48, 32, 3, 3)) * 0.1).astype(np.float32),
            "bias": rng.standard_normal(48).astype(np.float32)}


def _bn_weights(rng):
    c = 64
    return {"s": rng.standard_normal(c).astype(np.float32),
            "b": rng.standard_normal(c).astype(np.float32),
            "m": rng.standard_normal(c).astype(np.float32),
            "v": rng.random(c).astype(np.float32) + 0.5}


# (op, input shapes, attributes, output shape, constant inputs): each big enough to split
OPS = [
    ("MaxPool", [(1, 64, 112, 112)], dict(kernel_shape=[3, 3], strides=[2, 2],
                                          pads=[1, 1, 1, 1]), (1, 64, 56, 56), None),
    ("AveragePool", [(1, 32, 56, 56)], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
     (1, 32, 56, 56), None),
    ("GlobalAveragePool", [(1, 512, 28, 28)], {}, (1, 512, 1, 1), None),
    ("MaxPool", [(1, 8, 16, 32, 40)], dict(kernel_shape=[3, 3, 3], strides=[2, 2, 2],
                                           pads=[1, 1, 1, 1, 1, 1]), (1, 8, 8, 16, 20), None),
    ("LpPool", [(1, 32, 56, 56)], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], p=3),
     (1, 32, 56, 56), None),
    ("Sigmoid", [(1, 64, 112, 112)], {}, (1, 64, 112, 112), None),
    ("Add", [(1, 64, 112, 113), (1, 64, 112, 113)], {}, (1, 64, 112, 113), None),
    ("Softmax", [(512, 1000)], dict(axis=-1), (512, 1000), None),
    ("Softmax", [(16, 100, 80)], dict(axis=1), (16, 100, 80), None),
    ("Conv", [(1, 32, 112, 112)], dict(group=32, pads=[1, 1, 1, 1]), (1, 32, 112, 112),
     _dw_weights),
    ("Conv", [(1, 32, 30, 29)], dict(pads=[1, 1, 1, 1]), (1, 48, 30, 29), _winograd_weights),
    ("BatchNormalization", [(1, 64, 112, 112)], {}, (1, 64, 112, 112), _bn_weights),
    # a broadcast add over an outer dim; concats of long rows (cut in pieces) and of
    # short rows (many rows to a piece)
    ("Add", [(1, 64, 112, 112), (1, 64, 1, 112)], {}, (1, 64, 112, 112), None),
    ("Concat", [(1, 64, 55, 55), (1, 64, 55, 55)], dict(axis=1), (1, 128, 55, 55), None),
    ("Concat", [(4, 64, 56, 20), (4, 64, 56, 13)], dict(axis=3), (4, 64, 56, 33), None),
]


@pytest.mark.parametrize("op,shapes,attrs,out_shape,weights", OPS,
                         ids=[f"{o[0]}{i}" for i, o in enumerate(OPS)])
def test_vector_kernels_same_bits_on_one_and_two_threads(tmp_path, op, shapes, attrs,
                                                         out_shape, weights):
    rng = np.random.default_rng(11)
    model = _one_node_model(op, shapes, attrs, out_shape, weights(rng) if weights else None)
    tinyc.compile(model, target="x86", options=tinyc.CompileOptions(threads=2)).save(tmp_path)
    loaded = tinyc.runtime.load(tmp_path)
    feeds = {f"x{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}
    outs = []
    for threads in (1, 2, 2):
        loaded.set_num_threads(threads)
        outs.append(loaded.run(None, feeds)[0])
    (want,) = reference_outputs(model, feeds, ["y"])[0]
    np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=1e-4)
    for got in outs[1:]:
        np.testing.assert_array_equal(got, outs[0])
