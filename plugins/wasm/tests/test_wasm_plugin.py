"""The wasm plugin: its targets resolve, their intrinsics compile, and a model
becomes one self-contained module (no imports) with the exports a host needs.
Running modules in wasmtime against onnxruntime is tested in tests/cross."""

from __future__ import annotations

import pytest

import tinyc
from tinyc.plugin import registry, zig_missing_reason
from tinyc.plugin.conformance import (  # noqa: F401 - collected by pytest here
    MODEL_CASES,
    test_intrinsics_emit,
    test_spec_resolves,
)
from tinyc_backend_wasm.package import EXPORTS, module_sizes

TARGETS = ["wasm32", "wasm32-simd"]


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
    assert reg.plugins["wasm"].error is None
    assert reg.backends["wasm"].plugin == "wasm"
    assert "wasm" in reg.runtime_devices["wasmtime"].value.backends


@pytest.mark.parametrize("name,simd", [("wasm32-simd", True), ("wasm32", False)])
def test_module_imports_nothing_and_uses_simd_only_when_allowed(name, simd, zig):
    model = next(c for c in MODEL_CASES if c.name == "mlp").build()
    art = tinyc.compile(model, target=name, options=tinyc.CompileOptions(emit=("asm",)))
    assert set(art.files) == {"model.wasm", "model.js", "model.d.ts", "package.json",
                              "index.html"}  # the module and its web package
    sizes = module_sizes(art.files["model.wasm"])
    assert sizes["imports"] == 0  # no libm, no host functions
    assert sizes["data"] >= len(art.weights) and sizes["code"] > 0
    assert ("f32x4." in art.listings["s"]) == simd
    assert art.meta["run"]["exports"] == list(EXPORTS)
