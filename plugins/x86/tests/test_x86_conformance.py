"""tinyc's conformance kit against the host x86 target."""

from __future__ import annotations

import pytest

from tinyc.plugin.conformance import (  # noqa: F401 - collected by pytest here
    test_intrinsics_emit,
    test_model,
    test_op,
    test_spec_resolves,
)


@pytest.fixture
def tinyc_target() -> str:
    return "x86"
