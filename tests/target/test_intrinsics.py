"""Intrinsic set files: schema, notation and consistency checks with file:line."""

from __future__ import annotations

import textwrap

import pytest

from tinyc.errors import SpecError
from tinyc.target import read_intrinsic_file, resolve_device, resolve_spec_by_name

VNNI = """\
set: my_vnni
requires: [+avx512vnni]
intrinsics:
  dot:
    compute: C[i] += A[k] * B[i, k]
    tile: {i: 16, k: 4}
    dtypes: {A: uint8, B: int8, C: int32}
    emit:
      llvm: llvm.x86.avx512.vpdpbusd.512
      returns: <16 x i32>
      operands:
        - {tensor: C, type: <16 x i32>}
        - {tensor: A, type: <64 x i8>, layout: broadcast}
        - {tensor: B, type: <64 x i8>}
"""


def _write(tmp_path, text: str, name: str = "set.yaml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def _error(tmp_path, old: str, new: str) -> str:
    assert old in VNNI
    path = _write(tmp_path, VNNI.replace(old, new))
    with pytest.raises(SpecError) as e:
        read_intrinsic_file(path)
    return str(e.value).replace(path, "set.yaml")


def test_reads_a_vnni_dot(tmp_path):
    iset = read_intrinsic_file(_write(tmp_path, VNNI))
    (dot,) = iset.intrinsics
    assert iset.requires == ("+avx512vnni",)
    assert dot.compute.reduction_indices == {"k"}
    assert [o.layout for o in dot.emit.operands] == ["contiguous", "broadcast", "contiguous"]


def test_accumulate_add_takes_no_accumulator_operand(tmp_path):
    assert _error(tmp_path, "      returns: <16 x i32>\n",
                  "      returns: <16 x i32>\n      accumulate: add\n") == (
        "set.yaml:13: field 'intrinsics.dot.emit.operands[0]' is the output C, but "
        "accumulate: add adds the result to it; expected only inputs")
    assert "operand (the instruction accumulates" in _error(
        tmp_path, "      returns: <16 x i32>\n",
        "      returns: <16 x i32>\n      accumulate: sum\n")


def test_unknown_dtype(tmp_path):
    msg = _error(tmp_path, "A: uint8", "A: unit8")
    assert msg.startswith("set.yaml:7: field 'intrinsics.dot.dtypes.A' is text 'unit8'; "
                          "expected a dtype name: ")
    assert msg.endswith("(did you mean 'uint8'?)")


def test_index_missing_from_the_tile(tmp_path):
    assert _error(tmp_path, "{i: 16, k: 4}", "{i: 16}") == (
        "set.yaml:6: field 'intrinsics.dot.tile' lacks index k used in "
        "'C[i] += A[k] * B[i, k]'; expected an extent for every index")


def test_unused_tile_index(tmp_path):
    assert "declares index j, which 'C[i] += A[k] * B[i, k]' does not use" in \
        _error(tmp_path, "{i: 16, k: 4}", "{i: 16, k: 4, j: 2}")


def test_tensor_without_dtype(tmp_path):
    assert _error(tmp_path, ", C: int32}", "}").startswith(
        "set.yaml:7: field 'intrinsics.dot.dtypes' lacks tensor C")


def test_bad_notation(tmp_path):
    assert _error(tmp_path, "B[i, k]", "B[i, k") == (
        "set.yaml:5: field 'intrinsics.dot.compute': expected ']' at column 22, got the end; "
        "expected index notation like C[i] += A[k] * B[i, k]")


def test_operand_of_an_unknown_tensor(tmp_path):
    assert _error(tmp_path, "{tensor: B, type", "{tensor: D, type").startswith(
        "set.yaml:14: field 'intrinsics.dot.emit.operands[2].tensor' is 'D'; expected one of")


def test_llvm_operands_need_types(tmp_path):
    assert _error(tmp_path, "{tensor: B, type: <64 x i8>}", "{tensor: B}").startswith(
        "set.yaml:14: field 'intrinsics.dot.emit.operands[2]' has no type")


def test_exactly_one_way_to_emit(tmp_path):
    msg = _error(tmp_path, "      returns:", "      opcode: DOT\n      returns:")
    assert msg.startswith("set.yaml:8: field 'intrinsics.dot.emit' is a mapping")
    assert "exactly one of llvm" in msg


def test_bad_llvm_type(tmp_path):
    assert "field 'intrinsics.dot.emit.returns' is text '<16 x int32>'; expected an LLVM " \
        "value type" in _error(tmp_path, "returns: <16 x i32>", "returns: <16 x int32>")


def test_user_spec_can_name_an_intrinsic_file_beside_it(tmp_path):
    _write(tmp_path, VNNI, "mine.yaml")
    spec = _write(tmp_path, "name: b\nextends: x86-avx512-vnni\n"
                  "intrinsics: [avx2_fma, mine.yaml]\n", "b.yaml")
    assert [s.name for s in resolve_device(spec).intrinsics] == ["avx2_fma", "my_vnni"]


def test_unknown_set_name_in_a_spec(tmp_path):
    spec = _write(tmp_path, "name: b\nextends: x86-avx2\nintrinsics: [avx2_fma, avx9]\n",
                  "b.yaml")
    with pytest.raises(SpecError, match=r"b.yaml:3: field 'intrinsics': intrinsic set 'avx9' "
                                        r"is not provided by any installed plugin"):
        resolve_device(spec)


def test_set_needing_features_the_spec_lacks(tmp_path):
    spec = _write(tmp_path, "name: b\nextends: x86-avx2\nintrinsics: [avx512_vnni]\n", "b.yaml")
    assert resolve_spec_by_name(spec).intrinsics == ("avx512_vnni",)
    with pytest.raises(SpecError, match="b.yaml:3: field 'intrinsics': intrinsic set "
                                        "'avx512_vnni' needs \\+avx512f"):
        resolve_device(spec)


# Operand types against dtypes and tile (issue 15): a wrong one is an error naming the
# field when the file is read, not LLVM's verifier failing in the middle of a compile.

@pytest.mark.parametrize(("old", "new", "message"), [
    ("{tensor: B, type: <64 x i8>}", "{tensor: B, type: <64 x half>}",
     "set.yaml:14: field 'intrinsics.dot.emit.operands[2].type' is <64 x half> for tensor B, "
     "but its elements are half; int8 values are i8 (or packed into a wider integer)"),
    ("{tensor: B, type: <64 x i8>}", "{tensor: B, type: <32 x i8>}",
     "set.yaml:14: field 'intrinsics.dot.emit.operands[2].type' is <32 x i8> for tensor B, "
     "but it holds 32 int8 values; the tile has 64, as <64 x i8> holds"),
    ("{tensor: A, type: <64 x i8>, layout: broadcast}",
     "{tensor: A, type: <62 x i8>, layout: broadcast}",
     "set.yaml:13: field 'intrinsics.dot.emit.operands[1].type' is <62 x i8> for tensor A, "
     "but it holds 62 uint8 values, not a whole number of tiles of 4; expected a vector of "
     "a multiple of 4 values"),
    ("returns: <16 x i32>", "returns: <8 x i32>",
     "set.yaml:10: field 'intrinsics.dot.emit.returns' is <8 x i32> for tensor C, but it "
     "holds 8 int32 values; the tile has 16, as <16 x i32> holds"),
    ("{tensor: C, type: <16 x i32>}", "{tensor: C, type: <16 x float>}",
     "set.yaml:12: field 'intrinsics.dot.emit.operands[0].type' is <16 x float> for tensor C, "
     "but its elements are float; int32 values are i32 (or packed into a wider integer)"),
    ("        - {tensor: C, type: <16 x i32>}\n",
     "        - {tensor: C, type: <16 x i32>}\n        - {const: 3, type: <2 x i32>}\n",
     "set.yaml:13: field 'intrinsics.dot.emit.operands[1].type' is <2 x i32> for the "
     "immediate, but an immediate is an integer; expected a scalar integer type such as i32"),
])
def test_operand_types_must_hold_the_tile_in_its_dtype(tmp_path, old, new, message):
    assert _error(tmp_path, old, new) == message


def test_float_operands_need_their_float_element(tmp_path):
    fma = textwrap.dedent("""\
        set: f
        intrinsics:
          fma:
            compute: C[i, j] += A[i, k] * B[k, j]
            tile: {i: 1, j: 8, k: 1}
            dtypes: {A: float32, B: float32, C: float32}
            emit:
              llvm: llvm.fma.v8f32
              returns: <8 x float>
              operands:
                - {tensor: A, type: <8 x float>, layout: broadcast}
                - {tensor: B, type: <8 x i32>}
                - {tensor: C, type: <8 x float>}
        """)
    with pytest.raises(SpecError, match=r"set.yaml:12: field 'intrinsics.fma.emit.operands\[1\]"
                                        r".type' is <8 x i32> for tensor B, but its elements "
                                        r"are i32; float32 values are float"):
        read_intrinsic_file(_write(tmp_path, fma))


def test_packed_and_scalable_types_that_hold_the_tile_are_read(tmp_path):
    """The 64 bytes of A as <16 x i32> (LLVM's older vpdpbusd signature); a scalable
    vector's length is the machine's, so only its element type is checked."""
    packed = VNNI.replace("{tensor: A, type: <64 x i8>", "{tensor: A, type: <16 x i32>")
    (dot,) = read_intrinsic_file(_write(tmp_path, packed)).intrinsics
    assert dot.emit.operands[1].type == "<16 x i32>"
    scalable = VNNI.replace("<64 x i8>", "<vscale x 8 x i8>").replace("<16 x i32>",
                                                                       "<vscale x 2 x i32>")
    assert read_intrinsic_file(_write(tmp_path, scalable, "s.yaml")).intrinsics
    with pytest.raises(SpecError, match="its elements are float; int8 values are i8"):
        read_intrinsic_file(_write(tmp_path, scalable.replace("<vscale x 8 x i8>}",
                                                              "<vscale x 8 x float>}"), "t.yaml"))
