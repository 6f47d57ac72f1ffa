"""Lowering: graph nodes -> kernel calls. Importing this package registers every lowering."""

from ..errors import NotLowerable
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from . import (  # noqa: F401  (importing a module registers its lowerings)
    activations,
    attention,
    conv,
    conv_transpose,
    data_dependent,
    einsum,
    elementwise,
    indexing,
    kv_cache,
    loss,
    matmul,
    matmul_nbits,
    misc,
    norm,
    pool,
    quant,
    quant_dynamic,
    quant_eltwise,
    quant_gemm,
    recurrent,
    reduce,
    resize,
    roi_align,
    rotary,
    shape_ops,
    signal,
    state_space,
    unpool,
    views,
)
from .lowering import lower_graph
from .registry import lowering_for, lowers, supported_ops

__all__ = [
    "Buf", "Call", "Const", "LowerContext", "LoweredNode", "NotLowerable", "Scratch",
    "lower_graph", "lowering_for", "lowers", "supported_ops",
]
