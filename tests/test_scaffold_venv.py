"""Acceptance: scaffold tinyc-backend-foo, build and pip-install it into a fresh venv
with tinyc, see `tinyc targets` list it, compile and run a model with --target foo
matching onnxruntime, run the plugin's own tests, uninstall it and see it gone.

The venv sees this interpreter's packages (--system-site-packages) and installs
with --no-deps, so nothing is downloaded; builds skip isolation when setuptools
can build wheels by itself (the setup script installs `wheel` for that).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_support import build_flags as _build_flags
from tests_support import run_checked as _run
from tests_support import small_model

from tinyc.scaffold import scaffold_backend


@pytest.fixture
def venv(tinyc_venv) -> Path:
    return tinyc_venv


def _foo_row(venv: Path) -> str | None:
    out = _run(venv / "bin" / "tinyc", "targets").stdout
    return next((line for line in out.splitlines() if line.split()[:1] == ["foo"]), None)


def test_scaffolded_backend_lifecycle(venv, tmp_path):
    py, tinyc = venv / "bin" / "python", venv / "bin" / "tinyc"
    root = scaffold_backend("foo", tmp_path)
    _run(py, "-m", "pip", "wheel", "-q", "--no-deps", *_build_flags(), "-w", tmp_path / "dist",
         root)
    (wheel,) = (tmp_path / "dist").glob("tinyc_backend_foo-0.1.0-*.whl")
    _run(py, "-m", "pip", "install", "-q", "--no-deps", wheel)

    row = _foo_row(venv)
    assert row is not None and "tinyc-backend-foo 0.1.0" in row and " ok (" in row, row

    model = small_model(tmp_path / "m.onnx")
    _run(tinyc, "compile", model, "--target", "foo", "-o", tmp_path / "art")
    assert (tmp_path / "art" / "model.so").exists()
    checked = _run(tinyc, "run", model, "--target", "foo", "--check").stdout
    assert "against onnxruntime" in checked and "check: PASS" in checked

    tests = _run(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root).stdout
    assert " passed" in tests and "failed" not in tests
    assert "tinyc conformance: foo" in tests

    _run(py, "-m", "pip", "uninstall", "-y", "-q", "tinyc-backend-foo")
    assert _foo_row(venv) is None
    gone = _run(tinyc, "compile", model, "--target", "foo", "-o", tmp_path / "b", ok=False)
    assert gone.returncode == 1 and "unknown target 'foo'" in gone.stderr
