from __future__ import annotations

import pytest

from tinyc.plugin import (
    check_intrinsic_set,
    named_intrinsic_sets,
    registry,
    resolve_device,
    resolve_spec_by_name,
)


def test_plugin_is_installed():
    reg = registry()
    assert reg.plugins["x86"].error is None
    assert reg.backends["x86"].plugin == "x86"
    assert reg.runtime_devices["x86-host"].value.backends == ("x86",)


def test_host_target_detects_vector_width():
    dev = resolve_device("x86")
    assert dev.cpu.vector_bits in (128, 256, 512)
    assert dev.cpu.triple.startswith("x86_64")


def test_avx2_spec_uses_256_bit_vectors_its_fma_and_int16_tiles():
    dev = resolve_device("x86-avx2")
    assert dev.cpu.vector_bits == 256
    assert "+fma" in dev.cpu.features
    assert [s.name for s in dev.intrinsics] == ["avx2_fma", "avx2_int16"]


def test_host_gets_the_intrinsic_sets_its_features_allow():
    dev = resolve_device("x86")
    have = set(dev.cpu.features.split(","))
    names = {s.name for s in dev.intrinsics}
    assert "avx2_fma" in names
    assert ("avx512_vnni" in names) == ("+avx512vnni" in have)


def test_vnni_declares_tvms_dot_16x4():
    vnni = registry().intrinsic_sets["avx512_vnni"].value
    dot, signed_broadcast = vnni.intrinsics  # the second: 4-bit weight codes per lane
    assert signed_broadcast.dtypes == {"A": "int8", "B": "uint8", "C": "int32"}
    assert signed_broadcast.priority < dot.priority  # int8 GEMMs keep TVM's form
    assert dot.compute.text == "C[i] += A[k] * B[i, k]"
    assert dot.tile == {"i": 16, "k": 4}
    assert dot.dtypes == {"A": "uint8", "B": "int8", "C": "int32"}
    assert dot.emit.code == "llvm.x86.avx512.vpdpbusd.512"


@pytest.mark.parametrize("name", ["x86-avx2", "x86-avx512", "x86-avx512-vnni"])
def test_fixed_specs_intrinsics_emit(name):
    reg = registry()
    spec = resolve_spec_by_name(name)
    cpu = reg.backends["x86"].value.cpu_target(spec)
    for iset in named_intrinsic_sets(spec, reg):
        assert check_intrinsic_set(iset, cpu) == {i.name: None for i in iset.intrinsics}
