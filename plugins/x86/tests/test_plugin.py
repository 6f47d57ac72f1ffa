from __future__ import annotations

from tinyc.target import registry, resolve_device


def test_plugin_is_installed():
    reg = registry()
    assert "x86" in reg.backends
    assert reg.backends["x86"][1] == "x86"


def test_host_target_detects_vector_width():
    dev = resolve_device("x86")
    assert dev.cpu.vector_bits in (128, 256, 512)
    assert dev.cpu.triple.startswith("x86_64")


def test_avx2_spec_uses_256_bit_vectors():
    dev = resolve_device("x86-avx2")
    assert dev.cpu.vector_bits == 256
    assert "+fma" in dev.cpu.features
