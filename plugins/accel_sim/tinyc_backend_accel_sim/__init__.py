"""tinyc backend for accel_sim, a simulated int8 GEMM accelerator.

Registers the `accel_sim` backend, its GEMM tile intrinsic and what it can run
(for the partitioner). The simulator and its code generator come later, so the
target says it is not buildable instead of pretending.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.ir import Graph, Node
from tinyc.target import OpPattern, OpSupport, PendingBackend, hookimpl, yaml_files

MISSING = ("the accel_sim simulator (bit-exact int8 GEMM with a cycle model), its command-"
           "stream code generator and the partitioner that feeds it are not implemented yet")

GEMM_OPS = frozenset({"Conv", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul", "ConvInteger",
                      "MatMulInteger"})


def why_not_on_the_array(node: Node, graph: Graph) -> str | None:
    """The array computes dense GEMMs; grouped (depthwise) convolutions do not map."""
    if node.op.endswith("Conv") and int(node.attr("group", 1)) != 1:
        return "grouped convolutions do not map onto the GEMM array"
    return None


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(PendingBackend("accel_sim", "accelerator", MISSING))


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
                  OpPattern("gemm_relu", ("QLinearMatMul", "Relu"))),
    ))
