"""`tinyc new-backend NAME`: what it writes, checked without installing anything."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.scaffold import FILES, scaffold_backend
from tinyc.target import load_registry, resolve_spec_by_name


def test_writes_a_plugin_project(tmp_path):
    root = scaffold_backend("foo", tmp_path)
    assert root.name == "tinyc-backend-foo"
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == sorted(d.format(package="tinyc_backend_foo", name="foo")
                             for d in FILES.values())
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.tinyc]\nfoo = "tinyc_backend_foo"' in pyproject
    assert "extends: x86" in (root / "tinyc_backend_foo" / "foo.yaml").read_text()


def test_generated_plugin_registers_backend_spec_and_intrinsics(tmp_path, monkeypatch):
    root = scaffold_backend("bar_npu", tmp_path)
    monkeypatch.syspath_prepend(str(root))
    module = importlib.import_module("tinyc_backend_bar_npu")
    reg = load_registry(extra=[("bar_npu", module)], entry_points=False)
    assert reg.plugins["bar_npu"].error is None and not reg.problems
    assert reg.backends["bar_npu"].value.name == "bar_npu"
    assert [i.name for i in reg.intrinsic_sets["bar_npu_fma"].value.intrinsics] == ["fma_f32_1x4"]
    spec = resolve_spec_by_name("bar_npu", reg)
    assert spec.extends == "x86" and spec.cpu == "host"
    assert reg.backends["bar_npu"].value.not_buildable_reason(spec) is None


def test_generated_python_is_lint_clean(tmp_path):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff)")
    root = scaffold_backend("foo", tmp_path)
    r = subprocess.run([ruff, "check", "--no-cache", "--select", "E,F,W,I,B,UP",
                        "--line-length", "100", str(root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("name", ["Foo", "9lives", "my-chip", ""])
def test_names_must_be_python_identifiers(tmp_path, name):
    with pytest.raises(TinycError, match="expected lower-case letters"):
        scaffold_backend(name, tmp_path)


def test_refuses_to_overwrite(tmp_path):
    scaffold_backend("foo", tmp_path)
    with pytest.raises(TinycError, match="already exists"):
        scaffold_backend("foo", tmp_path)


def test_command_prints_next_steps(tmp_path, capsys):
    assert main(["new-backend", "foo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'tinyc-backend-foo'}" in out and "pip install -e" in out
    assert main(["new-backend", "foo", "-o", str(tmp_path)]) == 1


def test_python_module_entry(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tinyc.cli", "new-backend", "Bad"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("tinyc: error: backend name 'Bad'")
