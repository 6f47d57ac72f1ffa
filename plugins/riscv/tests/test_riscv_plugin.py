"""The riscv plugin: its targets resolve, their intrinsics compile, and it
packages artifacts with a runner whose qemu cpu has the vector extension only
when the target does. Running them under qemu is tested in tests/cross."""

from __future__ import annotations

import pytest

import tinyc
from tinyc.plugin import registry, resolve_device, zig_missing_reason
from tinyc.plugin.conformance import (  # noqa: F401 - collected by pytest here
    MODEL_CASES,
    test_intrinsics_emit,
    test_spec_resolves,
)
from tinyc_backend_riscv import qemu_cpu

TARGETS = ["riscv64", "riscv64-rvv"]


@pytest.fixture(params=TARGETS)
def tinyc_target(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def zig() -> None:
    reason = zig_missing_reason()
    if reason:
        pytest.skip(reason)


def test_plugin_is_installed():
    reg = registry()
    assert reg.plugins["riscv"].error is None
    assert reg.backends["riscv"].plugin == "riscv"
    assert "riscv" in reg.runtime_devices["riscv-qemu"].value.backends


def test_qemu_has_vectors_only_for_targets_with_v():
    assert qemu_cpu("+m,+a,+f,+d,+c,+v", 128) == "rv64,v=true,vlen=128,vext_spec=v1.0"
    assert qemu_cpu("+m,+a,+f,+d,+c", 32) == "rv64,v=false"


@pytest.mark.parametrize("name,vector_code", [("riscv64-rvv", True), ("riscv64", False)])
def test_vector_instructions_only_with_v(name, vector_code, zig):
    model = next(c for c in MODEL_CASES if c.name == "mlp").build()
    art = tinyc.compile(model, target=name, options=tinyc.CompileOptions(emit=("asm",)))
    assert resolve_device(name).cpu.triple.startswith("riscv64")
    assert ("vsetvli" in art.listings["s"] or "vsetivli" in art.listings["s"]) == vector_code
    assert {"libmodel.a", "model.h", "model.elf"} <= set(art.files)
