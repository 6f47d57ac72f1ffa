"""The Arm and RISC-V int8 intrinsics as shipped (plugin YAML), matched as tiles of
the GEMM core: a tile of two rows (i8mm's smmla), reductions into a scalar
(Helium's vmladav, the DSP's smlad on widened int16 pairs), scalable vectors
(RVV's vwmacc.vx at the spec's VLEN); and the register tiles chosen for them."""

from __future__ import annotations

import textwrap
from importlib import resources

import pytest

from tinyc.target.intrinsics import read_intrinsic_file
from tinyc.target.machine import CpuTarget
from tinyc.tensorize.match import Rejected, match_intrinsic
from tinyc.tensorize.select import register_tile, vscale_of

U8I8 = {"A": "uint8", "B": "int8", "C": "int32"}
NEON = CpuTarget("aarch64-unknown-linux-gnu", "generic", "+neon,+dotprod,+i8mm", 128)
M4 = CpuTarget("thumbv7em-none-eabi", "cortex-m4", "+dsp", 32)
M55 = CpuTarget("thumbv8.1m.main-none-eabi", "cortex-m55", "+mve,+mve.fp", 128)
RVV = CpuTarget("riscv64-unknown-linux-gnu", "generic-rv64", "+m,+a,+f,+d,+c,+v", 128)


def shipped(plugin: str, set_name: str, name: str):
    path = resources.files(plugin).joinpath(f"intrinsics/{set_name}.yaml")
    iset = read_intrinsic_file(str(path))
    return next(i for i in iset.intrinsics if i.name == name)


def test_smmla_is_a_two_row_tile():
    intr = shipped("tinyc_backend_arm", "neon_i8mm", "smmla_2x2x8_i8i8i32")
    mt = match_intrinsic("neon_i8mm", intr, U8I8)
    assert mt.tile == {"m": 2, "n": 2, "k": 8} and mt.b_order == ("n", "k")
    assert mt.flips == ("A",) and mt.operand("A").layout == "contiguous"
    tile = register_tile(mt, NEON, 100)
    assert tile.mr % 2 == 0 and tile.mr // 2 * tile.nv + tile.nv + 1 <= 31
    assert register_tile(mt, NEON, 3).mr == 4  # 3 rows: two steps of two


def test_a_multi_row_tile_must_be_row_major(tmp_path):
    path = tmp_path / "s.yaml"
    text = resources.files("tinyc_backend_arm").joinpath("intrinsics/neon_i8mm.yaml").read_text()
    path.write_text(text.replace("A[i, k] * B[j, k]", "A[k, i] * B[j, k]"))
    (intr,) = read_intrinsic_file(str(path)).intrinsics
    with pytest.raises(Rejected, match="not row-major in m, k"):
        match_intrinsic("s", intr, U8I8)


def test_vmladav_reduces_into_a_scalar():
    intr = shipped("tinyc_backend_arm", "mve_int8", "vmlava_16_i8i8i32")
    mt = match_intrinsic("mve_int8", intr, U8I8)
    assert mt.tile == {"m": 1, "n": 1, "k": 16} and mt.returns.lanes == 1
    tile = register_tile(mt, M55, 100)  # scalar accumulators: general registers
    assert tile.mr * tile.nv <= 8 and tile.nv + 1 <= 7


def test_smlad_widens_both_operands():
    intr = shipped("tinyc_backend_arm", "dsp_int16", "smlad_2_i16i16i32")
    mt = match_intrinsic("dsp_int16", intr, U8I8)
    assert mt.tile == {"m": 1, "n": 1, "k": 2} and mt.widens == ("A", "B")
    tile = register_tile(mt, M4, 100)  # everything in 8 spare general registers
    assert tile.mr * tile.nv + tile.nv + 1 <= 8


def test_rvv_tile_is_the_spec_vector_length():
    intr = shipped("tinyc_backend_riscv", "rvv_int8", "vwmacc_vx_16_i16i16i32")
    assert vscale_of(RVV) == 2
    mt = match_intrinsic("rvv_int8", intr, U8I8, vscale_of(RVV))
    assert mt.tile == {"m": 1, "n": 16, "k": 1} and mt.returns.bits == 512
    assert register_tile(mt, RVV, 100).mr * 4 <= 31  # LMUL 4: four registers each
    with pytest.raises(Rejected, match="no scalable vectors"):
        match_intrinsic("rvv_int8", intr, U8I8, 0)
    with pytest.raises(Rejected, match="does not hold its 16-element tile"):
        match_intrinsic("rvv_int8", intr, U8I8, 4)  # VLEN 256: 32 lanes, declared 16


def test_scalar_tile_yaml_needs_no_python(tmp_path):
    """A made-up reduction intrinsic, declared in YAML alone, matches as a scalar tile."""
    path = tmp_path / "red.yaml"
    path.write_text(textwrap.dedent("""\
        set: red
        intrinsics:
          dot8:
            compute: Acc[0] += X[r] * W[r]
            tile: {r: 8}
            dtypes: {X: int8, W: int8, Acc: int32}
            emit:
              llvm: llvm.made.up.dot
              returns: i32
              operands:
                - {tensor: Acc, type: i32}
                - {tensor: X, type: <8 x i8>}
                - {tensor: W, type: <8 x i8>}
        """))
    (intr,) = read_intrinsic_file(str(path)).intrinsics
    mt = match_intrinsic("red", intr, {"A": "int8", "B": "int8", "C": "int32"})
    assert mt.tile == {"m": 1, "n": 1, "k": 8} and mt.flips == ()
