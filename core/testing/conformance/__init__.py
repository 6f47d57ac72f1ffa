"""tinyc's conformance kit for backend authors.

    pytest --tinyc-target NAME

runs op-level and model-level checks (and the target's intrinsic sets through
LLVM) against any installed target and reports per-op pass/fail. A backend's
own tests can run the same checks by importing them and naming the target:

    from tinyc.testing.conformance.checks import test_model, test_op  # noqa: F401

    @pytest.fixture
    def tinyc_target() -> str:
        return "foo"
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODEL_CASES", "OP_CASES", "Case"]


def __getattr__(name: str) -> Any:
    """The cases import onnx; imported on use, because pytest loads this package's
    plugin (entry point pytest11) wherever tinyc is installed, including
    runtime-only installs that have no onnx."""
    if name in __all__:
        from . import cases

        return getattr(cases, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
