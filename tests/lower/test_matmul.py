"""Gemm / tinyc.Gemm / MatMul lowerings against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.errors import NotLowerable
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.matmul import lower_gemm, lower_matmul
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_graph_nodes


def graph_of(op: str, inputs: dict[str, np.ndarray | None], consts: set[str],
             out_shape: tuple[int, ...], attrs: dict | None = None,
             domain: str = "") -> tuple[Graph, dict[str, np.ndarray]]:
    """A one-node graph; inputs map name -> array (None: omitted optional input)."""
    names = tuple(n if a is not None else "" for n, a in inputs.items())
    types = {n: TensorType.of(a) for n, a in inputs.items() if a is not None}
    types["y"] = TensorType(DType.float32, out_shape)
    constants = {n: a for n, a in inputs.items() if n in consts}
    feeds = {n: a for n, a in inputs.items() if a is not None and n not in consts}
    node = Node(op, names, ("y",), attrs or {}, name="n0", domain=domain)
    return Graph("g", tuple(feeds), ("y",), (node,), types, constants, {"": 13}), feeds


def assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


GEMM_CASES = [
    # (M, N, K, transA, transB, const B, C shape or None, alpha, beta)
    (37, 53, 29, 0, 0, True, None, 1.0, 1.0),
    (37, 53, 29, 1, 1, False, None, 1.0, 1.0),
    (9, 70, 300, 0, 1, True, (70,), 0.5, 2.0),  # K > one block, alpha folded into B
    (9, 70, 30, 1, 0, False, (9, 70), 0.5, 2.0),  # runtime operands: alpha/beta at run time
    (1, 100, 300, 0, 1, True, (1, 100), 1.0, 1.0),  # GEMV-like
    (2, 33, 17, 0, 0, True, (2, 1), 1.0, -1.0),
    (5, 17, 8, 0, 0, False, (), 1.5, 0.5),
    (5, 17, 8, 0, 0, False, (1,), 1.0, 1.0),
    (17, 48, 16, 0, 0, True, (1, 1), 1.0, 0.0),
]


WITH_C_KINDS = [case + (const_c,) for case in GEMM_CASES for const_c in (True, False)
                if case[6] is not None or const_c]


@pytest.mark.parametrize("m,n,k,ta,tb,const_b,c_shape,alpha,beta,const_c", WITH_C_KINDS)
def test_gemm(rng, m, n, k, ta, tb, const_b, c_shape, alpha, beta, const_c):
    a = rand(rng, *((k, m) if ta else (m, k)))
    b = rand(rng, *((n, k) if tb else (k, n)))
    c = rand(rng, *c_shape) if c_shape is not None else None
    expected = alpha * (a.T if ta else a) @ (b.T if tb else b)
    if c is not None:
        expected = expected + beta * c
    consts = {"b"} if const_b else set()
    consts |= {"c"} if const_c else set()
    g, feeds = graph_of("Gemm", {"a": a, "b": b, "c": c}, consts, (m, n),
                        dict(transA=ta, transB=tb, alpha=alpha, beta=beta))
    assert_close(run_graph_nodes(g, feeds)["y"], expected)


@pytest.mark.parametrize("activation,clip", [("Relu", None), ("Clip", (-1.0, 0.5)), ("", None)])
def test_fused_gemm(rng, activation, clip):
    m, n, k = 6, 50, 40
    a, b, c, r = rand(rng, m, k), rand(rng, n, k), rand(rng, n), rand(rng, m, n)
    attrs = dict(transA=0, transB=1, alpha=1.0, beta=1.0, activation=activation)
    if clip:
        attrs.update(clip_min=clip[0], clip_max=clip[1])
    g, feeds = graph_of("Gemm", {"a": a, "b": b, "c": c, "r": r}, {"b", "c"}, (m, n), attrs,
                        domain="tinyc")
    expected = a @ b.T + c + r
    if activation == "Relu":
        expected = np.maximum(expected, 0)
    elif activation == "Clip":
        expected = np.clip(expected, *clip)
    assert_close(run_graph_nodes(g, feeds)["y"], expected)


MATMUL_CASES = [
    ((13, 21), (21, 35), True),
    ((13, 21), (21, 35), False),
    ((2, 3, 7, 20), (20, 50), True),  # batch folded into M
    ((2, 3, 7, 20), (3, 20, 9), False),  # broadcast batch
    ((2, 1, 7, 20), (1, 3, 20, 9), False),
    ((4, 5, 6), (4, 6, 19), True),  # constant B with batch dims
    ((6, 7), (3, 7, 5), False),  # 2-D A against a batch of B
    ((20,), (20, 33), True),  # 1-D A
    ((2, 9, 20), (20,), False),  # 1-D B
    ((20,), (20,), False),  # dot product
]


@pytest.mark.parametrize("a_shape,b_shape,const_b", MATMUL_CASES)
def test_matmul(rng, a_shape, b_shape, const_b):
    a, b = rand(rng, *a_shape), rand(rng, *b_shape)
    expected = np.matmul(a, b)
    g, feeds = graph_of("MatMul", {"a": a, "b": b}, {"b"} if const_b else set(),
                        expected.shape)
    assert_close(run_graph_nodes(g, feeds)["y"], expected)


def test_avx2_target(rng):
    a, b, c = rand(rng, 11, 37), rand(rng, 37, 29), rand(rng, 29)
    g, feeds = graph_of("Gemm", {"a": a, "b": b, "c": c}, {"b", "c"}, (11, 29))
    got = run_graph_nodes(g, feeds, host_target(256))["y"]
    assert_close(got, a @ b + c)


def test_note_says_what_was_packed(rng):
    a, b = rand(rng, 4, 8), rand(rng, 8, 16)
    g, _ = graph_of("MatMul", {"a": a, "b": b}, {"b"}, (4, 16))
    ln = lower_matmul(g.nodes[0], LowerContext(g, host_target()))
    assert "B packed at compile time" in ln.note
    assert len(ln.calls) == 1 and ln.semantics.startswith("y[...,m,n]")


def test_gemm_rejects_non_2d(rng):
    a, b = rand(rng, 2, 4, 8), rand(rng, 8, 16)
    g, _ = graph_of("Gemm", {"a": a, "b": b}, set(), (2, 4, 16))
    with pytest.raises(NotLowerable, match="2-D"):
        lower_gemm(g.nodes[0], LowerContext(g, host_target()))


def test_matmul_rejects_int(rng):
    a = np.ones((3, 4), np.int32)
    g, _ = graph_of("MatMul", {"a": a, "b": a.T.copy()}, set(), (3, 3))
    g = g.replace(types={**g.types, "y": TensorType(DType.int32, (3, 3))})
    with pytest.raises(NotLowerable, match="f32"):
        lower_matmul(g.nodes[0], LowerContext(g, host_target()))


def test_plain_path_without_intrinsics(rng):
    a, b, c = rand(rng, 11, 37), rand(rng, 37, 29), rand(rng, 29)
    g, feeds = graph_of("Gemm", {"a": a, "b": b, "c": c}, {"b", "c"}, (11, 29))
    ln = lower_gemm(g.nodes[0], LowerContext(g, host_target()))
    assert ln.intrinsic == "" and "plain LLVM path" in ln.note
    assert_close(run_graph_nodes(g, feeds, intrinsics=())["y"], a @ b + c)


def test_matmul_reports_intrinsic_and_rejections(rng):
    from tinyc.tensorize.sets import sets_for_features

    a, b = rand(rng, 40, 64), rand(rng, 64, 96)
    g, _ = graph_of("MatMul", {"a": a, "b": b}, {"b"}, (40, 96))
    target = host_target()
    ln = lower_matmul(g.nodes[0], LowerContext(g, target, sets_for_features(target)))
    assert ln.intrinsic == "avx512_fma.fma_f32_1x16" and "tile 8x48" in ln.note
    assert dict(ln.rejected)["avx512_vnni.dot_16x4_u8i8i32"].startswith("dtype")
