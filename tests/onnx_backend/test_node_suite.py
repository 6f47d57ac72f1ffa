"""The ONNX backend node suite (onnx.backend.test) through tinyc.backend.

One test per case, named like onnx's own (test_abs, test_gather_0, ...); the
cases in expected_failures.py are xfails with their reason (XPASS when fixed). Run
`python tests/onnx_backend/report.py` for the per-op figures.
"""

from __future__ import annotations

import pytest
from expected_failures import failure_reason
from node_cases import node_cases, run_case


def _params() -> list:
    params = []
    for case in node_cases():
        reason = failure_reason(case.name)
        # not strict: several people add ops at once, and a case one of them fixes
        # must not fail everyone's run; it shows as XPASS in the summary, to delete
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_node(case) -> None:
    run_case(case)
