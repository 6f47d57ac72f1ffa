"""Acceptance: spec files with a misspelled key, a wrong type and an unknown dtype
each give one clear message with file:line, exit code 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests_support import small_model

from tinyc.cli import main

CASES = {
    "misspelled key": ("name: b\nextends: x86\nvectr_bits: 256\n",
                       ":3: unknown field 'vectr_bits' (did you mean 'vector_bits'?); expected "
                       "one of: "),
    "wrong type": ("name: b\nextends: x86\nvector_bits: wide\n",
                   ":3: field 'vector_bits' is text 'wide'; expected the widest SIMD register "
                   "in bits"),
    "unknown dtype": ("name: b\nbackend: accel_sim\naccelerator:\n  kind: gemm\n  dtypes:\n"
                      "    input: int8\n    accumulator: int33\n",
                      ":7: field 'accelerator.dtypes.accumulator' is text 'int33'; expected "
                      "a dtype name: "),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_one_message_with_file_and_line(case, tmp_path, capsys):
    text, expected = CASES[case]
    spec = tmp_path / "board.yaml"
    spec.write_text(text)
    model = small_model(tmp_path / "m.onnx")
    assert main(["compile", model, "--target", str(spec), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinyc: error: {spec}{expected}")
    assert err.count("\n") == 1  # one message, one line


def test_no_traceback_from_the_command(tmp_path):
    spec = tmp_path / "board.yaml"
    spec.write_text(CASES["unknown dtype"][0])
    r = subprocess.run([sys.executable, "-m", "tinyc.cli", "run", small_model(tmp_path / "m.onnx"),
                        "--target", str(spec)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith(f"tinyc: error: {spec}:7: ") and "Traceback" not in r.stderr


def test_unknown_dtype_in_an_intrinsic_file_named_by_the_spec(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text(
        "set: mine\nintrinsics:\n  add:\n    compute: C[i] = A[i] + B[i]\n    tile: {i: 4}\n"
        "    dtypes: {A: float32, B: float32, C: flaot32}\n    emit: {opcode: ADD}\n")
    spec = tmp_path / "board.yaml"
    spec.write_text("name: b\nextends: x86\nintrinsics: [mine.yaml]\n")
    assert main(["compile", small_model(tmp_path / "m.onnx"), "--target", str(spec), "-o",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinyc: error: {tmp_path / 'mine.yaml'}:6: field "
                          "'intrinsics.add.dtypes.C' is text 'flaot32'; expected a dtype name")
    assert err.rstrip().endswith("(did you mean 'float32'?)")
