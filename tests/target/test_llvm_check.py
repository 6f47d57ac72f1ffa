"""Intrinsic YAML checked against LLVM when a device is resolved (issue 15, item 7):
an `llvm:` name LLVM does not have (it compiled, then failed at load with
"undefined symbol"), types LLVM's verifier refuses (a traceback mid-compile) and
an instruction LLVM cannot select for the target (an abort of the process) are
SpecErrors naming the intrinsic file, line and field. Answers are cached."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc
from tinyc.errors import SpecError
from tinyc.target import llvm_check, read_intrinsic_file, resolve_device
from tinyc.target.machine import CpuTarget

HASWELL = CpuTarget("x86_64-unknown-linux-gnu", "haswell", "+avx,+avx2,+fma", 256)

MADD = """\
    set: my_madd
    requires: [+avx2]
    intrinsics:
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
MADD_AND_SDOT = textwrap.dedent(MADD) + textwrap.indent(textwrap.dedent(SDOT), "  ")


@pytest.fixture(autouse=True)
def fresh_answers(tmp_path, monkeypatch):
    """Each test probes LLVM itself: its own disk cache and no answers in memory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(llvm_check, "_answers", {})


def _board(tmp_path, intrinsic_text: str) -> str:
    (tmp_path / "mine.yaml").write_text(textwrap.dedent(intrinsic_text))
    spec = tmp_path / "board.yaml"
    spec.write_text("name: board\nextends: x86-avx2\nintrinsics: [avx2_fma, mine.yaml]\n")
    return str(spec)


def _refusal(tmp_path, intrinsic_text: str) -> str:
    spec = _board(tmp_path, intrinsic_text)
    with pytest.raises(SpecError) as e:
        resolve_device(spec)
    return str(e.value).replace(str(tmp_path / "mine.yaml"), "mine.yaml")


def test_a_good_user_intrinsic_is_accepted(tmp_path):
    device = resolve_device(_board(tmp_path, MADD))
    assert [s.name for s in device.intrinsics] == ["avx2_fma", "my_madd"]


def test_a_nonexistent_llvm_name_is_refused_at_load(tmp_path):
    msg = _refusal(tmp_path, MADD.replace("llvm.x86.avx2.pmadd.wd", "llvm.x86.avx2.pmadd.nosuch"))
    assert msg == ("mine.yaml:9: field 'intrinsics.madd.emit.llvm': intrinsic 'madd' of set "
                   "'my_madd' cannot be used for x86_64-unknown-linux-gnu (cpu haswell): LLVM "
                   "has no intrinsic named 'llvm.x86.avx2.pmadd.nosuch' (a call to it would be "
                   "an undefined symbol when the artifact loads)")


def test_an_operand_type_llvm_refuses_is_a_spec_error(tmp_path):
    """<8 x i32> holds the 16 int16 values (so the file reads), but pmaddwd takes
    <16 x i16>: LLVM's verifier refuses the call."""
    packed = MADD.replace("<16 x i16>", "<8 x i32>")
    assert read_intrinsic_file(str(_write_set(tmp_path, packed))).intrinsics
    msg = _refusal(tmp_path, packed)
    assert msg.startswith("mine.yaml:9: field 'intrinsics.madd.emit.llvm': intrinsic 'madd'")
    assert msg.endswith("Intrinsic has incorrect argument type!: ptr @llvm.x86.avx2.pmadd.wd")


def test_an_instruction_llvm_cannot_select_is_a_spec_error_not_an_abort(tmp_path):
    """An AArch64 intrinsic on x86: LLVM's instruction selector aborts; the check's
    child process dies instead of this one."""
    msg = _refusal(tmp_path, MADD_AND_SDOT)
    assert msg.startswith("mine.yaml:20: field 'intrinsics.sdot.emit.llvm': intrinsic 'sdot'")
    assert "LLVM aborted: LLVM ERROR: Cannot select: intrinsic %llvm.aarch64.neon.sdot" in msg


def test_one_abort_in_a_batch_blames_only_its_intrinsic(tmp_path):
    iset = read_intrinsic_file(str(_write_set(tmp_path, MADD_AND_SDOT)))
    problems = llvm_check.check_intrinsic_set(iset, HASWELL)
    assert problems["madd"] is None
    assert problems["sdot"].startswith("LLVM aborted: LLVM ERROR: Cannot select")


def test_answers_are_cached_in_memory_and_on_disk(tmp_path, monkeypatch):
    iset = read_intrinsic_file(str(_write_set(tmp_path, MADD.replace("pmadd.wd", "pmadd.nosuch"))))
    first = llvm_check.check_intrinsic_set(iset, HASWELL)
    assert first["madd"].startswith("LLVM has no intrinsic named")
    assert len(list((tmp_path / "xdg" / "tinyc-llvm-intrinsics").glob("*.json"))) == 1

    def no_child(*args, **kwargs):
        raise AssertionError("LLVM was probed again")

    monkeypatch.setattr(llvm_check.subprocess, "run", no_child)
    assert llvm_check.check_intrinsic_set(iset, HASWELL) == first  # from memory
    monkeypatch.setattr(llvm_check, "_answers", {})
    assert llvm_check.check_intrinsic_set(iset, HASWELL) == first  # from disk
    other = CpuTarget("x86_64-unknown-linux-gnu", "znver3", "+avx,+avx2,+fma", 256)
    with pytest.raises(AssertionError, match="probed again"):  # another target: asked anew
        llvm_check.check_intrinsic_set(iset, other)


def test_a_session_on_such_a_target_raises_before_compiling(tmp_path):
    spec = _board(tmp_path, MADD.replace("llvm.x86.avx2.pmadd.wd", "llvm.x86.avx2.pmadd.nosuch"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(tinyc.TinycError, match="has no intrinsic named"):
        tinyc.InferenceSession(model.SerializeToString(), target=spec).run(
            None, {"x": np.zeros((2, 3), np.float32)})


def _write_set(tmp_path, text: str):
    path = tmp_path / "set.yaml"
    path.write_text(textwrap.dedent(text))
    return path
