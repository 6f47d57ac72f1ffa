"""accel_sim registers its backend, GEMM tile, op support and simulator device;
both of its specs resolve and build."""

from __future__ import annotations

import pytest

from tinyc.plugin import (
    DType,
    Graph,
    Node,
    TargetError,
    TensorType,
    engine_of,
    registry,
    resolve_device,
    resolve_devices,
    resolve_spec_by_name,
)
from tinyc.plugin.conformance import test_spec_resolves  # noqa: F401


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
    big, small = registry().intrinsic_sets["accel_sim_gemm"].value.intrinsics
    assert big.compute.reduction_indices == {"k"}
    assert big.emit.kind == "opcode" and big.emit.code == "GEMM"
    assert (engine_of(resolve_spec_by_name("accel_sim")).gemm_intrinsic
            == "accel_sim_gemm.gemm_16x16x16_i8i8i32")
    assert (engine_of(resolve_spec_by_name("accel_sim_small")).gemm_intrinsic
            == "accel_sim_gemm.gemm_8x8x8_i8i8i32")


def test_an_array_without_a_matching_gemm_command_is_not_buildable(tmp_path):
    spec = tmp_path / "odd.yaml"
    spec.write_text("name: odd\nextends: accel_sim\naccelerator:\n  kind: gemm\n"
                    "  array: {rows: 12, cols: 12}\n")
    with pytest.raises(TargetError, match="no GEMM command for a 12x12 array.*gemm_8x8x8"):
        resolve_devices(f"x86,{spec}")


def _graph(op: str, dtype: DType, **attrs) -> tuple[Node, Graph]:
    t = TensorType(dtype, (1, 8, 4, 4))
    node = Node(op, ("x", "w"), ("y",), attrs)
    return node, Graph("g", ("x", "w"), ("y",), (node,), {"x": t, "w": t, "y": t})


def test_op_support_tells_the_partitioner_why_not():
    (support,) = registry().op_support_for("accel_sim")
    assert support.why_not(*_graph("QLinearConv", DType.int8)) is None
    assert "grouped" in support.why_not(*_graph("QLinearConv", DType.int8, group=8))
    assert "does not run Softmax" in support.why_not(*_graph("Softmax", DType.int8))
    assert "float16" in support.why_not(*_graph("QLinearConv", DType.float16))


def test_both_specs_build_beside_a_cpu():
    deployment = resolve_devices("x86,accel_sim,accel_sim_small")
    assert [d.spec.name for d in deployment.accelerators] == ["accel_sim", "accel_sim_small"]
    assert "accel_sim-simulator" in registry().runtime_devices


def test_an_accelerator_alone_needs_a_cpu_beside_it():
    with pytest.raises(TargetError, match="has no CPU target"):
        resolve_devices("accel_sim")
    with pytest.raises(TargetError, match="split deployment"):
        resolve_device("x86,accel_sim")  # the single-device API points to the composed path
