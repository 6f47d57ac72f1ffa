"""The conformance kit for backend authors: import its checks into a test
module of your plugin and pytest runs them against your target (the
`tinyc_target` fixture, or --tinyc-target). See docs/writing-a-backend.md."""

from ..testing.conformance.cases import MODEL_CASES, OP_CASES
from ..testing.conformance.checks import (
    test_intrinsics_emit,
    test_model,
    test_op,
    test_spec_resolves,
)

__all__ = ["MODEL_CASES", "OP_CASES", "test_intrinsics_emit", "test_model", "test_op",
           "test_spec_resolves"]
