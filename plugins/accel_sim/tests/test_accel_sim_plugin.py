"""accel_sim registers its backend, GEMM tile and op support; split deployment
with it says clearly what is missing, and the CPU part still resolves."""

from __future__ import annotations

import pytest

from tinyc.errors import TargetError
from tinyc.ir import Graph, Node, TensorType
from tinyc.ir.dtypes import DType
from tinyc.target import registry, resolve_device, resolve_spec_by_name
from tinyc.testing.conformance.checks import test_spec_resolves  # noqa: F401


@pytest.fixture
def tinyc_target() -> str:
    return "accel_sim"


def test_plugin_is_installed():
    reg = registry()
    assert reg.plugins["accel_sim"].error is None
    assert reg.backends["accel_sim"].value.kind == "accelerator"


def test_spec_describes_the_engine():
    spec = resolve_spec_by_name("accel_sim")
    assert spec.accelerator["array"] == {"rows": 16, "cols": 16}
    assert spec.accelerator["dtypes"]["accumulator"] == "int32"
    assert "weight_buffer" in spec.memories


def test_gemm_tile_is_declared_by_semantics():
    (gemm,) = registry().intrinsic_sets["accel_sim_gemm"].value.intrinsics
    assert gemm.compute.reduction_indices == {"k"}
    assert gemm.emit.kind == "opcode" and gemm.emit.code == "GEMM"


def _graph(op: str, dtype: DType, **attrs) -> tuple[Node, Graph]:
    t = TensorType(dtype, (1, 8, 4, 4))
    node = Node(op, ("x", "w"), ("y",), attrs)
    return node, Graph("g", ("x", "w"), ("y",), (node,), {"x": t, "w": t, "y": t})


def test_op_support_tells_the_partitioner_why_not():
    (support,) = registry().op_support_for("accel_sim")
    assert support.why_not(*_graph("QLinearConv", DType.int8)) is None
    assert "grouped" in support.why_not(*_graph("QLinearConv", DType.int8, group=8))
    assert "does not run Softmax" in support.why_not(*_graph("Softmax", DType.int8))
    assert "float16" in support.why_not(*_graph("Conv", DType.float16))


def test_split_deployment_names_what_is_missing():
    with pytest.raises(TargetError, match="accel_sim.*simulator.*not implemented yet"):
        resolve_device("x86,accel_sim")


def test_accelerator_alone_is_not_buildable_either():
    from tinyc.target import resolve_devices

    with pytest.raises(TargetError, match="simulator"):
        resolve_devices("accel_sim")
