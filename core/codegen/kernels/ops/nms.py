"""NonMaxSuppression (ONNX): per batch and class, the boxes by descending
score (ties: lower index first), each kept unless its IoU with a box kept
before exceeds the threshold, at most max_output_boxes_per_class of them.

The output is [count, 3] rows (batch, class, box): rows have a fixed width,
so they are written as they are found, and the count goes to the
data-dependent size's slot at the end (kernels/data_dependent.py). The count
is at most batches * classes * boxes, the bound the output was planned for.
Candidates are insertion-sorted and each is compared with the boxes kept:
O(boxes^2) per class, as onnxruntime's reference loop.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.vloop import define_kernel, entry_alloca

_PARAMS = ["boxes", "scores", "max_out", "iou", "score_min", "out", "batches", "classes",
           "n", "has_score_min", "order", "kept", "slot"]


def nms_kernel(center_point_box: bool) -> Kernel:
    """(boxes f32[B, n, 4], scores f32[B, C, n], max_out i64[1], iou f32[1],
    score_min f32[1], out i64[count, 3], B, C, n, has_score_min, order
    i64[n], kept i64[n], slot)."""
    name = f"nms_f32_{'center' if center_point_box else 'corners'}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        types = [U.PTR] * 6 + [U.I64] * 4 + [U.PTR] * 3
        fn, b = define_kernel(module, name, types, _PARAMS)
        a = dict(zip(_PARAMS, fn.args, strict=True))
        max_out = U.load(b, a["max_out"], U.i64(0), U.I64)
        iou_max = U.load(b, a["iou"], U.i64(0), U.F32)
        score_min = U.load(b, a["score_min"], U.i64(0), U.F32)
        count, cands, n_kept = (entry_alloca(b, U.I64, s) for s in ("count", "cands", "kept"))
        b.store(U.i64(0), count)
        n = a["n"]
        with U.for_range(b, U.i64(0), a["batches"], name="bt") as bt, \
                U.for_range(b, U.i64(0), a["classes"], name="cl") as cl:
            scores_at = b.mul(b.add(b.mul(bt, a["classes"]), cl), n)
            score = lambda s: U.load(b, a["scores"], b.add(scores_at, s), U.F32)  # noqa: E731
            _sorted_candidates(b, a, n, score, score_min, cands)
            b.store(U.i64(0), n_kept)
            boxes_at = b.mul(bt, b.mul(n, U.i64(4)))
            with U.for_range(b, U.i64(0), b.load(cands), name="t") as t:
                with b.if_then(b.icmp_signed("<", b.load(n_kept), max_out)):
                    box = U.load(b, a["order"], t, U.I64)
                    _keep_unless_suppressed(b, a, box, boxes_at, iou_max, center_point_box,
                                            n_kept, count, bt, cl)
        U.store(b, b.load(count), a["slot"], U.i64(0))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 6 + (I64,) * 4 + (PTR,) * 3, build)


def _sorted_candidates(b, a, n, score, score_min, cands) -> None:
    """order[0 .. cands) = the boxes above the score threshold (if any), by
    descending score, ties by index (insertion: later equal boxes go after)."""
    b.store(U.i64(0), cands)
    j = entry_alloca(b, U.I64, "j")
    with U.for_range(b, U.i64(0), n, name="s") as s:
        v = score(s)
        above = b.fcmp_ordered(">", v, score_min)
        enters = b.or_(b.icmp_signed("==", a["has_score_min"], U.i64(0)), above)
        with b.if_then(enters):
            b.store(b.load(cands), j)
            loop, body, done = (b.append_basic_block(x) for x in ("ins", "shift", "placed"))
            b.branch(loop)
            b.position_at_end(loop)
            at = b.load(j)
            prev = U.load(b, a["order"], b.sub(b.select(b.icmp_signed(">", at, U.i64(0)), at,
                                                          U.i64(1)), U.i64(1)), U.I64)
            shift = b.and_(b.icmp_signed(">", at, U.i64(0)),
                           b.fcmp_ordered(">", v, score(prev)))
            b.cbranch(shift, body, done)
            b.position_at_end(body)
            U.store(b, prev, a["order"], at)
            b.store(b.sub(at, U.i64(1)), j)
            b.branch(loop)
            b.position_at_end(done)
            U.store(b, s, a["order"], b.load(j))
            b.store(b.add(b.load(cands), U.i64(1)), cands)


def _keep_unless_suppressed(b, a, box, boxes_at, iou_max, center, n_kept, count, bt, cl):
    keep = entry_alloca(b, U.I1, "keep")
    b.store(ir.Constant(U.I1, 1), keep)
    with U.for_range(b, U.i64(0), b.load(n_kept), name="q") as q:
        other = U.load(b, a["kept"], q, U.I64)
        over = _iou_above(b, a["boxes"], boxes_at, box, other, iou_max, center)
        b.store(b.and_(b.load(keep), b.not_(over)), keep)
    with b.if_then(b.load(keep)):
        k = b.load(n_kept)
        U.store(b, box, a["kept"], k)
        b.store(b.add(k, U.i64(1)), n_kept)
        row = b.mul(b.load(count), U.i64(3))
        for col, v in enumerate((bt, cl, box)):
            U.store(b, v, a["out"], b.add(row, U.i64(col)))
        b.store(b.add(b.load(count), U.i64(1)), count)


def _extent(b, boxes, at, center: bool, axis: int) -> tuple[ir.Value, ir.Value]:
    """(min, max) of a box along x (axis 1) or y (axis 0)."""
    c = [U.load(b, boxes, b.add(at, U.i64(k)), U.F32) for k in range(4)]
    if center:  # [x_center, y_center, width, height]
        mid, half = c[1 - axis], b.fmul(c[3 - axis], U.f32(0.5))
        return b.fsub(mid, half), b.fadd(mid, half)
    lo, hi = c[axis], c[axis + 2]  # [y1, x1, y2, x2], either corner first
    return U.fmin(b, lo, hi), U.fmax(b, lo, hi)


def _iou_above(b, boxes, boxes_at, i, j, iou_max, center: bool) -> ir.Value:
    """IoU(box i, box j) > iou_max, false for empty boxes or no overlap."""
    at_i, at_j = (b.add(boxes_at, b.mul(k, U.i64(4))) for k in (i, j))
    sides, areas_i, areas_j = [], [], []
    for axis in (1, 0):
        lo_i, hi_i = _extent(b, boxes, at_i, center, axis)
        lo_j, hi_j = _extent(b, boxes, at_j, center, axis)
        sides.append(b.fsub(U.fmin(b, hi_i, hi_j), U.fmax(b, lo_i, lo_j)))
        areas_i.append(b.fsub(hi_i, lo_i))
        areas_j.append(b.fsub(hi_j, lo_j))
    zero = U.f32(0.0)
    overlap = b.and_(b.fcmp_ordered(">", sides[0], zero), b.fcmp_ordered(">", sides[1], zero))
    inter = b.fmul(sides[0], sides[1])
    area_i, area_j = b.fmul(*areas_i), b.fmul(*areas_j)
    union = b.fsub(b.fadd(area_i, area_j), inter)
    valid = b.and_(b.and_(b.fcmp_ordered(">", area_i, zero), b.fcmp_ordered(">", area_j, zero)),
                   b.and_(overlap, b.fcmp_ordered(">", union, zero)))
    above = b.fcmp_ordered(">", b.fdiv(inter, b.select(valid, union, U.f32(1.0))), iou_max)
    return b.and_(valid, above)
