"""MatMulNBits in float32 compute on column panels (lower/matmul_nbits_panels.py):
one row of A streams the panels (GEMV), several rows dequantize them into the
fp32 GEMM's B panels. Checked against a float64 numpy product of the
dequantized weight, with the repacking on its own; shapes cover panel
padding, several GEMM K blocks, bias, 8 bits, AVX2's narrower panels, threads
and Arm under qemu."""

from __future__ import annotations

import numpy as np
import pytest
from genai_cases import Case, model, quantize

import tinyc
from tinyc.codegen.kernels.gemm.nbits_panels import PanelSpec
from tinyc.compiler import CompileOptions
from tinyc.lower.matmul_nbits_panels import repack

rng = np.random.default_rng(5)


def _case(m, n, k, bits, block, zp, bias):
    q, s, z = quantize(rng.standard_normal((n, k)).astype(np.float32), bits, block, zp, rng)
    a = rng.standard_normal((m, k)).astype(np.float32)
    ins = [a, q, s, z, None, rng.standard_normal(n).astype(np.float32) if bias else None]
    consts = tuple(i for i in range(1, 6) if ins[i] is not None)
    return Case("MatMulNBits", ins, consts, {"K": k, "N": n, "bits": bits, "block_size": block})


def dequantized(case: Case) -> np.ndarray:
    """W [N, K] in float64: (q - z) * s."""
    _, q, s, z = case.inputs[:4]
    k, n, bits, block = (case.attrs[a] for a in ("K", "N", "bits", "block_size"))
    per_byte, kb = 8 // bits, k // block
    codes = q.reshape(n, -1)
    if bits == 4:
        codes = np.stack([codes & 15, codes >> 4], -1).reshape(n, -1)
    if z is None:
        zeros = np.full((n, kb), 1 << (bits - 1))
    else:
        zeros = z.reshape(n, -1)
        if per_byte == 2:
            zeros = np.stack([zeros & 15, zeros >> 4], -1).reshape(n, -1)
        zeros = zeros[:, :kb]
    w = (codes.reshape(n, kb, block).astype(np.float64) - zeros[..., None]) \
        * s.reshape(n, kb, 1).astype(np.float64)
    return w.reshape(n, k)


def reference(case: Case) -> np.ndarray:
    a, bias = case.inputs[0].astype(np.float64), case.inputs[5]
    y = a @ dequantized(case).T
    return y + bias if bias is not None else y


CASES = [  # (m, n, k, bits, block, zero points, bias)
    (1, 100, 128, 4, 32, "none", False),     # GEMV, a padded last panel
    (1, 48, 544, 4, 32, "uint8", True),      # GEMV, bias, zero points
    (7, 40, 256, 4, 64, "uint8", True),      # fewer rows than the tile
    (17, 130, 544, 4, 32, "none", False),    # K in three GEMM blocks, rows past a tile
    (9, 64, 512, 4, 256, "uint8", False),    # block 256
    (3, 33, 64, 4, 16, "none", True),        # block 16
    (5, 50, 128, 8, 32, "uint8", True),      # 8 bits
    (1, 50, 128, 8, 32, "none", False),
]


@pytest.mark.parametrize("target,threads", [("x86", 1), ("x86", 2), ("x86-avx2", 2)])
def test_panels_match_the_dequantized_product(target, threads):
    cases = [_case(*c) for c in CASES]
    proto, feeds, names = model(cases)
    sess = tinyc.InferenceSession(proto.SerializeToString(), target=target,
                                  options=CompileOptions(threads=threads))
    assert all("_panels_" in r["kernels"][0] for r in sess.artifact.report)
    for case, got in zip(cases, sess.run(names, feeds), strict=True):
        want = reference(case)
        assert np.abs(got - want).max() <= 1e-5 * float(np.abs(want).max()), case.attrs


def test_one_compile_serves_decode_and_prefill_rows():
    """A symbolic row count: the same kernel takes 1 row (GEMV) and 12 (GEMM)."""
    case = _case(4, 96, 256, 4, 32, "uint8", True)
    proto, _, names = model([case])
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "rows"
    sess = tinyc.InferenceSession(proto.SerializeToString(), target="x86")
    for rows in (1, 12, 1):
        a = rng.standard_normal((rows, 256)).astype(np.float32)
        case.inputs[0] = a
        got = sess.run(names, {proto.graph.input[0].name: a})[0]
        want = reference(case)
        assert np.abs(got - want).max() <= 1e-5 * float(np.abs(want).max())
    assert sess.compile_count == 1


def test_repacking_puts_each_code_once_in_its_panel():
    n, k, block, width = 20, 64, 32, 16
    codes = rng.integers(0, 16, (n, k), dtype=np.uint8)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).reshape(n, k // block, block // 2)
    scales = rng.standard_normal(n * 2).astype(np.float32)
    zeros = rng.integers(0, 16, n * 2, dtype=np.uint8)
    q, s, z = repack(packed, scales, zeros, PanelSpec(4, block, width), n, k)
    assert q.shape == (2, k // 2, width) and q.size == 2 * width * k // 2
    for col, kk in [(0, 0), (5, 33), (17, 63), (19, 1)]:
        byte = q[col // width, kk // 2, col % width]
        assert (byte >> 4 if kk % 2 else byte & 15) == codes[col, kk]
        assert s[col // width, kk // block, col % width] == scales[col * 2 + kk // block]
        assert z[col // width, kk // block, col % width] == zeros[col * 2 + kk // block]
    assert not q[1, :, n - width:].any() and not s[1, :, n - width:].any()  # padding


def test_arm_runs_the_panels_under_qemu():
    from tinyc.errors import TargetError
    from tinyc.target import resolve_device

    try:
        resolve_device("arm64")
    except TargetError as e:
        pytest.skip(str(e))
    cases = [_case(*CASES[0]), _case(*CASES[3])]
    proto, feeds, names = model(cases)
    got = tinyc.InferenceSession(proto.SerializeToString(), target="arm64").run(names, feeds)
    for case, g in zip(cases, got, strict=True):
        want = reference(case)
        assert np.abs(g - want).max() <= 1e-5 * float(np.abs(want).max())
