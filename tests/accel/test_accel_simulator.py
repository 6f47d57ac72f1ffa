"""The simulator against numpy integer math, on both specs: convolutions and
matrix products of every operand dtype, tiling forced by small buffers,
double buffering, capacity checks, and programs saved and loaded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinyc.accel.commands import Emitter, LoadInput
from tinyc.accel.engine import engine_of
from tinyc.accel.jobs import ConvGeometry, GemmJob, im2col
from tinyc.accel.program import Program
from tinyc.accel.simulator import SimulationError, Simulator
from tinyc.accel.tiling import choose_tiles, emit_job
from tinyc.plugin import resolve_spec_by_name

RANGE = {"int8": (-128, 128), "uint8": (0, 256)}


def _engine(name: str):
    return engine_of(resolve_spec_by_name(name))


def _conv_job(rng, c=16, h=12, w=10, co=24, k=3, stride=1, pad=1, dtype="int8", batch=2):
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    g = ConvGeometry(c, h, w, k, k, stride, stride, 1, 1, pad, pad, ho, wo)
    weights = rng.integers(-128, 128, (c * k * k, co)).astype(np.int8)
    return GemmJob("conv", ho * wo, co, c * k * k, "x", "y", weights, dtype,
                   input_zero=int(rng.integers(*RANGE[dtype])),
                   weight_zero=rng.integers(-3, 3, co).astype(np.int32),
                   bias=rng.integers(-5000, 5000, co).astype(np.int32),
                   scale=rng.uniform(1e-4, 1e-3, co).astype(np.float32),
                   out_zero=int(rng.integers(-20, 20)), out_dtype="int8", clamp=(-100, 90),
                   batch=batch, geometry=g, channels_first_out=True)


def _reference(job: GemmJob, x: np.ndarray) -> np.ndarray:
    """Plain int64 numpy: sum (x - zx)(w - zw) + bias, then the CPU's requantization."""
    outs = []
    for b in range(job.batch):
        if job.geometry:
            a = im2col(x.reshape(job.batch, job.geometry.c, job.geometry.h, job.geometry.w)[b],
                       job.geometry, job.input_zero)
        else:
            a = x.reshape(-1, job.k)
        acc = (a.astype(np.int64) - job.input_zero) @ (job.weights.astype(np.int64)
                                                        - job.weight_zero)
        acc = acc.astype(np.int32) + job.bias
        f = np.clip(acc.astype(np.float32) * job.scale, np.float32(-128 - job.out_zero),
                    np.float32(127 - job.out_zero))
        q = np.clip(np.rint(f).astype(np.int32) + job.out_zero, *job.clamp).astype(np.int8)
        outs.append(q.T if job.channels_first_out else q)
    return np.stack(outs)


def _simulate(job: GemmJob, engine, x: np.ndarray):
    out = Emitter()
    emit_job(0, job, engine, out)
    shape = (job.batch, job.n, job.m) if job.channels_first_out else (job.m, job.n)
    memory = {"x": x, "y": np.zeros(shape, np.int8)}
    stats = Simulator(engine, [job], out.commands).run(memory)
    return memory["y"], stats, out.commands


@pytest.mark.parametrize("spec", ["accel_sim", "accel_sim_small"])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_convolution_is_bit_exact(spec, dtype):
    rng = np.random.default_rng(1)
    job = _conv_job(rng, dtype=dtype, stride=2 if dtype == "uint8" else 1)
    g = job.geometry
    x = rng.integers(*RANGE[dtype], (job.batch, g.c, g.h, g.w)).astype(dtype)
    got, stats, _ = _simulate(job, _engine(spec), x)
    np.testing.assert_array_equal(got, _reference(job, x).reshape(got.shape))
    assert stats.useful_macs == job.macs


@pytest.mark.parametrize("spec", ["accel_sim", "accel_sim_small"])
def test_matrix_product_is_bit_exact(spec):
    rng = np.random.default_rng(2)
    m, k, n = 37, 300, 70  # nothing a multiple of the array
    job = GemmJob("fc", m, n, k, "x", "y", rng.integers(-128, 128, (k, n)).astype(np.int8),
                  "int8", input_zero=5, weight_zero=np.zeros(n, np.int32),
                  bias=rng.integers(-99, 99, n).astype(np.int32),
                  scale=np.full(n, 2e-3, np.float32), out_zero=3, out_dtype="int8",
                  clamp=(3, 127))
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    got, _, _ = _simulate(job, _engine(spec), x)
    np.testing.assert_array_equal(got, _reference(job, x)[0])


def test_the_small_spec_tiles_along_k_and_the_large_one_does_not():
    job = _conv_job(np.random.default_rng(3), c=64, co=64, batch=1)  # k = 576
    assert choose_tiles(job, _engine("accel_sim")).kt >= job.k
    small = choose_tiles(job, _engine("accel_sim_small"))
    assert small.kt < job.k and small.fits(_engine("accel_sim_small"))


def test_double_buffering_overlaps_dma_with_compute():
    rng = np.random.default_rng(4)
    job = _conv_job(rng, c=64, h=28, w=28, co=64, batch=1)
    x = rng.integers(-128, 128, (1, 64, 28, 28)).astype(np.int8)
    _, stats, _ = _simulate(job, _engine("accel_sim"), x)
    assert stats.overlap > 0.5 * stats.dma_busy
    assert stats.cycles < stats.compute_busy + stats.dma_busy
    assert 0.8 < stats.utilization <= 1.0


def test_a_tile_larger_than_its_slot_is_refused():
    rng = np.random.default_rng(5)
    job = _conv_job(rng, c=64, h=28, w=28, co=64, batch=1)
    engine = _engine("accel_sim_small")
    too_big = LoadInput(0, 0, 0, job.m, 0, job.k, 0)
    with pytest.raises(SimulationError, match="overflow a input buffer slot"):
        Simulator(engine, [job], [too_big]).run({"x": np.zeros((1, 64, 28, 28), np.int8)})


def test_program_survives_save_and_load(tmp_path):
    rng = np.random.default_rng(6)
    job = _conv_job(rng, batch=1)
    out = Emitter()
    emit_job(0, job, _engine("accel_sim_small"), out)
    program = Program(_engine("accel_sim_small"), [job], out.commands, ["x"], ["y"],
                      {"x": ((1, 16, 12, 10), "int8"), "y": ((1, 24, 12, 10), "int8")})
    program.save(str(tmp_path), "region_0")
    again = Program.load(str(tmp_path), "region_0")
    assert again.commands == program.commands and again.engine == program.engine
    for a, b in zip(dataclasses.astuple(again.jobs[0]), dataclasses.astuple(job), strict=True):
        np.testing.assert_array_equal(a, b)
