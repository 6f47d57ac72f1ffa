"""Run the calls of lowered nodes directly with numpy buffers, for tests of
lowerings and kernels that should not depend on the whole executor."""

from __future__ import annotations

import ctypes

import numpy as np

from ..ir import Graph
from ..lower.registry import lowering_for
from ..program import ERR, F32, I64, PTR, Buf, Const, ErrorSite, LowerContext, LoweredNode, Scratch
from ..runtime.status import ErrorRecord, record_error
from .kernel_harness import CompiledKernels, host_target


def run_node_calls(lowered: list[LoweredNode], buffers: dict[str, np.ndarray],
                   target=None) -> None:
    """Execute every call; `buffers` maps value names to C-contiguous arrays (outputs
    preallocated). Views (alias_of) are ignored: pass aliased arrays yourself."""
    target = target or host_target()
    kernels = {c.kernel.name: c.kernel for ln in lowered for c in ln.calls}
    lib = CompiledKernels(list(kernels.values()), target)
    keep: list[np.ndarray] = []
    scratch: dict[int, np.ndarray] = {}  # one Scratch object is one buffer across calls
    record = ErrorRecord()
    for ln in lowered:
        for call in ln.calls:
            args = []
            for p, a in zip(call.kernel.params, call.args, strict=True):
                if p == ERR:
                    args.append(ctypes.byref(record))
                elif p == PTR:
                    args.append(_pointer(a, buffers, keep, scratch))
                elif p == I64:
                    args.append(ctypes.c_int64(int(a)))
                else:
                    assert p == F32
                    args.append(ctypes.c_float(float(a)))
            fn = getattr(lib.lib, call.kernel.name)
            fn.restype = ctypes.c_int32 if call.kernel.is_check else None
            status = fn(*args)
            if status:  # as the entry function does it
                site = next(a for a in call.args if isinstance(a, ErrorSite))
                raise record_error(status, record.value, record.position, record.low,
                                   record.high, site.text)


def _pointer(a: object, buffers: dict[str, np.ndarray], keep: list[np.ndarray],
             scratch: dict[int, np.ndarray]) -> ctypes.c_void_p:
    if isinstance(a, Buf):
        arr = buffers[a.value]
        assert arr.flags.c_contiguous
        return ctypes.c_void_p(arr.ctypes.data + a.offset)
    if isinstance(a, Scratch):
        if id(a) not in scratch:  # a node's calls may pass data through one Scratch
            scratch[id(a)] = np.empty(max(a.nbytes, 64) + 64, np.uint8)
        addr = scratch[id(a)].ctypes.data
        return ctypes.c_void_p(addr + (-addr) % 64)
    if isinstance(a, Const):
        arr = np.ascontiguousarray(a.array)
        keep.append(arr)
        return ctypes.c_void_p(arr.ctypes.data)
    raise TypeError(f"not a pointer argument: {a!r}")


def run_graph_nodes(g: Graph, feeds: dict[str, np.ndarray], target=None,
                    intrinsics=None) -> dict[str, np.ndarray]:
    """Lower and run every node of a small graph whose types are all static; returns
    every value. Handy to test one op: build a one-node Graph and compare with numpy.
    `intrinsics` defaults to every registered set the target's features allow."""
    from ..tensorize.sets import sets_for_features

    target = target or host_target()
    ctx = LowerContext(g, target, sets_for_features(target) if intrinsics is None
                       else tuple(intrinsics))
    buffers = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
    buffers.update({k: np.ascontiguousarray(v) for k, v in g.constants.items()})
    for node in g.nodes:
        fn = lowering_for(node)
        assert fn is not None, f"no lowering for {node.qualified_op}"
        ln = fn(node, ctx)
        if ln.alias_of is not None:
            for o in node.outputs:
                buffers[o] = buffers[ln.alias_of].reshape(
                    [int(d) for d in g.type_of(o).shape])
            continue
        for o in node.outputs:
            if o:
                t = g.type_of(o)
                buffers[o] = np.zeros([int(d) for d in t.shape], t.dtype.numpy)
        run_node_calls([ln], buffers, target)
    return buffers
