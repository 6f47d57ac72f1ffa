"""The narrow-cast tests once more under other x86 CPUs, emulated by qemu-x86_64.

A cast whose result depends on the CPU (C++ undefined behaviour in an oracle,
LLVM poison in a kernel) passes on one machine and fails on the next (issue 18:
Zen 4 gave 0 where other CPUs wrapped). Running the same tests on two more CPU
models catches that here. Python, numpy and llvmlite run whole under qemu-user,
and LLVM's host detection reads the emulated CPUID, so tinyc compiles for the
emulated CPU (checked below) and numpy dispatches to its kernels too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QEMU = "qemu-x86_64"
# an AVX2 Intel core, and a newer AMD one (Zen 3); qemu 7.2's TCG emulates no
# AVX-512, so both run AVX2 code paths unlike this suite's usual hosts
CPU_MODELS = {"Haswell": "haswell", "EPYC-Milan": "znver3"}
# The cast / narrow-dtype tests, a subset small enough for emulation (~50 s a CPU).
NARROW_CAST_TESTS = ["tests/lower/test_casts.py", "-k", "narrow or castlike"]
_PROBE = ("import llvmlite.binding as llvm; llvm.initialize_all_targets(); "
          "llvm.initialize_native_target(); f = llvm.get_host_cpu_features(); "
          "print(llvm.get_host_cpu_name(), int(f.get('avxvnni', False)))")


def _require_qemu() -> None:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("qemu-x86_64 user mode runs x86-64 Linux programs: this host is not one")
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (apt-get install qemu-user; scripts/setup does)")


def _emulated(cpu: str, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([QEMU, "-cpu", cpu, sys.executable, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    # qemu warns about every host feature TCG cannot emulate: noise
    return "\n".join(line for line in out.splitlines() if "TCG doesn't support" not in line)


def _probe(cpu: str) -> tuple[str, bool]:
    """(LLVM's host cpu name, AVX-VNNI present) as seen under the emulated cpu."""
    out = _finish(_emulated(cpu, ["-c", _PROBE]), 60).split()
    assert len(out) >= 2, f"the probe did not run under -cpu {cpu}: {out}"
    return out[-2], out[-1] == "1"


def test_narrow_casts_pass_on_two_emulated_cpu_models():
    _require_qemu()
    for cpu, llvm_name in CPU_MODELS.items():
        seen, _ = _probe(cpu)
        assert seen == llvm_name, f"under -cpu {cpu} tinyc would compile for {seen}"
    # both at once: each is one process, and the machine has two cores at least
    runs = {cpu: _emulated(cpu, ["-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                                 *NARROW_CAST_TESTS]) for cpu in CPU_MODELS}
    failures = []
    for cpu, proc in runs.items():
        out = _finish(proc, 300)
        if proc.returncode != 0 or " passed" not in out:
            failures.append(f"-cpu {cpu} (exit {proc.returncode}):\n{out[-3000:]}")
    assert not failures, "\n\n".join(failures)


# What the host's missing AVX-VNNI skips (tests/tensorize, tests/quant).
VNNI_TESTS = ["tests/tensorize/test_int_gemm.py", "tests/tensorize/test_vnni_acceptance.py",
              "-k", "vnni and not avx512"]


def test_avx_vnni_tests_run_under_an_emulated_cpu_that_has_it():
    """The VNNI tests skip on a host without AVX-VNNI (AMD Zen 4 has only the
    AVX-512 form); they run here when qemu can emulate the instructions."""
    _require_qemu()
    cpu = "max,+avx-vnni"
    _, has_vnni = _probe(cpu)
    if not has_vnni:
        pytest.skip("qemu-x86_64's TCG does not emulate AVX-VNNI (qemu 7.2 drops +avx-vnni: "
                    "vpdpbusd raises SIGILL), so the AVX-VNNI tests stay skipped on this host")
    proc = _emulated(cpu, ["-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                           *VNNI_TESTS])
    out = _finish(proc, 600)
    assert proc.returncode == 0 and " passed" in out, out[-3000:]
