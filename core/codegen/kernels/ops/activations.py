"""Activation functions beyond elementwise.UNARY (Gelu, Elu, Selu, Celu, Softplus,
Softsign, Mish, ThresholdedRelu, Shrink, Swish) and the extra ones the recurrent cells
accept (Affine, ScaledTanh).

`emit_activation` covers both tables, so the RNN cells and the activation kernel
find every function in one place. Like UNARY, each function works on a float or
a float vector and takes its parameters as f32 values (runtime arguments of the
kernel, or constants baked into an RNN cell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import llvmlite.ir as ir

from ....ir import DType
from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn as M
from ..support.dtype_ir import storage_type, to_compute, to_storage
from ..support.vloop import define_kernel, like, vector_loop, vload, vstore
from .elementwise import UNARY, UnaryOp, emit_unary


def _splat_like(b: ir.IRBuilder, s: ir.Value, t: ir.Type) -> ir.Value:
    return U.splat(b, s, t.count) if isinstance(t, ir.VectorType) else s


def _params(b: ir.IRBuilder, p: Sequence[ir.Value], t: ir.Type) -> list[ir.Value]:
    return [_splat_like(b, v, t) for v in p]


def _expm1_where_negative(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """exp(min(x, 0)) - 1: the negative branch of the Elu family, never overflowing
    for the positive lanes a select throws away."""
    return b.fsub(M.exp_f32(b, U.fmin(b, x, like(x.type, 0.0))), like(x.type, 1.0))


def _elu(b, x, p):
    (alpha,) = _params(b, p, x.type)
    neg = b.fcmp_ordered("<", x, like(x.type, 0.0))
    return b.select(neg, U.fmul(b, alpha, _expm1_where_negative(b, x)), x)


def _selu(b, x, p):
    alpha, gamma = _params(b, p, x.type)
    neg = b.fcmp_ordered("<=", x, like(x.type, 0.0))
    y = b.select(neg, U.fmul(b, alpha, _expm1_where_negative(b, x)), x)
    return U.fmul(b, gamma, y)


def _celu(b, x, p):
    (alpha,) = _params(b, p, x.type)
    neg = U.fmul(b, alpha, _expm1_where_negative(b, b.fdiv(x, alpha)))
    return b.select(b.fcmp_ordered("<", x, like(x.type, 0.0)), neg, x)


def _softplus(b, x, p):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, and e^x for x << 0."""
    t = x.type
    tail = M.log1p_f32(b, M.exp_f32(b, b.fneg(M.fabs(b, x))))
    return b.fadd(U.fmax(b, x, like(t, 0.0)), tail)


def _softsign(b, x, p):
    return b.fdiv(x, b.fadd(like(x.type, 1.0), M.fabs(b, x)))


def _mish(b, x, p):
    """x * tanh(softplus(x)) = x * n / (n + 2) with n = e^x (e^x + 2). Beyond x = 20
    the ratio is 1 in f32; clamping there keeps n finite."""
    t = x.type
    e = M.exp_f32(b, U.fmin(b, x, like(t, 20.0)))
    n = b.fmul(e, b.fadd(e, like(t, 2.0)))
    return b.fmul(x, b.fdiv(n, b.fadd(n, like(t, 2.0))))


def _thresholded_relu(b, x, p):
    (alpha,) = _params(b, p, x.type)
    return b.select(b.fcmp_ordered(">", x, alpha), x, like(x.type, 0.0))


def _shrink(b, x, p):
    bias, lambd = _params(b, p, x.type)
    low = b.fcmp_ordered("<", x, b.fneg(lambd))
    high = b.fcmp_ordered(">", x, lambd)
    y = b.select(high, b.fsub(x, bias), like(x.type, 0.0))
    return b.select(low, b.fadd(x, bias), y)


def _gelu(b, x, p):
    """x/2 * (1 + erf(x / sqrt 2)), as onnxruntime computes it."""
    t = x.type
    e = M.erf_f32(b, b.fmul(x, like(t, 1.0 / math.sqrt(2.0))))
    return b.fmul(b.fmul(x, like(t, 0.5)), b.fadd(e, like(t, 1.0)))


def _gelu_tanh(b, x, p):
    """x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    t = x.type
    inner = M.fmuladd(b, b.fmul(x, x), like(t, 0.044715), like(t, 1.0))
    th = M.tanh_f32(b, b.fmul(b.fmul(x, inner), like(t, math.sqrt(2.0 / math.pi))))
    return b.fmul(b.fmul(x, like(t, 0.5)), b.fadd(th, like(t, 1.0)))


def _swish(b, x, p):
    """x * sigmoid(alpha x) (SiLU at alpha 1)."""
    (alpha,) = _params(b, p, x.type)
    return b.fmul(x, M.sigmoid_f32(b, b.fmul(alpha, x)))


def _affine(b, x, p):
    alpha, beta = _params(b, p, x.type)
    return M.fmuladd(b, x, alpha, beta)


def _scaled_tanh(b, x, p):
    alpha, beta = _params(b, p, x.type)
    return b.fmul(alpha, M.tanh_f32(b, b.fmul(x, beta)))


ACTIVATIONS: dict[str, UnaryOp] = {
    "elu": UnaryOp(("alpha",), _elu),
    "selu": UnaryOp(("alpha", "gamma"), _selu),
    "celu": UnaryOp(("alpha",), _celu),
    "softplus": UnaryOp((), _softplus),
    "softsign": UnaryOp((), _softsign),
    "mish": UnaryOp((), _mish),
    "thresholded_relu": UnaryOp(("alpha",), _thresholded_relu),
    "shrink": UnaryOp(("bias", "lambd"), _shrink),
    "gelu": UnaryOp((), _gelu),
    "gelu_tanh": UnaryOp((), _gelu_tanh),
    "swish": UnaryOp(("alpha",), _swish),
    "affine": UnaryOp(("alpha", "beta"), _affine),
    "scaled_tanh": UnaryOp(("alpha", "beta"), _scaled_tanh),
}


def activation_params(op: str) -> tuple[str, ...]:
    """Names of op's f32 parameters (op from ACTIVATIONS or elementwise.UNARY)."""
    return (ACTIVATIONS[op] if op in ACTIVATIONS else UNARY[op]).params


def emit_activation(b: ir.IRBuilder, op: str, x: ir.Value,
                    params: Sequence[ir.Value] = ()) -> ir.Value:
    """Apply op (from ACTIVATIONS or elementwise.UNARY) to a float or float vector."""
    if op in ACTIVATIONS:
        return ACTIVATIONS[op].emit(b, x, params)
    return emit_unary(b, op, x, params)


def activation_kernel(op: str, dtype: DType = DType.float32) -> Kernel:
    """y[i] = op(x[i], params...) for i < n: (x, y, n, *params). x may equal y.
    float16 / bfloat16 are widened to float32 on load and rounded on store."""
    names = ACTIVATIONS[op].params
    name = f"act_{op}_{dtype.short}"
    elem = storage_type(dtype)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64] + [U.F32] * len(names),
                              ["x", "y", "n", *names])
        x, y, n, *params = fn.args

        def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            v = to_compute(b, vload(b, x, i, lanes, count, elem), dtype)
            vstore(b, to_storage(b, emit_activation(b, op, v, params), dtype), y, i, count)

        vector_loop(b, n, lanes, body)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64) + (F32,) * len(names), build)
