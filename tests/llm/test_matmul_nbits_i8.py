"""MatMulNBits at accuracy_level 4: activations quantized to int8 per block and
multiplied on the target's u8 x s8 dot step (lower/matmul_nbits_i8.py).

Checked three ways: against a numpy model of the documented quantization (the
integer part exact), against onnxruntime's own level-4 kernel, and the weight
repacking on its own. A host without a fitting dot step (no VNNI) computes the
node in float32, as at level 0: the tests then check that fallback."""

from __future__ import annotations

import numpy as np
import pytest
from genai_cases import Case, model, quantize

import tinyc
from tinyc.lower.matmul_nbits_i8 import repack_weights
from tinyc.target.machine import host_features

rng = np.random.default_rng(12)
HAS_DOT = any(f in host_features().split(",") for f in ("+avx512vnni", "+avxvnni"))


def _case(m, n, k, block, zp, bias):
    q, s, z = quantize(rng.standard_normal((n, k)).astype(np.float32), 4, block, zp, rng)
    a = rng.standard_normal((m, k)).astype(np.float32) * 3
    ins = [a, q, s, z, None, rng.standard_normal(n).astype(np.float32) if bias else None]
    consts = tuple(i for i in range(1, 6) if ins[i] is not None)
    return Case("MatMulNBits", ins, consts, {"K": k, "N": n, "bits": 4, "block_size": block,
                                             "accuracy_level": 4})


CASES = [  # (m, n, k, block, zero points, bias): GEMV, row tiles of 4 and their rest,
    (1, 64, 128, 32, "none", False),   # a short last column group, every block size
    (5, 40, 256, 64, "uint8", True),
    (3, 33, 64, 16, "none", True),
    (9, 128, 512, 128, "uint8", False),
    (2, 48, 512, 256, "none", False),
    (4, 20, 96, 32, "uint8", True),
]


def reference(case: Case) -> np.ndarray:
    """onnxruntime's CompInt8 numerics in numpy: qa = round_half_even(a * (127 / amax))
    per block, the int32 dot with (q - z), scaled by amax / 127 and the weight's scale."""
    a, q, s, z, _, bias = (case.inputs + [None] * 6)[:6]
    k, n, block = case.attrs["K"], case.attrs["N"], case.attrs["block_size"]
    kb = k // block
    codes = np.stack([q.reshape(n, -1) & 15, q.reshape(n, -1) >> 4], -1).reshape(n, kb, block)
    zeros = (np.stack([z & 15, z >> 4], -1).reshape(n, -1)[:, :kb] if z is not None
             else np.full((n, kb), 8)).astype(np.int64)
    blocks = a.reshape(-1, kb, block).astype(np.float32)
    amax = np.abs(blocks).max(-1)
    inverse = np.where(amax != 0, np.float32(127) / np.where(amax != 0, amax, 1), 0)
    qa = np.rint(blocks * inverse[..., None].astype(np.float32)).astype(np.int64)
    dots = np.einsum("mbk,nbk->mnb", qa, codes.astype(np.int64)) - zeros[None] * qa.sum(-1)[:, None]
    scales = (amax / np.float32(127))[:, None, :] * s.reshape(n, kb)[None]
    y = (dots * scales.astype(np.float64)).sum(-1)
    return (y + bias if bias is not None else y).reshape(a.shape[:-1] + (n,))


def _compile_and_run(cases):
    proto, feeds, names = model(cases)
    data = proto.SerializeToString()
    art = tinyc.compile(data, target="x86")
    return art, tinyc.InferenceSession(data, target="x86").run(names, feeds), data, feeds, names


@pytest.mark.skipif(not HAS_DOT, reason="this CPU has no VNNI: level 4 runs the float "
                    "kernel here (test_without_a_dot_step_level_4_computes_in_float)")
def test_int8_activations_match_the_documented_quantization_and_onnxruntime():
    import onnxruntime as ort

    cases = [_case(*c) for c in CASES]
    art, got, data, feeds, names = _compile_and_run(cases)
    kernels = [r["kernels"][0] for r in art.report]
    assert all(k.startswith("matmul_nbits_i8_") for k in kernels), kernels
    assert all("dot_" in r["intrinsic"] for r in art.report), [r["intrinsic"] for r in art.report]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(names, feeds)
    for case, g, w in zip(cases, got, want, strict=True):
        span = float(w.max() - w.min())
        # the integer part is exact: only the float scaling's rounding differs
        assert np.abs(g - reference(case)).max() <= 1e-5 * span, case.attrs
        assert np.abs(g - w).max() <= 1e-5 * span, case.attrs


@pytest.mark.skipif(not HAS_DOT, reason="this CPU has no VNNI: no int8 path to compare")
def test_level_4_differs_from_level_0_by_the_activation_rounding_only():
    """The int8 path is not the float path: its error against float32 compute is the
    activation quantization's (about 1/254 of each block's range), no more."""
    case = _case(3, 64, 256, 32, "uint8", False)
    float_case = Case(case.op, case.inputs, case.consts, {**case.attrs, "accuracy_level": 0})
    (_, (got,), *_), (_, (exact,), *_) = _compile_and_run([case]), _compile_and_run([float_case])
    span = float(exact.max() - exact.min())
    assert 1e-6 * span < np.abs(got - exact).max() < 2e-2 * span


def test_without_a_dot_step_level_4_computes_in_float(tmp_path):
    """x86-avx2 has no u8 x s8 step without widening: the float kernel, named in the report."""
    case = _case(2, 32, 128, 32, "none", False)
    proto, feeds, names = model([case])
    art = tinyc.compile(proto.SerializeToString(), target="x86-avx2")
    assert art.report[0]["kernels"][0].startswith("matmul_nbits_q4_b32_w16_panels")


def test_repacked_weights_hold_each_code_once_in_the_kernel_layout():
    n, k, block, lanes, kstep = 20, 128, 32, 16, 4
    codes = rng.integers(0, 16, (n, k), dtype=np.uint8)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).reshape(n, k // block, block // 2)
    out = repack_weights(packed, n, k, block, lanes, kstep)
    groups = 2
    assert out.size == groups * lanes * k // 2  # the same bytes (plus the padded columns)
    pairs = out.reshape(groups, k // block, block // (2 * kstep), lanes, kstep)
    for g, blk, pair, lane, byte in [(0, 0, 0, 0, 0), (1, 3, 3, 3, 2), (0, 2, 1, 15, 3)]:
        col, first = g * lanes + lane, blk * block + 2 * pair * kstep + byte
        value = pairs[g, blk, pair, lane, byte]
        assert value & 15 == codes[col, first]
        assert value >> 4 == codes[col, first + kstep]
    assert not pairs[1, :, :, n - lanes:].any()  # columns past N are zero


def test_arm_dotprod_takes_the_signed_form_and_is_exact():
    """Arm's sdot is int8 x int8: the 4-bit codes go in as int8 (no flip needed for
    0..15). Runs under qemu-aarch64."""
    from tinyc.errors import TargetError
    from tinyc.target import resolve_device

    try:
        resolve_device("arm64-dotprod")
    except TargetError as e:
        pytest.skip(str(e))
    cases = [_case(5, 40, 256, 64, "uint8", True), _case(1, 33, 64, 16, "none", False)]
    proto, feeds, names = model(cases)
    data = proto.SerializeToString()
    art = tinyc.compile(data, target="arm64-dotprod")
    assert {r["intrinsic"] for r in art.report} == {"neon_dotprod.sdot_4x4_i8i8i32"}
    got = tinyc.InferenceSession(data, target="arm64-dotprod").run(names, feeds)
    for case, g in zip(cases, got, strict=True):
        want = reference(case)
        assert np.abs(g - want).max() <= 1e-5 * float(want.max() - want.min())
