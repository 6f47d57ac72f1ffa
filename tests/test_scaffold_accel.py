"""Acceptance of the accelerator kit: `tinyc new-backend npu --kind accelerator`
writes an NPU plugin of at most 60 lines of Python beside its YAML; installed
into a fresh venv (as test_scaffold_venv.py does), its own tests pass: the
conformance kit against `x86,npu`, whose int8 checks place a QDQ convolution
and matrix product on the NPU and find the split run equal to the CPU's, bit
for bit. The default run takes the int8 checks and a few others; the whole kit
runs with `pytest -m accel_full`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tokenize
from pathlib import Path

import pytest
from tests_support import build_flags, run_checked

from tinyc.cli import main
from tinyc.plugin import engine_of, resolve_spec_by_name
from tinyc.scaffold import ACCELERATOR_FILES, scaffold_backend
from tinyc.target import load_registry

MAX_PYTHON_LINES = 60  # issue 14: an NPU is YAML plus this much Python, at most


def python_lines(path: Path) -> int:
    """Lines holding code: not blank, not only a comment (docstrings count)."""
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines)


def test_line_counter_skips_blanks_and_comments(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""doc\nstring"""\n\n# note\nx = 1  # set\n\ndef f():\n    return (x +\n'
                 '            2)\n')
    assert python_lines(f) == 6


def test_cli_writes_an_accelerator_package(tmp_path, capsys):
    assert main(["new-backend", "npu", "--kind", "accelerator", "-o", str(tmp_path)]) == 0
    root = tmp_path / "tinyc-backend-npu"
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == sorted(d.format(package="tinyc_backend_npu", name="npu")
                             for d in ACCELERATOR_FILES.values())
    package = root / "tinyc_backend_npu"
    counted = sum(python_lines(p) for p in package.rglob("*.py"))
    print(f"tinyc_backend_npu: {counted} lines of Python")
    assert 0 < counted <= MAX_PYTHON_LINES


def test_an_unknown_kind_is_refused(tmp_path):
    from tinyc.errors import TinycError

    with pytest.raises(TinycError, match="expected one of cpu, accelerator"):
        scaffold_backend("npu", tmp_path, kind="gpu")


def test_generated_accelerator_registers_an_8x8_array(tmp_path, monkeypatch):
    root = scaffold_backend("npu", tmp_path, kind="accelerator")
    monkeypatch.syspath_prepend(str(root))
    import importlib

    module = importlib.import_module("tinyc_backend_npu")
    reg = load_registry(extra=[("npu", module)], entry_points=False)
    assert reg.plugins["npu"].error is None and not reg.problems
    assert reg.backends["npu"].value.kind == "accelerator"
    assert reg.runtime_devices["npu-simulator"].value.backends == ("npu",)
    spec = resolve_spec_by_name("npu", reg)
    engine = engine_of(spec, reg)
    assert (engine.rows, engine.cols) == (8, 8) and engine.gemm_intrinsic == \
        "npu_gemm.gemm_8x8x8_i8i8i32"
    assert engine.acc_bytes < engine_of(resolve_spec_by_name("accel_sim")).acc_bytes


def test_generated_python_is_lint_clean(tmp_path):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff)")
    root = scaffold_backend("npu", tmp_path, kind="accelerator")
    r = subprocess.run([ruff, "check", "--no-cache", "--select", "E,F,W,I,B,UP",
                        "--line-length", "100", str(root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.fixture(scope="module")
def npu_venv(tinyc_venv, tmp_path_factory) -> tuple[Path, Path]:
    """The test venv (tinyc and its x86 backend) with the scaffolded npu, built and
    installed (not editable)."""
    root = scaffold_backend("npu", tmp_path_factory.mktemp("npu"), kind="accelerator")
    run_checked(tinyc_venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
                *build_flags(), root)
    return tinyc_venv, root


def _npu_tests(npu_venv, *args: str) -> str:
    venv, root = npu_venv
    out = run_checked(venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      "-p", "no:xdist", *args, cwd=root).stdout
    assert "tinyc conformance: x86,npu" in out and "failed" not in out, out[-3000:]
    return out


def _row(out: str, op: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [op])


def test_scaffolded_npu_passes_its_int8_checks(npu_venv):
    out = _npu_tests(npu_venv, "-k", "int8 or plugin")
    assert _row(out, "QLinearConv")[1:3] == ["pass", "2/2"], out[-2000:]
    assert _row(out, "QLinearMatMul")[1:3] == ["pass", "2/2"], out[-2000:]
    assert "skipped" not in out, out[-2000:]


@pytest.mark.accel_full
def test_scaffolded_npu_passes_the_whole_conformance_kit(npu_venv):
    out = _npu_tests(npu_venv)
    assert " passed" in out and "skipped" not in out, out[-2000:]
