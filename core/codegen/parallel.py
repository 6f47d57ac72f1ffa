"""Parallel loops in generated code, run by the runtime's thread pool.

A kernel splits its outermost loop in two pieces:
- a *range function* `f(args..., begin, end, worker)` computing iterations
  [begin, end) of the loop, with scratch slice `worker` if it needs scratch
  (`define_range_fn`);
- a call `parallel_range(b, threads, f, args, n, workers)` in the kernel. On
  serial targets (CpuTarget.threads == 1) that is a plain call f(args..., 0,
  n, 0). Otherwise the arguments are stored in a struct on the stack (the
  context) and the kernel calls

      tinyc_parallel_for(task, &context, n, workers)

  where `task(context, begin, end, worker)` is a trampoline that loads the
  arguments and calls f; or, when `workers` (chosen at run time from the
  amount of work, see `workers_for`) is 1, task(&context, 0, n, 0) directly
  (or a copy of f, see parallel_range's `serial_fn`, which then also runs the
  caller's chunks of a parallel loop while the workers run the task).
  The pool (core/runtime/c/tinyc_threads.c) cuts [0, n) into at most
  `workers` contiguous chunks and runs each on its own thread.

Why a range function rather than a body that reads the context directly: its
parameters keep their attributes (noalias) and it reads like the serial kernel
it came from. No data races by construction: chunks write disjoint parts of
the output, read shared inputs only, and worker indices are unique per call, so
a kernel whose scratch has `threads` slices gives each chunk its own slice.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from .llvm_util import I64, PTR, VOID, define, for_range, i64, smin

# Work (in vector-lane operations: an output element times its taps, an
# elementwise result...) below which a second worker does not pay for waking
# it: ~20-40 us of one core.
GRAIN = 1 << 17

POOL_FOR = "tinyc_parallel_for"  # (task, context, n, max_workers)
POOL_THREADS = "tinyc_get_num_threads"  # () -> the pool's current thread count
# A job whose caller runs its chunks with its own code (tinyc_parallel_post in the pool)
POOL_POST = "tinyc_parallel_post"  # (task, context, n, max_workers, per_worker) -> chunks
POOL_CLAIM = "tinyc_parallel_claim"  # () -> the caller's next chunk, or -1
POOL_DONE = "tinyc_parallel_done"  # (): the caller's chunk is finished
POOL_JOIN = "tinyc_parallel_join"  # (): wait for the workers' chunks
CALLER_CHUNKS_PER_WORKER = 4  # the faster thread takes more of them
RANGE_PARAMS = ["begin", "end", "worker"]
_TASK = ir.FunctionType(VOID, [PTR, I64, I64, I64])


def define_range_fn(module: ir.Module, name: str, types: list[ir.Type], names: list[str],
                    noalias: bool = False) -> tuple[ir.Function, ir.IRBuilder, dict[str, ir.Value]]:
    """A function `name(*names, begin, end, worker)`, internal to the module; returns
    it, a builder at its entry and its arguments by name (begin, end, worker too)."""
    all_names = list(names) + RANGE_PARAMS
    fn, b = define(module, name, list(types) + [I64] * 3, all_names, noalias=noalias)
    fn.linkage = "internal"
    return fn, b, dict(zip(all_names, fn.args, strict=True))


def workers_for(b: ir.IRBuilder, work: ir.Value, grain: int, threads: int) -> ir.Value:
    """How many workers `work` (any unit) is worth: one per `grain` of it, at
    least 1, at most the pool's current thread count and `threads` (the worker
    slices the kernel has). 1 means the caller runs it alone, without the pool."""
    if threads <= 1:
        return i64(1)
    wanted = b.sdiv(work, i64(grain))
    wanted = b.select(b.icmp_signed("<", wanted, i64(1)), i64(1), wanted)
    now = active_threads(b, threads)
    return b.select(b.icmp_signed(">", wanted, now), now, wanted)


def active_threads(b: ir.IRBuilder, threads: int) -> ir.Value:
    """The threads a parallel loop of this kernel will get right now: the pool's
    count (set at run time), at most `threads`."""
    if threads <= 1:
        return i64(1)
    fn = _declare(b.module, POOL_THREADS, ir.FunctionType(I64, []))
    now = b.call(fn, [])
    return b.select(b.icmp_signed("<", now, i64(threads)), now, i64(threads))


def parallel_range(b: ir.IRBuilder, threads: int, range_fn: ir.Function,
                   args: list[ir.Value], n: ir.Value, workers: ir.Value,
                   serial_fn: ir.Function | None = None) -> None:
    """range_fn(*args, begin, end, worker) over [0, n), split across at most
    `workers` threads (an i64, see workers_for) when the target has threads.

    The range function runs in the task, on run-time arguments. `serial_fn`, a
    second copy of it called directly when the work is not split, and for the
    caller's own chunks when it is (the workers run the task), lets LLVM
    compile that one for the model's constant arguments, as in serial code: a
    small kernel gains from it (a depthwise layer on a 14x14 image: 2x), at the
    price of its code twice. Without it the kernel stays out of line: a
    dispatcher inlined into every call site of a model (resnet50: 53 GEMMs)
    costs compile time for no gain."""
    if threads <= 1:
        b.call(serial_fn or range_fn, [*args, i64(0), n, i64(0)])
        return
    if serial_fn is None:
        b.function.attributes.add("noinline")
    context = _store_context(b, args)
    task = _task(b.module, range_fn, [a.type for a in args])
    with b.if_else(b.icmp_signed(">", workers, i64(1))) as (fork, alone):
        with fork:
            if serial_fn is not None:
                _caller_runs_own_chunks(b, serial_fn, args, task, context, n, workers)
            else:
                pool = _declare(b.module, POOL_FOR, ir.FunctionType(VOID, [PTR, PTR, I64, I64]))
                b.call(pool, [task, context, n, workers])
        with alone:
            if serial_fn is not None:
                b.call(serial_fn, [*args, i64(0), n, i64(0)])
            else:  # through the task: range_fn keeps a single caller, one copy
                b.call(task, [context, i64(0), n, i64(0)])


def _caller_runs_own_chunks(b: ir.IRBuilder, serial_fn: ir.Function, args: list[ir.Value],
                            task: ir.Function, context: ir.Value, n: ir.Value,
                            workers: ir.Value) -> None:
    """Workers run the task; the caller runs its chunks with serial_fn, which LLVM
    compiles for the call site's constant arguments (a small depthwise layer: 2x
    faster than the task's copy), claiming chunks as the workers do, so it takes
    more of them (see tinyc_parallel_post)."""
    m = b.module
    post = _declare(m, POOL_POST, ir.FunctionType(I64, [PTR, PTR, I64, I64, I64]))
    chunks = b.call(post, [task, context, n, workers, i64(CALLER_CHUNKS_PER_WORKER)])
    with b.if_else(b.icmp_signed(">", chunks, i64(0))) as (posted, not_posted):
        with posted:
            claim = _declare(m, POOL_CLAIM, ir.FunctionType(I64, []))
            loop, body, done = (b.append_basic_block(f"own.{x}") for x in ("claim", "run", "end"))
            b.branch(loop)
            b.position_at_end(loop)
            k = b.call(claim, [])
            b.cbranch(b.icmp_signed(">=", k, i64(0)), body, done)
            b.position_at_end(body)
            begin = b.sdiv(b.mul(n, k), chunks)
            end = b.sdiv(b.mul(n, b.add(k, i64(1))), chunks)
            b.call(serial_fn, [*args, begin, end, i64(0)])
            b.call(_declare(m, POOL_DONE, ir.FunctionType(VOID, [])), [])
            b.branch(loop)
            b.position_at_end(done)
            b.call(_declare(m, POOL_JOIN, ir.FunctionType(VOID, [])), [])
        with not_posted:  # busy or nested: the pool decides how it runs
            pool = _declare(m, POOL_FOR, ir.FunctionType(VOID, [PTR, PTR, I64, I64]))
            b.call(pool, [task, context, n, workers])


# body(builder, the range function's copies of the kernel's arguments, index)
LoopBody = Callable[[ir.IRBuilder, list[ir.Value], ir.Value], None]


def compiled_in_sizes(sizes: tuple, threads: int) -> tuple[int, ...] | None:
    """The sizes a threaded plane kernel compiles into its workers' code (the
    range function reads its arguments from the pool's context, where LLVM
    cannot fold them as it does in the caller's inlined copy): all of them
    known, else None (they stay arguments)."""
    return tuple(sizes) if threads > 1 and all(type(v) is int for v in sizes) else None


def parallel_planes(b: ir.IRBuilder, g: dict[str, ir.Value], args: list[ir.Value], taps: int,
                    threads: int, build_planes, lanes: int = 1, sw: int = 1,
                    serial_copy: bool = True) -> None:
    """A depthwise conv's planes (N x C, each `mult` outputs of Ho x Wo) forked
    over the pool. `build_planes(suffix)` defines the function over a range of
    planes; a threaded build also gets a "serial" copy the caller runs, which
    LLVM compiles for the layer's constant arguments (measured: 20% faster),
    unless `serial_copy` is off (a range function compiled for its sizes).
    The work counts what the kernel computes: output rows padded to whole
    vectors of `lanes`, and stride 2's two loads per vector. Counting only the
    outputs left a 576-channel 14x14 -> 7x7 stride-2 layer (7 of 16 lanes used,
    55 us) on one thread."""
    planes = b.mul(g["N"], g["C"])
    row = b.mul(b.sdiv(b.add(g["Wo"], i64(lanes - 1)), i64(lanes)), i64(lanes))
    outputs = b.mul(b.mul(planes, g["mult"]), b.mul(g["Ho"], row))
    per_output = taps * (2 if sw == 2 else 1)
    workers = workers_for(b, b.mul(outputs, ir.Constant(outputs.type, per_output)), GRAIN,
                          threads)
    range_fn = build_planes("range")
    serial_fn = build_planes("serial") if threads > 1 and serial_copy else None
    parallel_range(b, threads, range_fn, args, planes, workers, serial_fn)


def parallel_loop(b: ir.IRBuilder, threads: int, name: str, args: list[ir.Value],
                  n: ir.Value, work: ir.Value, body: LoopBody) -> None:
    """`for i in [0, n): body(i)`, the iterations split across workers when `work`
    (see GRAIN) is worth it. The body is emitted once, into the range function
    `name.range`, and sees the arguments only through the list it is given."""
    range_name = f"{name}.range"
    range_fn = b.module.globals.get(range_name)
    if range_fn is None:
        names = [a.name or f"arg{k}" for k, a in enumerate(args)]
        range_fn, rb, v = define_range_fn(b.module, range_name, [a.type for a in args], names)
        with for_range(rb, v["begin"], v["end"], name="i") as i:
            body(rb, list(range_fn.args[:len(args)]), i)
        rb.ret_void()
    parallel_range(b, threads, range_fn, args, n, workers_for(b, work, GRAIN, threads))


# The dims of a row-wise kernel's outer positions, computed from its arguments
# (e.g. read from a plan table); called in the kernel and again in the range function.
RowCounts = Callable[[ir.IRBuilder, list[ir.Value]], list[ir.Value]]
# body(builder, arguments, outer indices, first element, elements): one piece of a row
RowBody = Callable[[ir.IRBuilder, list[ir.Value], list[ir.Value], ir.Value, ir.Value], None]
ROW_BLOCK = 16384  # elements of a piece (16-64 KB): a multiple of every vector width


def parallel_rows(b: ir.IRBuilder, threads: int, name: str, args: list[ir.Value],
                  counts: RowCounts, n: ir.Value, body: RowBody, cost: int = 1) -> None:
    """body(indices, start, count) over every outer position (row-major over
    counts(args)) and its n elements, split across workers when the elements are
    worth it (GRAIN, `cost` per element). A piece is ROW_BLOCK elements of one
    long row, or as many whole short rows as make about ROW_BLOCK; rows within a piece step their
    indices by carries, not divisions, so short rows stay cheap."""
    def geometry(b: ir.IRBuilder, dims: list[ir.Value], n: ir.Value) -> list[ir.Value]:
        rows = i64(1)
        for d in dims:
            rows = b.mul(rows, d)
        long = b.icmp_signed(">", n, i64(ROW_BLOCK))
        blocks = b.select(long, b.sdiv(b.add(n, i64(ROW_BLOCK - 1)), i64(ROW_BLOCK)), i64(1))
        per_piece = b.select(long, i64(1), b.sdiv(i64(ROW_BLOCK), _at_least_1(b, n)))
        pieces = b.mul(b.sdiv(b.add(rows, b.sub(per_piece, i64(1))), per_piece), blocks)
        return [rows, blocks, per_piece, pieces]

    rows, _, _, pieces = geometry(b, counts(b, args), n)

    def piece(b: ir.IRBuilder, values: list[ir.Value], i: ir.Value) -> None:
        *kernel_args, n = values
        dims = counts(b, kernel_args)
        rows, blocks, per_piece, _ = geometry(b, dims, n)
        group = b.sdiv(i, blocks)
        start = b.mul(b.sub(i, b.mul(group, blocks)), i64(ROW_BLOCK))
        count = smin(b, i64(ROW_BLOCK), b.sub(n, start))
        first = b.mul(group, per_piece)
        slots = _index_slots(b, dims, first)
        with for_range(b, first, smin(b, rows, b.add(first, per_piece)), name="row"):
            idx = [b.load(s) for s in slots]
            body(b, kernel_args, idx, start, count)
            _step_indices(b, dims, slots, idx)

    parallel_loop(b, threads, name, [*args, n], pieces, b.mul(b.mul(rows, n), i64(cost)), piece)


def _index_slots(b: ir.IRBuilder, dims: list[ir.Value], flat: ir.Value) -> list[ir.Value]:
    """Stack slots holding the indices of outer position `flat` (mem2reg makes them SSA)."""
    idx = []
    for d in reversed(dims):
        idx.append(b.srem(flat, d))
        flat = b.sdiv(flat, d)
    slots = []
    for value in reversed(idx):
        with b.goto_entry_block():
            slot = b.alloca(I64)
        b.store(value, slot)
        slots.append(slot)
    return slots


def _step_indices(b: ir.IRBuilder, dims: list[ir.Value], slots: list[ir.Value],
                  idx: list[ir.Value]) -> None:
    """The next outer position: increment the last index, carrying into earlier ones."""
    carry = i64(1)
    for d in reversed(range(len(dims))):
        nxt = b.add(idx[d], carry)
        wrap = b.icmp_signed("==", nxt, dims[d])
        b.store(b.select(wrap, i64(0), nxt), slots[d])
        carry = b.zext(wrap, I64)


def _at_least_1(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, i64(1)), i64(1), x)


def _store_context(b: ir.IRBuilder, args: list[ir.Value]) -> ir.Value:
    struct = ir.LiteralStructType([a.type for a in args])
    with b.goto_entry_block():
        typed = b.alloca(struct, name="context")
        # llvmlite types allocas as typed pointers; an int round trip gives the
        # opaque pointer the rest of the code uses (LLVM folds it away)
        context = b.inttoptr(b.ptrtoint(typed, I64), PTR)
    for k, a in enumerate(args):
        b.store(a, _field(b, struct, context, k))
    return context


def _field(b: ir.IRBuilder, struct: ir.LiteralStructType, ptr: ir.Value, k: int) -> ir.Value:
    return b.gep(ptr, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), k)],
                 inbounds=True, source_etype=struct)


def _task(module: ir.Module, range_fn: ir.Function, types: list[ir.Type]) -> ir.Function:
    """`range_fn.task(context, begin, end, worker)`: unpacks the context, calls range_fn."""
    name = f"{range_fn.name}.task"
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, _TASK, name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    context, begin, end, worker = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    struct = ir.LiteralStructType(types)
    args = [b.load(_field(b, struct, context, k), typ=t) for k, t in enumerate(types)]
    b.call(range_fn, [*args, begin, end, worker])
    b.ret_void()
    return fn


def _declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, fnty, name=name)
