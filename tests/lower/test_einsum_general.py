"""Einsum end to end (passes/decompose_einsum.py, then the lowerings): every kind
of equation ONNX allows, against numpy.einsum and onnxruntime, compiled as one
model per test so that the kernels build once; the GEMM path keeps the
equations it took before; symbolic batch sizes; what is refused."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc
from tinyc.errors import ModelError

ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
              np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.int64): TensorProto.INT64}
SIZES = dict(b=2, i=3, j=4, k=5, l=2, a=3, c=2, d=3, e=4, h=2, q=6)


def _operand(rng, subs: str, dtype, **override) -> np.ndarray:
    shape = [{**SIZES, **override}[c] for c in subs]
    if np.dtype(dtype).kind == "i":
        return rng.integers(-5, 6, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _cases(rng, equations, dtype=np.float32) -> list[tuple[str, list[np.ndarray]]]:
    return [(e, [_operand(rng, s, dtype) for s in e.split("->")[0].split(",")])
            for e in equations]


# (equation, operands): each category the GEMM lowering alone refuses
def _table(rng) -> list[tuple[str, list[np.ndarray]]]:
    f32 = np.float32
    cases = _cases(rng, [
        "ii->i", "bii->bi", "iib->bi", "iii->i", "ii", "iij,jk->ik",  # diagonals (ii: trace)
        "ij->i", "ij->", "bij->jb", "ij,jk->i", "ij,jk->k",  # sums over one operand's index
        "i,i->", "i,i", "bi,bi->b", "bij,bj->bj",  # inner products, innermost batch index
        "ij,jk,kl->il", "i,j,k->ijk", "ab,bc,cd,de->ae", "bij,jk,bkl->bil", "ijk,kji,i->",
        "ji,ij->",
    ])
    cases += [
        ("...ij,...jk->...ik", [_operand(rng, "aij", f32, a=1), _operand(rng, "hjk", f32)]),
        ("...i,...i->...", [_operand(rng, "bai", f32, a=1), _operand(rng, "hai", f32, h=1)]),
        ("...ii->...i", [_operand(rng, "bhii", f32)]),
        ("...ij,...jk", [_operand(rng, "bij", f32), _operand(rng, "bjk", f32)]),  # implicit
        ("...->...", [_operand(rng, "ij", f32)]),
    ]
    cases += _cases(rng, ["bij,bjk->bik", "ii->i", "ij,jk,kl->il", "bi,bi->b"], np.float64)
    cases += _cases(rng, ["ij,jk->ik", "ii->i", "bij,bj->b", "i,i->"], np.int64)
    cases += _cases(rng, ["ij,jk->ik", "bii->bi", "ij->j"], np.int32)
    cases += _cases(rng, ["ij,jk->ik", "i,i->", "ii->i", "bij,bjk->bik", "ij->"], np.float16)
    return cases


def _model(cases, opset: int = 13, dims=None):
    nodes, inputs, outputs, feeds = [], [], [], {}
    for c, (equation, arrays) in enumerate(cases):
        names = [f"c{c}.x{k}" for k in range(len(arrays))]
        for k, (name, a) in enumerate(zip(names, arrays, strict=True)):
            shape = dims[c][k] if dims else a.shape
            inputs.append(helper.make_tensor_value_info(name, ONNX_TYPES[a.dtype], shape))
            feeds[name] = a
        nodes.append(helper.make_node("Einsum", names, [f"c{c}.y"], name=f"einsum{c}",
                                      equation=equation))
        outputs.append(helper.make_tensor_value_info(f"c{c}.y", ONNX_TYPES[arrays[0].dtype],
                                                     None))
    graph = helper.make_graph(nodes, "einsums", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8)
    return model, feeds


def _numpy(equation: str, arrays: list[np.ndarray]) -> np.ndarray:
    """numpy.einsum in float64 (float16 sums otherwise round at every step)."""
    wide = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    return np.asarray(np.einsum(equation, *wide)).astype(arrays[0].dtype)


def _tolerance(dtype) -> float:
    # float16: computed in float32 and rounded once, so within about one rounding
    return {np.dtype(np.float16): 4e-3, np.dtype(np.float32): 1e-4}.get(np.dtype(dtype), 1e-9)


def _compare(cases, got, oracle: str) -> list[str]:
    failures = []
    for (equation, arrays), g, w in zip(cases, got, oracle, strict=True):
        dtype, tol = arrays[0].dtype, _tolerance(arrays[0].dtype)
        if g.shape != w.shape or g.dtype != dtype or not np.allclose(
                g.astype(np.float64), w.astype(np.float64), rtol=tol, atol=tol):
            failures.append(f"{equation} {dtype}: got {g.dtype}{g.shape} {g.ravel()[:4]}, "
                            f"want {w.dtype}{w.shape} {w.ravel()[:4]}")
    return failures


@pytest.mark.parametrize("opset", [12, 13])  # ReduceSum's / Unsqueeze's axes: attribute, input
def test_every_kind_of_equation_matches_numpy_and_onnxruntime(rng, opset):
    import onnxruntime as ort

    cases = _table(rng)
    model, feeds = _model(cases, opset)
    got = tinyc.InferenceSession(model.SerializeToString()).run(None, feeds)
    failures = _compare(cases, got, [_numpy(e, a) for e, a in cases])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # onnxruntime's CPU Einsum has no float16 kernel: those cases have numpy only
    ort_cases = [(k, c) for k, c in enumerate(cases) if c[1][0].dtype != np.float16]
    ort_model, ort_feeds = _model([c for _, c in ort_cases], opset)
    want = ort.InferenceSession(ort_model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"]).run(None, ort_feeds)
    failures += _compare([c for _, c in ort_cases], [got[k] for k, _ in ort_cases], want)
    assert not failures, "\n".join(failures)


def test_a_float32_pair_the_gemm_takes_still_lowers_to_the_gemm(rng):
    cases = _cases(rng, ["bij,bjk->bik", "bhqd,bhkd->bhqk", "ij,kj->ik", "ij,jk,kl->il"])
    model, feeds = _model(cases)
    sess = tinyc.InferenceSession(model.SerializeToString())
    notes = {r["node"]: r["note"] for r in sess.artifact.report if r["op"] == "Einsum"}
    for c in range(3):  # one Einsum each, as compiled before the decomposition existed
        assert notes[f"einsum{c}"].startswith("gemm_f32"), notes
    chain = [n for node, n in notes.items() if node.startswith("einsum3/")]
    assert len(chain) == 2 and all(n.startswith("gemm_f32") for n in chain), notes
    got = sess.run(None, feeds)
    assert not _compare(cases, got, [_numpy(e, a) for e, a in cases])


def test_float64_and_integer_pairs_use_the_contraction_kernel(rng):
    cases = (_cases(rng, ["bij,bjk->bik", "ij,kj->ik"], np.float64)
             + _cases(rng, ["bij,bjk->bik"], np.int64) + _cases(rng, ["ij,jk->ik"], np.int32))
    cases.append(("ij,jk->ik", [np.full((2, 3), 2**40, np.int64),
                                np.full((3, 2), 2**30, np.int64)]))  # wraps as numpy's
    model, feeds = _model(cases)
    sess = tinyc.InferenceSession(model.SerializeToString())
    notes = [r["note"] for r in sess.artifact.report]
    kernels = ["contract_f64", "contract_f64", "contract_i64", "contract_i32", "contract_i64"]
    assert [n.split(":")[0] for n in notes] == kernels, notes
    got = sess.run(None, feeds)
    assert not _compare(cases, got, [_numpy(e, a) for e, a in cases])


def test_symbolic_batch_sizes(rng):
    equations = ["bij,bjk->bik", "bii->bi", "bi,bi->b", "bij,jk,bkl->bil"]
    dtypes = [np.float32, np.float32, np.float32, np.float32, np.float64]
    equations.append("bij,bjk->bik")
    first = [(e, [_operand(rng, s, dt) for s in e.split("->")[0].split(",")])
             for e, dt in zip(equations, dtypes, strict=True)]
    dims = [[["n" if c == "b" else SIZES[c] for c in s] for s in e.split("->")[0].split(",")]
            for e, _ in first]
    model, _ = _model(first, dims=dims)
    sess = tinyc.InferenceSession(model.SerializeToString())
    for n in (1, 5):
        cases = [(e, [_operand(rng, s, dt, b=n) for s in e.split("->")[0].split(",")])
                 for e, dt in zip(equations, dtypes, strict=True)]
        feeds = {f"c{c}.x{k}": a for c, (_, arrays) in enumerate(cases)
                 for k, a in enumerate(arrays)}
        got = sess.run(None, feeds)
        failures = _compare(cases, got, [_numpy(e, a) for e, a in cases])
        assert not failures, f"batch {n}:\n" + "\n".join(failures)


@pytest.mark.parametrize("equation, shapes, message", [
    ("ii->i", [(2, 3)], "index 'i' is 2 in one operand and 3"),  # the contract check
    ("...ii->...i", [(2, 3, 4)], "repeated in operand 0 with different sizes"),  # the pass
    ("...->", [(2, 3)], "dims the output drops"),  # numpy and onnxruntime refuse it too
    ("ii->i", [(0, 1)], "index 'i' is 0 in one operand and 1"),  # not folded as numpy would
])
def test_inconsistent_equations_are_model_errors(equation, shapes, message):
    arrays = [np.zeros(s, np.float32) for s in shapes]
    model, _ = _model([(equation, arrays)])
    with pytest.raises(ModelError, match=message):
        tinyc.InferenceSession(model.SerializeToString())
