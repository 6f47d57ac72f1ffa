"""The lowering contract: what lowering hands the later stages (kernel calls
per node, the int8 GEMMs it describes) and what it is given (LowerContext).
Neutral ground: every stage from lowering to codegen imports it, it imports
only ir, target and errors."""

from .calls import (
    ERR,
    F32,
    I64,
    PTR,
    Arg,
    Buf,
    Call,
    Const,
    DimSlot,
    DimTable,
    ErrorSite,
    Kernel,
    LoweredNode,
    Scratch,
    int_table,
)
from .context import LowerContext, NotLowerable
from .int_gemm import INT8_DTYPES, Im2col, IntGemm, IntGemmLowering, IntMatrix, Requant

__all__ = ["ERR", "F32", "I64", "INT8_DTYPES", "PTR", "Arg", "Buf", "Call", "Const", "DimSlot",
           "DimTable", "ErrorSite", "Im2col", "IntGemm", "IntGemmLowering", "IntMatrix", "Kernel",
           "LowerContext", "LoweredNode", "NotLowerable", "Requant", "Scratch", "int_table"]
