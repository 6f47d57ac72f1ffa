"""The default Graph -> Graph pipeline run before partitioning and lowering."""

from __future__ import annotations

from ..ir import Graph
from .base import Pass, PassContext, Sequential
from .contracts import check_contracts_pass
from .dead_code import dead_code_pass
from .decompose_einsum import decompose_einsum_pass
from .fold_batchnorm import fold_batchnorm_pass
from .fold_constants import fold_constants_pass
from .fuse_epilogue import fuse_epilogue_pass
from .fuse_swish import fuse_swish_pass
from .infer_shapes import fold_and_infer_pass
from .quant_canonicalize import quant_canonicalize_pass
from .simplify_shapes import simplify_shapes_pass


def default_pipeline(fuse: bool = True) -> Sequential:
    """Fold what is known, strip no-op views, merge affine ops into Conv weights,
    then (unless `fuse` is False, e.g. to debug a lowering) fuse x * sigmoid(x) into
    Swish and epilogues into their GEMMs.

    fold_constants runs twice: removing Identity/Dropout can hand a node all-constant
    inputs, and BN folding needs its parameters as constants. The first time it
    alternates with infer_shapes, so shapes that depend on folded values become
    static. quant_canonicalize
    runs first, while the DequantizeLinear of constant weights is still there to see.
    check_contracts (parameter shapes against attributes) runs once shapes are
    static; folding a node that breaks one fails quietly and leaves it to the check.
    decompose_einsum then rewrites the Einsums the GEMM lowering cannot take; the
    second fold_constants folds the pieces of those that act on weights.
    """
    passes: list[Pass] = [
        quant_canonicalize_pass,
        fold_and_infer_pass,
        check_contracts_pass,  # folding made dims numbers (and K=0 products zeros)
        decompose_einsum_pass,  # needs the checked sizes; its constant pieces fold below
        simplify_shapes_pass,
        fold_constants_pass,
        fold_batchnorm_pass,
        dead_code_pass,
    ]
    if fuse:
        passes += [fuse_swish_pass, fuse_epilogue_pass]
    return Sequential(passes, name="default_pipeline")


def run_default_pipeline(graph: Graph, ctx: PassContext | None = None, fuse: bool = True) -> Graph:
    return default_pipeline(fuse=fuse)(graph, ctx)
