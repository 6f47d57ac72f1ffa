"""tinyc's int8 GEMM descriptions (what the CPU lowering builds) become engine
jobs that compute the same integers."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.accel.commands import Emitter
from tinyc.accel.engine import engine_of
from tinyc.accel.int_gemm import job_from_int_gemm
from tinyc.accel.jobs import im2col
from tinyc.accel.layers import Unsupported
from tinyc.accel.simulator import Simulator
from tinyc.accel.tiling import emit_job
from tinyc.plugin import Buf, Im2col, IntGemm, IntMatrix, Requant, resolve_spec_by_name


def _run(job, x, out_shape):
    engine = engine_of(resolve_spec_by_name("accel_sim"))
    em = Emitter()
    emit_job(0, job, engine, em)
    memory = {"x": x, "y": np.zeros(out_shape, np.dtype(job.out_dtype))}
    Simulator(engine, [job], em.commands).run(memory)
    return memory["y"]


def _requant(acc, scale, zp, dtype):
    lo, hi = {"int8": (-128, 127), "uint8": (0, 255)}[dtype]
    f = np.clip(acc.astype(np.float32) * scale, np.float32(lo - zp), np.float32(hi - zp))
    return (np.rint(f).astype(np.int32) + zp).astype(dtype)


def test_a_convolution_as_the_cpu_lowers_it():
    rng = np.random.default_rng(0)
    c, h, w, co = 8, 9, 7, 20
    geo = Im2col(c, h, w, 3, 3, 2, 2, 1, 1, 1, 1, 5, 4)
    weights = rng.integers(-128, 128, (co, geo.k)).astype(np.int8)
    scale = rng.uniform(1e-3, 3e-3, co).astype(np.float32)
    bias = rng.integers(-300, 300, co).astype(np.int32)
    gemm = IntGemm(co, geo.pixels, geo.k, IntMatrix("int8", const=weights),
                   IntMatrix("uint8", buf=Buf("x"), zero_point=128, im2col=geo),
                   Buf("y"), geo.pixels, bias=bias, bias_axis="row",
                   requant=Requant(scale, 4, "uint8", axis="row"), batch=2)
    job = job_from_int_gemm("conv", gemm, "x", "y")
    x = rng.integers(0, 256, (2, c, h, w)).astype(np.uint8)
    got = _run(job, x, (2, co, 5, 4))
    for b in range(2):
        cols = im2col(x[b], job.geometry, 128).astype(np.int64) - 128
        acc = (weights.astype(np.int64) @ cols.T).astype(np.int32) + bias[:, None]
        want = _requant(acc, scale[:, None], 4, "uint8")
        np.testing.assert_array_equal(got[b].reshape(co, -1), want)


def test_a_matrix_product_as_the_cpu_lowers_it():
    rng = np.random.default_rng(1)
    m, k, n = 5, 40, 33
    weights = rng.integers(-128, 128, (k, n)).astype(np.int8)
    gemm = IntGemm(m, n, k, IntMatrix("int8", buf=Buf("x"), row_stride=k, col_stride=1,
                                      zero_point=-7),
                   IntMatrix("int8", const=weights), Buf("y"), n,
                   requant=Requant(np.float32(0.004), -2, "int8"))
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    got = _run(job_from_int_gemm("fc", gemm, "x", "y"), x, (m, n))
    acc = ((x.astype(np.int64) + 7) @ weights.astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(got, _requant(acc, np.float32(0.004), -2, "int8"))


def test_two_runtime_operands_do_not_map():
    gemm = IntGemm(4, 4, 4, IntMatrix("int8", buf=Buf("a"), row_stride=4, col_stride=1),
                   IntMatrix("int8", buf=Buf("b"), row_stride=4, col_stride=1), Buf("y"), 4)
    with pytest.raises(Unsupported, match="constant weights"):
        job_from_int_gemm("attn", gemm, "a", "y")


def test_a_pointwise_convolution_reads_channels_by_rows():
    rng = np.random.default_rng(2)
    c, hw, co = 24, 30, 16
    weights = rng.integers(-128, 128, (co, c)).astype(np.int8)
    gemm = IntGemm(co, hw, c, IntMatrix("int8", const=weights),
                   IntMatrix("int8", buf=Buf("x"), row_stride=hw, col_stride=1, zero_point=-1),
                   Buf("y"), hw, requant=Requant(np.float32(0.003), 0, "int8", axis="row"),
                   batch=2, b_bstride=c * hw, c_bstride=co * hw)
    x = rng.integers(-128, 128, (2, c, hw)).astype(np.int8)
    got = _run(job_from_int_gemm("pw", gemm, "x", "y"), x, (2, co, hw))
    for b in range(2):
        acc = (weights.astype(np.int64) @ (x[b].astype(np.int64) + 1)).astype(np.int32)
        np.testing.assert_array_equal(got[b], _requant(acc, np.float32(0.003), 0, "int8"))
