"""The model's one native entry point:

    int tinyc_run(void *const *inputs, void *const *outputs,
                  const void *weights, void *arena)

It is straight-line code: per lowered node, calls to shared kernels with the
buffers' addresses (arena / weights offsets fixed at compile time) and the
shapes as immediates. No allocation, no Python.

A model with symbolic dimensions takes a fifth argument, `const int64_t *dims`
(the value of each symbol for this run): shapes, offsets and sizes that are
expressions of the symbols are computed from it (codegen/symbolic_ir.py).

It returns 0, or the nonzero status of the first check kernel that failed
(e.g. an index out of range), right after that check and before the node's
other calls. Then the global error record `tinyc_error` says what failed:

    struct tinyc_error {        // one format for every check
        int64_t code;           // == the status returned
        int64_t node;           // the failing node's position in run order
        int64_t value;          // the offending value
        int64_t position;       // its flat position in the checked tensor
        int64_t low, high;      // the range it had to be in, inclusive
        const char *site;       // e.g. "Gather node 'emb': input 'ids'"
    };

The check kernel writes value .. high, the entry code, node and site.
runtime/status.py holds the codes and turns a record into an exception.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ..ir.symbolic import SymDim
from ..program import (
    ERR,
    F32,
    I64,
    PTR,
    Buf,
    Call,
    Const,
    DimSlot,
    DimTable,
    ErrorSite,
    LoweredNode,
    Scratch,
)
from ..runtime.status import ERROR_SYMBOL, INT_FIELDS, SITE_OFFSET
from ..target.machine import CpuTarget
from . import llvm_util as u
from .kernel import get_or_build
from .memory_plan import Location, MemoryPlan
from .symbolic_ir import SymbolValues

ENTRY = "tinyc_run"
PROFILE = "tinyc_profile_cycles"  # i64 per lowered node, accumulated across runs


def build_entry(module: ir.Module, lowered: list[LoweredNode], plan: MemoryPlan,
                n_inputs: int, n_outputs: int, target: CpuTarget,
                profile: bool = False, name: str = ENTRY,
                symbols: tuple[str, ...] = (),
                sample_bytes: tuple[list[int], list[int]] | None = None,
                unbacked: tuple[str, ...] = ()) -> ir.Function:
    """`name`: split deployment builds one entry per CPU region in one module.
    `symbols`: the model's symbolic dimensions, in the order of the dims array.
    `sample_bytes`: (per input, per output) bytes of one sample, for a model
    compiled for one sample and run for each of the batch (symbols[0]) in turn
    (passes/sample_loop.py). `unbacked`: those of `symbols` that kernels of the
    run set (data-dependent sizes, written into their dims slot)."""
    params = ["inputs", "outputs", "weights", "arena"] + (["dims"] if symbols else [])
    fn, b = u.define(module, name, [u.PTR] * len(params), params, ret=u.I32)
    inputs, outputs, weights, arena = fn.args[:4]
    spaces = {
        "symbols": SymbolValues(b, fn.args[4], symbols, unbacked) if symbols else None,
        "input": [u.load(b, inputs, u.i64(i), u.PTR, align=8) for i in range(n_inputs)],
        "output": [u.load(b, outputs, u.i64(j), u.PTR, align=8) for j in range(n_outputs)],
        "weights": weights,
        "arena": arena,
        "error": _error_record(b),
    }
    counters = None
    if profile:
        # llvmlite types globals as typed pointers (and keeps them typed through
        # bitcast); an int round trip gives the opaque pointer the helpers use.
        glob = _profile_counters(module, len(lowered))
        counters = b.inttoptr(b.ptrtoint(glob, u.I64), u.PTR)
    if sample_bytes is None:
        _emit_nodes(b, lowered, name, module, target, plan, spaces, counters)
    else:  # the network once per sample, each at its offset in the batched tensors
        bases = {kind: list(spaces[kind]) for kind in ("input", "output")}
        count = spaces["symbols"].values[symbols[0]]
        with u.for_range(b, 0, count, name="sample") as n:
            for kind, sizes in zip(("input", "output"), sample_bytes, strict=True):
                spaces[kind] = [b.gep(p, [b.mul(n, u.i64(nb))], source_etype=u.I8)
                                for p, nb in zip(bases[kind], sizes, strict=True)]
            _emit_nodes(b, lowered, name, module, target, plan, spaces, counters)
    b.ret(ir.Constant(u.I32, 0))
    return fn


def _emit_nodes(b: ir.IRBuilder, lowered: list[LoweredNode], name: str, module: ir.Module,
                target: CpuTarget, plan: MemoryPlan, spaces: dict, counters) -> None:
    for k, ln in enumerate(lowered):
        start = _cycles(b) if counters is not None else None
        _emit_calls(b, ln.setup, k, f"{name}.setup", module, target, plan, spaces)
        _emit_variants(b, ln.calls, ln.alt, k, name, module, target, plan, spaces)
        if counters is not None:
            spent = b.sub(_cycles(b), start)
            total = b.add(u.load(b, counters, u.i64(k), u.I64), spent)
            u.store(b, total, counters, u.i64(k))


def _emit_variants(b: ir.IRBuilder, calls, alt, k: int, name: str, module: ir.Module,
                   target: CpuTarget, plan: MemoryPlan, spaces: dict) -> None:
    """A node's calls; with `alt`, two variants chosen by its guard at run time
    (the other one may hold variants of its own: a data-dependent size)."""
    if alt is None:
        _emit_calls(b, calls, k, name, module, target, plan, spaces)
        return
    guard, other, _ = alt
    holds = spaces["symbols"].holds(b, guard)
    with b.if_else(holds) as (then, otherwise):
        with then:
            _emit_calls(b, calls, k, name, module, target, plan, spaces)
        with otherwise:
            if isinstance(other, LoweredNode):
                _emit_variants(b, other.calls, other.alt, k, f"{name}.alt", module, target,
                               plan, spaces)
            else:
                _emit_calls(b, other, k, f"{name}.alt", module, target, plan, spaces)


def _emit_calls(b: ir.IRBuilder, calls, k: int, name: str, module: ir.Module,
                target: CpuTarget, plan: MemoryPlan, spaces: dict) -> None:
    for j, call in enumerate(calls):
        if isinstance(call, LoweredNode):  # variants nested in one side of a variant
            _emit_variants(b, call.calls, call.alt, k, f"{name}.in{j}", module, target, plan,
                           spaces)
            continue
        kernel_fn = get_or_build(module, call.kernel, target)
        result = b.call(kernel_fn, [_arg(b, a, p, plan, spaces) for a, p in
                                    zip(call.args, call.kernel.params, strict=True)])
        if call.kernel.is_check:
            _return_on_failure(b, result, k, _site(call, f"{name}.site{k}.{j}"),
                               spaces["error"])


def _error_record(b: ir.IRBuilder) -> ir.Value:
    """The address of `tinyc_error` (one per module: split entries share it)."""
    module = b.module
    if ERROR_SYMBOL in module.globals:
        glob = module.globals[ERROR_SYMBOL]
    else:
        record = ir.LiteralStructType([u.I64] * len(INT_FIELDS) + [u.PTR])
        glob = ir.GlobalVariable(module, record, ERROR_SYMBOL)
        glob.initializer = ir.Constant(record, None)
        glob.align = 8
    return b.inttoptr(b.ptrtoint(glob, u.I64), u.PTR)  # opaque, as for the profile


def _site(call: Call, name: str) -> tuple[str, str]:
    (site,) = [a for a in call.args if isinstance(a, ErrorSite)]
    return name, site.text


def _return_on_failure(b: ir.IRBuilder, status: ir.Value, node: int, site: tuple[str, str],
                       record: ir.Value) -> None:
    """if (status) { record: code, node, site; return status; }"""
    with b.if_then(b.icmp_signed("!=", status, ir.Constant(u.I32, 0)), likely=False):
        u.store(b, b.sext(status, u.I64), record, u.i64(INT_FIELDS.index("code")))
        u.store(b, u.i64(node), record, u.i64(INT_FIELDS.index("node")))
        text = _cstring(b, *site)
        u.store(b, text, b.gep(record, [u.i64(SITE_OFFSET)], source_etype=u.I8), u.i64(0))
        b.ret(status)


def _cstring(b: ir.IRBuilder, name: str, text: str) -> ir.Value:
    """A pointer to a constant NUL-terminated copy of text."""
    data = bytearray(text.encode("utf-8") + b"\0")
    arr = ir.ArrayType(u.I8, len(data))
    glob = ir.GlobalVariable(b.module, arr, name)
    glob.initializer = ir.Constant(arr, data)
    glob.global_constant = True
    glob.linkage = "internal"
    return b.inttoptr(b.ptrtoint(glob, u.I64), u.PTR)


def _profile_counters(module: ir.Module, n: int) -> ir.GlobalVariable:
    """A global the runtime reads after a run (profile builds only)."""
    arr = ir.ArrayType(u.I64, max(n, 1))
    g = ir.GlobalVariable(module, arr, PROFILE)
    g.initializer = ir.Constant(arr, None)
    return g


def _cycles(b: ir.IRBuilder) -> ir.Value:
    fn = u.intrinsic(b.module, "llvm.readcyclecounter", u.I64, [])
    return b.call(fn, [])


def _arg(b: ir.IRBuilder, a: object, param: str, plan: MemoryPlan, spaces: dict) -> ir.Value:
    if param == I64:
        if isinstance(a, SymDim):
            return spaces["symbols"].emit(b, a)
        return u.i64(int(a))
    if param == F32:
        return u.f32(float(a))
    if param == ERR:
        return spaces["error"]
    assert param == PTR, param
    if isinstance(a, Buf):
        return _address(b, plan.location_of_value(a.value), a.offset, spaces)
    if isinstance(a, Scratch):
        return _address(b, plan.locations[plan.scratch_keys[id(a)]], 0, spaces)
    if isinstance(a, Const):
        return _address(b, plan.locations[plan.const_keys[id(a)]], 0, spaces)
    if isinstance(a, DimTable):
        return _dim_table(b, a, spaces)
    if isinstance(a, DimSlot):
        return spaces["symbols"].slot(b, a.symbol)
    raise TypeError(f"cannot pass {a!r} as a pointer")


def _dim_table(b: ir.IRBuilder, table: DimTable, spaces: dict) -> ir.Value:
    """The table on the entry's stack (one alloca per table, in the entry block
    so LLVM keeps the frame fixed), filled from this run's sizes."""
    elem = ir.IntType(table.bits)
    arr = ir.ArrayType(elem, max(len(table.values), 1))
    with b.goto_entry_block():
        slot = b.alloca(arr, name=f"dims_{len(spaces.setdefault('tables', []))}")
    spaces["tables"].append(slot)
    base = b.inttoptr(b.ptrtoint(slot, u.I64), u.PTR)  # llvmlite types allocas; see above
    for k, v in enumerate(table.values):
        value = spaces["symbols"].emit(b, v)
        u.store(b, value if table.bits == 64 else b.trunc(value, elem), base, u.i64(k))
    return base


def _address(b: ir.IRBuilder, loc: Location, extra: int, spaces: dict) -> ir.Value:
    if loc.space in ("input", "output"):
        base, offset = spaces[loc.space][loc.index], extra
    else:
        base, offset = spaces[loc.space], loc.offset + extra
    if isinstance(offset, int) and offset == 0:
        return base
    index = spaces["symbols"].emit(b, offset) if isinstance(offset, SymDim) else u.i64(offset)
    return b.gep(base, [index], inbounds=True, source_etype=u.I8)
