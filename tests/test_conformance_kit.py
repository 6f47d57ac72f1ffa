"""The conformance kit as a pytest plugin: `pytest --tinyc-target NAME`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tinyc.testing.conformance.plugin import _summary_line


def _pytest(folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=folder, capture_output=True, text=True, timeout=300)


def test_runs_the_checks_and_reports_per_op(tmp_path):
    r = _pytest(tmp_path, "--tinyc-target", "x86", "-k", "Relu or Conv-3x3 or spec or mlp")
    assert r.returncode == 0, r.stdout[-3000:]
    assert "tinyc conformance: x86" in r.stdout
    lines = r.stdout.splitlines()
    assert any(line.split()[:3] == ["Conv", "pass", "2/2"] for line in lines)
    assert any(line.split()[:3] == ["Relu", "pass", "1/1"] for line in lines)
    assert any(line.split()[:4] == ["model", "mlp", "pass", "1/1"] for line in lines)
    assert "6 passed" in r.stdout  # 4 ops and models, plus test_spec_resolves and -k "spec"


def test_a_target_not_buildable_here_is_skipped_with_its_reason(tmp_path):
    # a 32-bit Arm Linux board: a valid spec, but the arm backend builds aarch64 and Cortex-M
    (tmp_path / "armv7.yaml").write_text(
        "name: armv7-board\nextends: aarch64\ntriple: armv7-unknown-linux-gnueabihf\n"
        "cpu: cortex-a7\nintrinsics: [neon_f32]\n")
    r = _pytest(tmp_path, "--tinyc-target", str(tmp_path / "armv7.yaml"), "-k",
                "Sigmoid or spec or intrinsics", "-rs")
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Sigmoid                  skip" in r.stdout
    assert "backend arm builds aarch64" in r.stdout and "not armv7" in r.stdout
    assert "2 passed, 1 skipped" in r.stdout  # the spec and its intrinsics still check


def test_inert_without_the_option(tmp_path):
    r = _pytest(tmp_path)
    assert r.returncode == 5 and "no tests ran" in r.stdout  # pytest's "nothing collected"
    assert "tinyc conformance" not in r.stdout


def test_summary_line_names_the_failing_cases():
    line = _summary_line("Conv", [("Conv-3x3", "passed"), ("Conv-depthwise", "failed")])
    assert line.split()[:3] == ["Conv", "FAIL", "1/2"] and "(Conv-depthwise failed)" in line


def test_int8_checks_place_the_layer_and_keep_a_slower_device_worth_checking():
    from tinyc.testing.conformance.accel_checks import accelerated_partition
    from tinyc.testing.conformance.int8_cases import INT8_CASES, LAYER

    conv, matmul = INT8_CASES
    assert accelerated_partition(conv, "x86,accel_sim").avoid == {}
    # the 8x8 array at 400 MHz loses to the host on cost: checked with the host avoided
    assert accelerated_partition(matmul, "x86,accel_sim_small").avoid == {"x86": [LAYER]}


def test_int8_checks_fail_with_the_reason_a_device_refuses(tmp_path):
    from tinyc.testing.conformance.accel_checks import accelerated_partition
    from tinyc.testing.conformance.int8_cases import INT8_CASES

    spec = tmp_path / "narrow.yaml"
    spec.write_text("name: narrow\nextends: accel_sim\naccelerator:\n  kind: gemm\n"
                    "  limits: {max_channels: 8}\n")
    with pytest.raises(AssertionError, match="exceed the engine's limit of 8"):
        accelerated_partition(INT8_CASES[0], f"x86,{spec}")


def test_int8_checks_skip_a_target_without_an_accelerator():
    from tinyc.testing.conformance.accel_checks import accelerated_partition
    from tinyc.testing.conformance.int8_cases import INT8_CASES

    with pytest.raises(pytest.skip.Exception, match="'x86' has no accelerator"):
        accelerated_partition(INT8_CASES[0], "x86")
