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

from .cases import MODEL_CASES, OP_CASES, Case

__all__ = ["MODEL_CASES", "OP_CASES", "Case"]
