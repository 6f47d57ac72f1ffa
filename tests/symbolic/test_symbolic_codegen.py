"""Generated code computes symbolic expressions and guards as Python does."""

from __future__ import annotations

import ctypes
import random

from tinyc.codegen.build import build_shared
from tinyc.codegen.machine import new_module
from tinyc.codegen.symbolic_ir import GUARDS, SIZES, build_guards, build_sizes
from tinyc.ir.symbolic import SymDim, Tracer, evaluate_poly, tracing
from tinyc.testing.kernel_harness import host_target


def _expressions(a, b):
    """Floor and ceiling divisions of numerators that go negative, modulo,
    products: what conv output sizes and panel counts produce."""
    return [a * b - 5, (a * 7 - 20) // 4, -(-(b * 3 + 1) // 8), (a * b + 3) % 5,
            (a - b) * (a + b), ((a * 5 - 11) // 3) * b + 2, (a - 9) % 4, 64 * a * a]


def test_sizes_and_guards_match_python(tmp_path):
    tracer = Tracer(hints={"A": 3, "B": 7})
    with tracing(tracer):
        a, b = SymDim.symbol("A", 3), SymDim.symbol("B", 7)
        exprs = _expressions(a, b)
        _ = a * 2 >= b - 3  # two guards, true at the hint
        _ = b % 7 == 0
    target = host_target()
    module = new_module("sym", target)
    build_sizes(module, ["A", "B"], exprs)
    build_guards(module, ["A", "B"], tracer.guards)
    path = str(tmp_path / "sym.so")
    build_shared(module, target, path)
    lib = ctypes.CDLL(path)
    sizes, guards = getattr(lib, SIZES), getattr(lib, GUARDS)
    guards.restype = ctypes.c_int32
    rng = random.Random(1)
    for _ in range(200):
        env = {"A": rng.randint(1, 40), "B": rng.randint(1, 40)}
        dims = (ctypes.c_int64 * 2)(env["A"], env["B"])
        out = (ctypes.c_int64 * len(exprs))()
        sizes(dims, out)
        assert list(out) == [evaluate_poly(e.poly, env) for e in exprs], env
        failed = [k + 1 for k, g in enumerate(tracer.guards) if not g.check(env)]
        assert guards(dims) == (failed[0] if failed else 0), env
