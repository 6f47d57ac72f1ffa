"""Portable artifacts: model.json records the CPU the code was built for, and the
loader refuses a CPU that lacks a feature with an ArtifactError naming it (never
SIGILL). The acceptance check runs the load under `qemu-x86_64 -cpu Haswell`."""

from __future__ import annotations

import json
import platform
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tests_support import rewrite_meta, small_model

import tinyc
from tinyc.runtime import cpu_check

ON_X86 = platform.machine() == "x86_64"
HOST_FEATURES = cpu_check.x86_features() if ON_X86 else frozenset()


def test_required_features_add_the_cpus_implied_isa_and_drop_system_features():
    meta = {"triple": "x86_64-unknown-linux-gnu", "cpu": "haswell",
            "features": "+avx512f,-avx512bw,+xsave,+rdrnd"}
    need = cpu_check.required_features(meta)
    assert "avx512f" in need and "avx512bw" not in need  # "-" features are not required
    assert {"avx2", "fma", "movbe", "lzcnt"} <= set(need)  # what cpu haswell implies
    assert "xsave" not in need and "rdrnd" not in need  # never emitted by codegen


def test_cpuid_decoding_needs_os_support_for_avx512():
    """A CPU with AVX-512 whose OS does not save ZMM registers (XCR0) cannot run it."""
    leaves = {(0, 0): (0xD, 0, 0, 0), (0x80000000, 0): (0x80000008, 0, 0, 0),
              (1, 0): (0, 0, 1 << 27 | 1 << 28 | 1 << 12, 1 << 26),  # osxsave, avx, fma; sse2
              (7, 0): (0, 1 << 16 | 1 << 5, 0, 0)}  # avx512f, avx2

    def cpuid(leaf, sub):
        return leaves.get((leaf, sub), (0, 0, 0, 0))

    only_ymm = cpu_check.x86_features_from_cpuid(cpuid, lambda xcr: 0x7)
    assert {"avx", "avx2", "fma", "sse2"} <= only_ymm and "avx512f" not in only_ymm
    assert "avx512f" in cpu_check.x86_features_from_cpuid(cpuid, lambda xcr: 0xE7)
    assert "avx" not in cpu_check.x86_features_from_cpuid(cpuid, lambda xcr: 0x3)


def test_hwcaps_decoding_for_aarch64():
    have = cpu_check.aarch64_features_from_hwcaps({16: 1 << 1 | 1 << 20, 26: 1 << 13})
    assert have == {"neon", "dotprod", "i8mm"}


@pytest.mark.skipif(not ON_X86, reason="cpuid is an x86 instruction")
def test_cpuid_agrees_with_the_kernel_here():
    """The cpuid machine code reads what Linux reports in /proc/cpuinfo (natively;
    the kernel may hide a few system features it does not enable, e.g. shstk)."""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        kernel = cpu_check.x86_features_from_cpuinfo(f.read())
    assert {"sse2", "cx16", "64bit"} <= HOST_FEATURES
    relevant = set(cpu_check._X86_CPUID) - cpu_check._NEVER_EMITTED["x86_64"]
    assert HOST_FEATURES & relevant == kernel & relevant


def test_artifact_records_triple_cpu_and_features(tmp_path):
    d = tinyc.compile(small_model(tmp_path / "m.onnx"), target="x86-avx2").save(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    assert meta["triple"].startswith("x86_64") and meta["cpu"] == "haswell"
    assert "+avx2" in meta["features"].split(",")
    assert tinyc.runtime.load(d).get_inputs()[0].name == "x"


@pytest.mark.skipif(not ON_X86, reason="the artifact is built for the x86 host")
def test_loading_for_a_missing_feature_names_it(tmp_path):
    lacking = sorted(set(cpu_check._X86_CPUID) - HOST_FEATURES
                     - cpu_check._NEVER_EMITTED["x86_64"])
    if not lacking:
        pytest.skip("this CPU has every feature tinyc can check: none to pretend is used")
    d = tinyc.compile(small_model(tmp_path / "m.onnx"), target="x86-avx2").save(tmp_path / "a")
    meta = json.loads((d_json := tmp_path / "a" / "model.json").read_text())
    meta["features"] += f",+{lacking[0]}"
    rewrite_meta(d_json.parent, meta)
    with pytest.raises(tinyc.ArtifactError, match=f"this CPU lacks {lacking[0]}"):
        tinyc.runtime.load(d)


def test_loading_another_architecture_says_so(tmp_path):
    d = tinyc.compile(small_model(tmp_path / "m.onnx"), target="x86").save(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    meta["triple"] = "riscv64-unknown-linux-gnu" if ON_X86 else "x86_64-unknown-linux-gnu"
    rewrite_meta(tmp_path / "a", meta)
    with pytest.raises(tinyc.ArtifactError, match="compiled for .*this machine is"):
        tinyc.runtime.load(d)


_LOAD_AND_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import tinyc.runtime
    try:
        m = tinyc.runtime.load(sys.argv[1])
    except tinyc.ArtifactError as e:
        print("ArtifactError:", e)
        sys.exit(3)
    (y,) = m.run(None, {"x": np.ones((1, 3, 8, 8), np.float32)})
    np.save(sys.argv[2], y)
""")


def _under_haswell(artifact, out):
    """Load (and run) `artifact` in Python under an emulated AVX2-only CPU."""
    return subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", _LOAD_AND_RUN,
                           str(artifact), str(out)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def haswell():
    if not ON_X86:
        pytest.skip("qemu-x86_64 -cpu Haswell emulates x86 user code on an x86 host")
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-x86_64 is not installed (Debian qemu-user; scripts/setup installs it)")


def test_avx512_artifact_on_haswell_is_an_error_not_sigill(tmp_path, haswell):
    model = small_model(tmp_path / "m.onnx")
    avx512 = tinyc.compile(model, target="x86-avx512").save(tmp_path / "avx512")
    r = _under_haswell(avx512, tmp_path / "y.npy")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "ArtifactError:" in r.stdout and "this CPU lacks" in r.stdout
    assert "avx512f" in r.stdout and "target x86-avx512" in r.stdout

    # the check is what saves it: without the recorded features the same code dies
    meta = json.loads((tmp_path / "avx512" / "model.json").read_text())
    del meta["features"], meta["cpu"]
    rewrite_meta(tmp_path / "avx512", meta)
    r = _under_haswell(avx512, tmp_path / "y.npy")
    assert r.returncode == -signal.SIGILL, (r.returncode, r.stdout, r.stderr)


def test_avx2_artifact_runs_on_haswell(tmp_path, haswell):
    """No false refusal: the portable AVX2 target loads and runs on a Haswell."""
    model = small_model(tmp_path / "m.onnx")
    avx2 = tinyc.compile(model, target="x86-avx2").save(tmp_path / "avx2")
    r = _under_haswell(avx2, tmp_path / "y.npy")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    want = tinyc.runtime.load(avx2).run(None, {"x": np.ones((1, 3, 8, 8), np.float32)})[0]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
