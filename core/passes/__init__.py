"""Graph -> Graph passes and the default pipeline."""

from .base import FunctionPass, Pass, PassContext, Sequential
from .dead_code import dead_code_pass, eliminate_dead_code
from .fold_batchnorm import fold_batchnorm_pass
from .fold_constants import evaluate_node, fold_constants, fold_constants_pass
from .fuse_epilogue import fuse_epilogue_pass
from .fuse_swish import fuse_swish_pass
from .infer_shapes import fold_and_infer, fold_and_infer_pass, infer_shapes, infer_shapes_pass
from .pipeline import default_pipeline, run_default_pipeline
from .rewrite import GraphView, Rewrite, rewrite_graph
from .simplify_shapes import simplify_shapes_pass

__all__ = [
    "FunctionPass", "GraphView", "Pass", "PassContext", "Rewrite", "Sequential",
    "dead_code_pass", "default_pipeline", "eliminate_dead_code", "evaluate_node",
    "fold_and_infer", "fold_and_infer_pass", "fold_batchnorm_pass", "fold_constants",
    "fold_constants_pass", "fuse_epilogue_pass", "fuse_swish_pass", "infer_shapes",
    "infer_shapes_pass",
    "rewrite_graph", "run_default_pipeline", "simplify_shapes_pass",
]
