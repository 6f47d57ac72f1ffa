"""The wasm plugin registers its backend and intrinsics; its targets validate, their
intrinsics compile with LLVM, and they say clearly that they are not buildable yet."""

from __future__ import annotations

import pytest

from tinyc.errors import TargetError
from tinyc.target import registry, resolve_device
from tinyc.testing.conformance.checks import (  # noqa: F401 - collected by pytest here
    test_intrinsics_emit,
    test_spec_resolves,
)

TARGETS = ["wasm32-simd"]


@pytest.fixture(params=TARGETS)
def tinyc_target(request: pytest.FixtureRequest) -> str:
    return request.param


def test_plugin_is_installed():
    reg = registry()
    assert reg.plugins["wasm"].error is None
    assert reg.backends["wasm"].plugin == "wasm"


@pytest.mark.parametrize("name", TARGETS)
def test_target_says_it_is_not_buildable_yet(name):
    with pytest.raises(TargetError, match=r"cannot be built here: code generation for wasm32.*"
                                          r"not implemented yet"):
        resolve_device(name)
