"""tinyc backend for accel_sim, a simulated int8 GEMM accelerator.

Registers the `accel_sim` backend (partition regions -> command streams), its
GEMM tile intrinsic, what it runs (for the partitioner) and the simulator that
runs its regions in a split deployment (`--target x86,accel_sim`).
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import Graph, Node, OpPattern, OpSupport, RuntimeDevice, hookimpl, yaml_files

from .backend import AccelSimBackend
from .device import AccelSimSession

GEMM_OPS = frozenset({"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
                      "com.microsoft.QGemm"})


def why_not_on_the_array(node: Node, graph: Graph) -> str | None:
    """The array computes dense GEMMs; grouped (depthwise) convolutions do not map."""
    if node.op.endswith("Conv") and int(node.attr("group", 1)) != 1:
        return "grouped convolutions do not map onto the GEMM array"
    return None


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(AccelSimBackend())


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)


@hookimpl
def tinyc_register_op_support(register: Callable) -> None:
    register(OpSupport(
        backend="accel_sim", ops=GEMM_OPS,
        dtypes=frozenset({"int8", "uint8", "int32", "float32"}),  # float32: scales
        check=why_not_on_the_array,
        patterns=(OpPattern("conv_relu", ("QLinearConv", "Relu")),
                  OpPattern("conv_clip", ("QLinearConv", "Clip")),
                  OpPattern("matmul_relu", ("QLinearMatMul", "Relu")),
                  OpPattern("gemm_relu", ("com.microsoft.QGemm", "Relu"))),
    ))


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(RuntimeDevice("accel_sim-simulator", ("accel_sim",), AccelSimSession,
                           description="bit-exact int8 simulator with a cycle model"))
