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
    _write(tmp_path, VNNI.replace("+avx512vnni", "+avx2"), "mine.yaml")
    spec = _write(tmp_path, "name: b\nextends: x86-avx2\nintrinsics: [avx2_fma, mine.yaml]\n",
                  "b.yaml")
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
