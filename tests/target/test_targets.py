"""Resolving --target: names, paths, comma lists of devices, and the CPU base backend."""

from __future__ import annotations

import pytest

from tinyc.errors import TargetError
from tinyc.target import LlvmCpuBackend, PendingBackend, resolve_devices, resolve_spec_by_name
from tinyc.target.cpu import widest_vector_bits
from tinyc.target.machine import host_features


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(TargetError, match="unknown target 'x87'; known targets: .*x86-avx2"):
        resolve_devices("x87")


def test_a_comma_list_needs_exactly_one_cpu():
    with pytest.raises(TargetError, match="names 2 CPU targets"):
        resolve_devices("x86,x86-avx2")
    with pytest.raises(TargetError, match="empty target name"):
        resolve_devices("x86,")


def test_a_composed_list_resolves_every_part_first():
    assert [d.spec.name for d in resolve_devices("x86, accel_sim").devices] == ["x86",
                                                                              "accel_sim"]
    with pytest.raises(TargetError, match="unknown target 'npu'"):
        resolve_devices("x86,npu")


def test_spec_for_a_backend_nobody_installed(tmp_path):
    p = tmp_path / "board.yaml"
    p.write_text("name: board\nbackend: npu\n")
    with pytest.raises(TargetError, match="needs backend 'npu'.*pip install tinyc-backend-npu"):
        resolve_devices(str(p))


def test_cpu_backend_resolves_host_and_checks_features(tmp_path):
    backend = LlvmCpuBackend()
    host = resolve_spec_by_name("x86")
    target = backend.cpu_target(host)
    assert target.vector_bits == widest_vector_bits(host_features())
    assert backend.not_buildable_reason(host) is None
    p = tmp_path / "future.yaml"
    p.write_text("name: future\nextends: x86-avx2\nfeatures: [+avx2, +avx1024]\n")
    assert backend.not_buildable_reason(resolve_spec_by_name(str(p))) == \
        "this CPU lacks avx1024"


def test_cpu_backend_refuses_another_architecture():
    spec = resolve_spec_by_name("arm64")
    assert "asks for aarch64 code" in LlvmCpuBackend().not_buildable_reason(spec)


def test_pending_backend_still_gives_a_fixed_cpu_target():
    backend = PendingBackend("arm", "cpu", "not yet")
    target = backend.cpu_target(resolve_spec_by_name("arm64-dotprod"))
    assert target.triple == "aarch64-unknown-linux-gnu" and "+i8mm" in target.features
    with pytest.raises(TargetError):
        backend.cpu_target(resolve_spec_by_name("x86"))
