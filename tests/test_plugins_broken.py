"""Acceptance: a plugin that raises on import breaks neither `tinyc targets` nor
compiling for other targets. The plugin is a real installed distribution (a
.dist-info folder with an entry point) found through PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import small_model


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    info = site / "tinyc_backend_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyc-backend-broken\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[tinyc]\nbroken = tinyc_backend_broken\n")
    (site / "tinyc_backend_broken.py").write_text(
        'raise ImportError("the vendor SDK is not installed")\n')
    return site


def _tinyc(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.run([sys.executable, "-m", "tinyc.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_targets_names_the_broken_plugin_and_lists_the_rest(broken_site):
    r = _tinyc(broken_site, "targets")
    assert r.returncode == 0, r.stderr
    assert "broken       tinyc-backend-broken 0.1" in r.stdout
    assert "FAILED: ImportError: the vendor SDK is not installed" in r.stdout
    x86 = next(line for line in r.stdout.splitlines() if line.startswith("x86 "))
    assert " ok (" in x86
    assert "Traceback" not in r.stdout + r.stderr


def test_compiling_for_another_target_still_works(broken_site, tmp_path):
    model = small_model(tmp_path / "m.onnx")
    r = _tinyc(broken_site, "compile", model, "--target", "x86-avx2", "-o", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a" / "model.so").exists()


def test_a_target_of_the_broken_plugin_says_why(broken_site, tmp_path):
    spec = tmp_path / "vendor.yaml"
    spec.write_text("name: vendor\nextends: x86\nbackend: broken\n")
    r = _tinyc(broken_site, "compile", small_model(tmp_path / "m.onnx"), "--target", str(spec),
               "-o", str(tmp_path / "a"))
    assert r.returncode == 1
    assert r.stderr.startswith("tinyc: error: target 'vendor' needs backend 'broken'")
    assert "plugin 'broken' failed to load: ImportError: the vendor SDK" in r.stderr
