"""Matching intrinsics by semantics: op statements as the GEMM core, intrinsics as
tiles of it, ranking and register tiles, and the reasons given when they do not fit."""

from __future__ import annotations

import textwrap

import pytest

from tinyc.target.intrinsics import read_intrinsic_file
from tinyc.target.machine import CpuTarget
from tinyc.tensorize.gemm_form import NotAGemm, gemm_form
from tinyc.tensorize.match import Rejected, match_intrinsic
from tinyc.tensorize.select import choose, register_tile

F32 = {"A": "float32", "B": "float32", "C": "float32"}
AVX512 = CpuTarget("x86_64-unknown-linux-gnu", "skylake-avx512", "+avx2,+fma,+avx512f", 512)
AVX2 = CpuTarget("x86_64-unknown-linux-gnu", "haswell", "+avx2,+fma", 256)

FMA16 = """\
    fma16:
      compute: C[i, j] += A[i, k] * B[k, j]
      tile: {i: 1, j: 16, k: 1}
      dtypes: {A: float32, B: float32, C: float32}
      emit:
        llvm: llvm.fma.v16f32
        returns: <16 x float>
        operands:
          - {tensor: A, type: <16 x float>, layout: broadcast}
          - {tensor: B, type: <16 x float>}
          - {tensor: C, type: <16 x float>}
"""
VNNI = """\
    dot:
      compute: Acc[lane] += Act[r] * Wt[lane, r]
      tile: {lane: 16, r: 4}
      dtypes: {Act: uint8, Wt: int8, Acc: int32}
      emit:
        llvm: llvm.x86.avx512.vpdpbusd.512
        returns: <16 x i32>
        operands:
          - {tensor: Acc, type: <16 x i32>}
          - {tensor: Act, type: <64 x i8>, layout: broadcast}
          - {tensor: Wt, type: <64 x i8>}
"""


def intrinsic_set(tmp_path, body: str, name: str = "s"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"set: {name}\nintrinsics:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return read_intrinsic_file(str(path))


def test_conv_is_a_gemm_after_im2col():
    f = gemm_form("Y[n, co, y, x] += X[n, ci, y*2+ky*1, x*2+kx*1] * W[co, ci, ky, kx]",
                  {"X": "float32", "W": "float32", "Y": "float32"}, "W")
    assert (f.m, f.n, f.k, f.batch) == (("co",), ("n", "y", "x"), ("ci", "ky", "kx"), ())
    assert f.roles == {"A": "W", "B": "X", "C": "Y"}
    assert any(t.startswith("im2col: B = X") for t in f.transforms)
    assert "k = ci*ky*kx" in f.transforms


def test_transposed_conv_and_groups():
    f = gemm_form("Y[n, g, co, y, x] += X[n, g, ci, y*1+ky*1, x*1+kx*1] * W[g, co, ci, ky, kx]",
                  {"X": "float32", "W": "float32", "Y": "float32"}, "X")
    assert f.batch == ("g",) and f.m == ("n", "y", "x") and f.n == ("co",)
    assert "C stored transposed (column-major)" in f.transforms


def test_gemm_with_transposed_b():
    f = gemm_form("Y[m, n] += A[m, k] * B[n, k]", {"A": "int8", "B": "int8", "Y": "int32"}, "A")
    assert "B = B transposed (n-major), reordered by packing" in f.transforms


def test_not_a_gemm():
    with pytest.raises(NotAGemm, match="not C \\+= X \\* Y"):
        gemm_form("Y[i] = A[i] + B[i]", {"A": "float32", "B": "float32", "Y": "float32"}, "A")


def test_fma_matches_with_renaming(tmp_path):
    (intr,) = intrinsic_set(tmp_path, FMA16).intrinsics
    mt = match_intrinsic("s", intr, F32)
    assert mt.tile == {"m": 1, "n": 16, "k": 1} and mt.flips == ()
    assert [o.role for o in mt.operands] == ["A", "B", "C"]
    assert mt.operand("A").layout == "broadcast"


def test_vnni_matches_whatever_its_names(tmp_path):
    (intr,) = intrinsic_set(tmp_path, VNNI).intrinsics
    mt = match_intrinsic("s", intr, {"A": "uint8", "B": "int8", "C": "int32"})
    assert mt.tile == {"m": 1, "n": 16, "k": 4} and mt.b_order == ("n", "k")
    assert mt.macs == 64


@pytest.mark.parametrize(("a", "b", "flips"), [("uint8", "int8", ()), ("int8", "int8", ("A",)),
                                               ("uint8", "uint8", ("B",)),
                                               ("int8", "uint8", ("A", "B"))])
def test_int8_pairs_map_onto_u8_i8_by_sign_flips(tmp_path, a, b, flips):
    (intr,) = intrinsic_set(tmp_path, VNNI).intrinsics
    assert match_intrinsic("s", intr, {"A": a, "B": b, "C": "int32"}).flips == flips


@pytest.mark.parametrize(("body", "dtypes", "reason"), [
    (FMA16, {"A": "uint8", "B": "int8", "C": "int32"}, "dtype: op is uint8 x int8 -> int32"),
    (VNNI, F32, "dtype: op is float32 x float32 -> float32, intrinsic uint8 x int8 -> int32"),
    (FMA16.replace("C[i, j] += A[i, k] * B[k, j]", "C[i, j] += A[i, j] * B[i, j]")
     .replace("{i: 1, j: 16, k: 1}", "{i: 1, j: 16}"), F32, "semantics"),
    (FMA16.replace("{i: 1, j: 16, k: 1}", "{i: 2, j: 8, k: 1}")
     .replace("<16 x float>}\n          - {tensor: C", "<8 x float>}\n          - {tensor: C"),
     F32, "is broadcast; the micro-kernel feeds A contiguous"),
])
def test_rejections_say_why(tmp_path, body, dtypes, reason):
    (intr,) = intrinsic_set(tmp_path, body).intrinsics
    with pytest.raises(Rejected, match=reason.replace("(", "\\(")):
        match_intrinsic("s", intr, dtypes)


def test_ranking_and_register_tiles(tmp_path):
    fma8 = FMA16.replace("fma16", "fma8").replace("16", "8")
    sets = (intrinsic_set(tmp_path, fma8, "narrow"), intrinsic_set(tmp_path, FMA16, "wide"))
    form = gemm_form("C[m, n] += A[m, k] * B[k, n]", F32, "A")
    big = choose(form, sets, AVX512, (256, 256, 256))
    assert big.match.name == "wide.fma16" and (big.tile.mr, big.tile.nv) == (8, 3)
    assert big.rejected == (("narrow.fma8", "ranked below wide.fma16 (8 vs 16 useful "
                             "multiply-accumulates per call)"),)
    # a 512-bit value is not native on a 256-bit target: the 8-lane one wins, 6x2 tile
    avx2 = choose(form, sets, AVX2, (256, 256, 256))
    assert avx2.match.name == "narrow.fma8" and (avx2.tile.mr, avx2.tile.nv) == (6, 2)
    # n = 8 fills only half of the 16 lanes: the narrow one does as much per call
    thin = choose(form, sets, AVX512, (256, 8, 256))
    assert thin.match.name == "narrow.fma8"
    assert "shape too small: n=8" in dict(thin.rejected)["wide.fma16"]


def test_priority_wins_over_width(tmp_path):
    fma8 = FMA16.replace("fma16", "fma8").replace("16", "8").replace(
        "compute:", "priority: 5\n      compute:")
    sets = (intrinsic_set(tmp_path, fma8, "narrow"), intrinsic_set(tmp_path, FMA16, "wide"))
    form = gemm_form("C[m, n] += A[m, k] * B[k, n]", F32, "A")
    assert choose(form, sets, AVX512, (64, 64, 64)).match.name == "narrow.fma8"


def test_wide_values_take_several_registers(tmp_path):
    fma32 = FMA16.replace("16", "32")
    mt = match_intrinsic("s", intrinsic_set(tmp_path, fma32).intrinsics[0], F32)
    tile = register_tile(mt, AVX512, 100)
    assert (tile.mr, tile.nv) == (6, 2)  # 6*2*2 + 2*2 + 2 = 30 of 31 registers


SDOT = """\
    sdot:
      compute: C[i] += A[i, k] * B[i, k]
      tile: {i: 4, k: 4}
      dtypes: {A: int8, B: int8, C: int32}
      emit:
        llvm: llvm.aarch64.neon.sdot.v4i32.v16i8
        returns: <4 x i32>
        operands:
          - {tensor: C, type: <4 x i32>}
          - {tensor: A, type: <16 x i8>}
          - {tensor: B, type: <16 x i8>}
"""


def test_lanewise_dot_matches_with_a_replicated(tmp_path):
    (intr,) = intrinsic_set(tmp_path, SDOT).intrinsics
    mt = match_intrinsic("s", intr, {"A": "uint8", "B": "int8", "C": "int32"})
    assert mt.tile == {"m": 1, "n": 4, "k": 4} and mt.flips == ("A",)
    assert mt.operand("A").layout == "broadcast" and mt.b_order == ("n", "k")
    # A k-major cannot be fed replicated, but B can: the inputs swap roles
    k_major = SDOT.replace("A[i, k] * B", "A[k, i] * B")
    (intr,) = intrinsic_set(tmp_path, k_major).intrinsics
    mt = match_intrinsic("s", intr, {"A": "int8", "B": "int8", "C": "int32"})
    assert dict(mt.tensors) == {"A": "B", "B": "A", "C": "C"} and mt.b_order == ("k", "n")
    both = k_major.replace("B[i, k]", "B[k, i]")
    (intr,) = intrinsic_set(tmp_path, both).intrinsics
    with pytest.raises(Rejected, match="not n-major"):
        match_intrinsic("s", intr, {"A": "int8", "B": "int8", "C": "int32"})


def test_scalable_vectors_are_rejected_with_a_reason(tmp_path):
    body = FMA16.replace("<16 x float>", "<vscale x 4 x float>")
    (intr,) = intrinsic_set(tmp_path, body).intrinsics
    with pytest.raises(Rejected, match="scalable vectors"):
        match_intrinsic("s", intr, F32)


MADD = """\
    madd:
      compute: C[i] += A[k] * B[i, k]
      tile: {i: 8, k: 2}
      dtypes: {A: int16, B: int16, C: int32}
      emit:
        llvm: llvm.x86.avx2.pmadd.wd
        returns: <8 x i32>
        accumulate: add
        operands:
          - {tensor: A, type: <16 x i16>, layout: broadcast}
          - {tensor: B, type: <16 x i16>}
"""


@pytest.mark.parametrize(("a", "b"), [("uint8", "int8"), ("int8", "uint8"), ("int16", "int8")])
def test_narrower_integers_are_widened_not_flipped(tmp_path, a, b):
    (intr,) = intrinsic_set(tmp_path, MADD).intrinsics
    mt = match_intrinsic("s", intr, {"A": a, "B": b, "C": "int32"})
    assert mt.flips == () and mt.widens == tuple(r for r, d in (("A", a), ("B", b))
                                                  if d != "int16")
    assert mt.adds and mt.tile == {"m": 1, "n": 8, "k": 2} and mt.b_order == ("n", "k")


@pytest.mark.parametrize(("dtypes", "reason"), [
    ({"A": "uint16", "B": "int8", "C": "int32"}, "dtype: op is uint16 x int8"),  # > int16
    ({"A": "int8", "B": "int8", "C": "int16"}, "dtype"),  # C is never widened
    (F32, "dtype: op is float32"),
])
def test_widening_only_where_every_value_fits(tmp_path, dtypes, reason):
    (intr,) = intrinsic_set(tmp_path, MADD).intrinsics
    with pytest.raises(Rejected, match=reason):
        match_intrinsic("s", intr, dtypes)


def test_an_instruction_that_does_not_accumulate_must_say_so(tmp_path):
    (intr,) = intrinsic_set(tmp_path, MADD.replace("        accumulate: add\n", "")).intrinsics
    with pytest.raises(Rejected, match="no accumulator operand .* needs accumulate: add"):
        match_intrinsic("s", intr, {"A": "uint8", "B": "int8", "C": "int32"})


def test_adding_step_keeps_the_spare_register_for_its_products(tmp_path):
    """AVX2: 6x2 accumulators + 2 B + 1 A + the products = all 16 registers."""
    mt = match_intrinsic("s", intrinsic_set(tmp_path, MADD).intrinsics[0],
                         {"A": "uint8", "B": "int8", "C": "int32"})
    tile = register_tile(mt, AVX2, 100)
    assert (tile.mr, tile.nv) == (6, 2)
