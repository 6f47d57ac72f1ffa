"""ONNX DequantizeLinear and QuantizeLinear with block_size (opset 21+), written
as standard ops.

    y = (x - zero_point[block(i)]) * scale[block(i)],  block(i) = i // block_size
    along `axis`; scale and zero_point have x's shape with that axis
    ceil(x.shape[axis] / block_size) long.

Three forms, best first:
- DequantizeLinear(constant 4- or 8-bit weight [K, N], blocks along K) feeding
  the B input of a MatMul: the pair becomes com.microsoft MatMulNBits (the
  weight repacked once, at compile time, into its [N, k_blocks, blob] layout),
  so the weight stays 4-bit and the weight-only kernel computes it;
- other constant operands: dequantized once, at compile time, into a float
  constant (as onnxruntime's constant folding would);
- run-time operands: scale and zero point are gathered per element along the
  axis (Gather with i // block_size), then y = (CastLike(x) - zp) * scale; the
  subtraction is exact in float for every integer type up to 16 bits.

QuantizeLinear: y = saturate(round_half_even(x / scale[block(i)]) + zp[block(i)])
to an integer type (that of the zero point, else output_dtype, else uint8), as
onnxruntime computes it (a division, then rounding); Div, Round, Add, Clip, Cast.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .llm_emit import Emitter, attr, inputs, refuse

MS = "com.microsoft"
_SIGNED = {onnx.TensorProto.INT4: 4, onnx.TensorProto.INT8: 8}
_UNSIGNED = {onnx.TensorProto.UINT4: 4, onnx.TensorProto.UINT8: 8}


def is_blocked(node: onnx.NodeProto) -> bool:
    return node.op_type in ("DequantizeLinear", "QuantizeLinear") \
        and node.domain in ("", "ai.onnx") and bool(attr(node, "block_size", 0))


def element_types(g: onnx.GraphProto) -> dict[str, int]:
    """The element type of each value the graph declares (inputs, initializers,
    value_info, outputs)."""
    types = {t.name: t.data_type for t in g.initializer}
    for vi in (*g.input, *g.value_info, *g.output):
        if vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    return types


def decompose_blocked_quantize(em: Emitter, types: dict[str, int]) -> None:
    node = em.node
    x, scale, zero_point = inputs(node, 3)
    block, axis = int(attr(node, "block_size")), int(attr(node, "axis", 1))
    out = types.get(zero_point) if zero_point else int(attr(node, "output_dtype", 0)) \
        or onnx.TensorProto.UINT8
    if out is None:
        raise refuse(node, "a zero point of unknown element type")
    if out not in _RANGES:
        raise refuse(node, f"blocked quantization to {onnx.TensorProto.DataType.Name(out)} "
                           "(integer types are supported)")
    idx = _block_of_each(em, x, axis, block)
    s_rep = em.op("Gather", [scale, idx], axis=axis)
    value = em.op("Round", [em.op("Div", [x, s_rep])])
    if zero_point:
        zp_rep = em.op("CastLike", [em.op("Gather", [zero_point, idx], axis=axis), s_rep])
        value = em.op("Add", [value, zp_rep])
    lo, hi = _RANGES[out]
    bounds = [em.op("CastLike", [em.const(np.float32(b), hint="bound"), s_rep]) for b in (lo, hi)]
    em.op("Cast", [em.op("Clip", [value, *bounds])], node.output[0], to=out)


_RANGES = {onnx.TensorProto.INT4: (-8, 7), onnx.TensorProto.UINT4: (0, 15),
           onnx.TensorProto.INT8: (-128, 127), onnx.TensorProto.UINT8: (0, 255),
           onnx.TensorProto.INT16: (-32768, 32767), onnx.TensorProto.UINT16: (0, 65535)}


def decompose_blocked_dequantize(em: Emitter) -> None:
    node = em.node
    x, scale, zero_point = inputs(node, 3)
    block, axis = int(attr(node, "block_size")), int(attr(node, "axis", 1))
    if block <= 0:
        raise refuse(node, f"block_size={block}")
    q, s = em.constant_value(x), em.constant_value(scale)
    zp = em.constant_value(zero_point) if zero_point else None
    if q is not None and s is not None and (zp is not None or not zero_point):
        y = dequantize_blocked(q, s, zp, axis, block)
        em.op("Identity", [em.const(y, hint="dequantized")], node.output[0])
        return
    idx = _block_of_each(em, x, axis, block)
    s_rep = em.op("Gather", [scale, idx], axis=axis)
    value = em.op("CastLike", [x, s_rep])
    if zero_point:
        zp_rep = em.op("CastLike", [em.op("Gather", [zero_point, idx], axis=axis), s_rep])
        value = em.op("Sub", [value, zp_rep])
    em.op("Mul", [value, s_rep], node.output[0])


def _block_of_each(em: Emitter, x: str, axis: int, block: int) -> str:
    """int64 [x.shape[axis]]: i // block."""
    end = {} if axis == -1 else {"end": axis + 1}
    n = em.op("Squeeze", [em.op("Shape", [x], start=axis, **end)])
    steps = em.op("Range", [em.const(0, np.int64, "zero"), n, em.const(1, np.int64, "one")])
    return em.op("Div", [steps, em.const(block, np.int64, "block")])


def dequantize_blocked(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
                       axis: int, block: int) -> np.ndarray:
    """The float result (scale's type), computed in float32 as onnxruntime does."""
    axis %= q.ndim
    if scale.ndim != q.ndim or -(-q.shape[axis] // block) != scale.shape[axis]:
        raise ValueError(f"scale {scale.shape} does not block x {q.shape} by {block} "
                         f"along axis {axis}")
    idx = np.arange(q.shape[axis]) // block
    value = q.astype(np.float32)
    if zero_point is not None:
        value = value - np.take(zero_point.astype(np.float32), idx, axis=axis)
    out = value * np.take(scale.astype(np.float32), idx, axis=axis)
    return out.astype(scale.dtype)


def fuse_blocked_matmuls(proto: onnx.ModelProto, inits: dict[str, onnx.TensorProto]) -> None:
    """MatMul(A, DequantizeLinear(constant [K, N] weight, blocks along K)) ->
    MatMulNBits, in place; a DequantizeLinear left without consumers goes."""
    g = proto.graph
    producers = {n.output[0]: n for n in g.node
                 if is_blocked(n) and n.op_type == "DequantizeLinear"}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    nodes, packed = [], {}  # DequantizeLinear output -> its MatMulNBits operands
    for n in g.node:
        dq = producers.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) == 2 else None
        if dq is not None and dq.output[0] not in packed:
            packed[dq.output[0]] = _matmul_nbits_operands(dq, inits)
            for t in (packed[dq.output[0]] or (None, []))[1]:
                g.initializer.append(t)
                inits[t.name] = t
        operands = packed.get(dq.output[0]) if dq is not None else None
        if operands is None:
            nodes.append(n)
            continue
        attrs, tensors = operands
        nodes.append(helper.make_node("MatMulNBits", [n.input[0], *(t.name for t in tensors)],
                                      list(n.output), name=n.name or n.output[0], domain=MS,
                                      **attrs))
        uses[dq.output[0]] -= 1
    fused = any(v is not None for v in packed.values())
    outputs = {o.name for o in g.output}
    dead = {o for o, n in producers.items() if uses.get(o, 0) == 0 and o not in outputs
            and packed.get(o) is not None}
    kept = [n for n in nodes if not (n.op_type == "DequantizeLinear" and n.output
                                     and n.output[0] in dead)]
    del g.node[:]
    g.node.extend(kept)
    if fused and not any(o.domain == MS for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid(MS, 1))


def _matmul_nbits_operands(dq: onnx.NodeProto, inits: dict):
    """(MatMulNBits attributes, its B / scales / zero_points initializers), or None
    when the weight does not map onto its layout (the DequantizeLinear is then
    dequantized)."""
    x, scale, zero_point = inputs(dq, 3)
    tensors = [inits.get(x), inits.get(scale), inits.get(zero_point) if zero_point else None]
    if tensors[0] is None or tensors[1] is None or (zero_point and tensors[2] is None):
        return None
    dtype = tensors[0].data_type
    bits = _SIGNED.get(dtype) or _UNSIGNED.get(dtype)
    block, axis = int(attr(dq, "block_size")), int(attr(dq, "axis", 1))
    q, s = numpy_helper.to_array(tensors[0]), numpy_helper.to_array(tensors[1])
    if bits is None or q.ndim != 2 or axis not in (0, -2) or block < 16 or block & (block - 1) \
            or q.shape[0] % block or s.shape != (q.shape[0] // block, q.shape[1]) \
            or s.dtype != np.float32:
        return None
    k, n = q.shape
    offset = (1 << (bits - 1)) if dtype in _SIGNED else 0  # signed codes -> unsigned
    codes = (q.astype(np.int32) + offset).T  # [N, K]
    zp = numpy_helper.to_array(tensors[2]).astype(np.int32) + offset if zero_point \
        else np.full(s.shape, offset, np.int32)
    prefix = (dq.name or dq.output[0]) + "/matmul_nbits"
    b = _pack(codes, bits).reshape(n, k // block, block * bits // 8)
    names = [f"{prefix}/B", f"{prefix}/scales", f"{prefix}/zero_points"]
    new = [numpy_helper.from_array(b, names[0]),
           numpy_helper.from_array(np.ascontiguousarray(s.T).reshape(-1), names[1]),
           numpy_helper.from_array(_pack_zero_points(zp.T, bits), names[2])]
    return {"K": k, "N": n, "bits": bits, "block_size": block}, new


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [rows, cols * bits / 8]: `bits`-bit codes, the lowest bits first."""
    if bits == 8:
        return codes.astype(np.uint8)
    v = codes.astype(np.uint8).reshape(codes.shape[0], -1, 2)
    return (v[..., 0] | (v[..., 1] << 4)).astype(np.uint8)


def _pack_zero_points(zp: np.ndarray, bits: int) -> np.ndarray:
    """[N, k_blocks] -> MatMulNBits' [N * ceil(k_blocks * bits / 8)] bytes."""
    if bits == 4 and zp.shape[1] % 2:
        zp = np.concatenate([zp, np.zeros((zp.shape[0], 1), zp.dtype)], axis=1)
    return _pack(zp, bits).reshape(-1)
