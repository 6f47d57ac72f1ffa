"""One-node cases of onnxruntime's LLM contrib ops, merged into one model per test
(one tinyc compile for many cases) and checked against onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto, helper, numpy_helper

_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
          np.dtype(np.int32): TensorProto.INT32, np.dtype(np.uint8): TensorProto.UINT8}
MS = "com.microsoft"


@dataclass
class Case:
    op: str
    inputs: list  # np arrays; None for an omitted optional input
    consts: tuple[int, ...] = ()  # positions that are initializers
    attrs: dict = field(default_factory=dict)
    outputs: int = 1
    domain: str = MS
    skip_outputs: tuple[int, ...] = ()  # positions left unnamed (not requested)


def model(cases: list[Case], opset: int = 22):
    """(ModelProto, feeds, output names) for all cases side by side."""
    nodes, inits, ins, outs, feeds = [], [], [], [], {}
    for c, case in enumerate(cases):
        names = []
        for k, a in enumerate(case.inputs):
            if a is None:
                names.append("")
                continue
            name = f"c{c}_in{k}"
            names.append(name)
            if k in case.consts:
                inits.append(numpy_helper.from_array(a, name))
            else:
                ins.append(helper.make_tensor_value_info(name, _TYPES[a.dtype], a.shape))
                feeds[name] = a
        out = ["" if k in case.skip_outputs else f"c{c}_out{k}" for k in range(case.outputs)]
        nodes.append(helper.make_node(case.op, names, out, domain=case.domain,
                                      name=f"case{c}", **case.attrs))
        outs += [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in out if o]
    graph = helper.make_graph(nodes, "cases", ins, outs, inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid(MS, 1)])
    proto.ir_version = 10
    return proto, feeds, [o.name for o in outs]


def run_both(cases: list[Case], opset: int = 22):
    """(onnxruntime's outputs, tinyc's outputs), in case order."""
    import onnxruntime as ort

    import tinyc

    proto, feeds, names = model(cases, opset)
    data = proto.SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(names, feeds)
    got = tinyc.InferenceSession(data, target="x86").run(names, feeds)
    return want, got


def assert_close(want, got, rtol=1e-5, atol=1e-5, what=""):
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        assert w.shape == g.shape, (what, k, w.shape, g.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{what} output {k}")


def quantize(w: np.ndarray, bits: int, block: int, zero_points: str, rng):
    """(B, scales, zero_points) of an [N, K] float weight in MatMulNBits' layout;
    zero_points "none" (symmetric, default 2^(bits-1)), "uint8" (packed) or "float"."""
    n, k = w.shape
    blocks = -(-k // block)
    padded = np.zeros((n, blocks * block), np.float32)
    padded[:, :k] = w
    levels = (1 << bits) - 1
    lo, hi = padded.reshape(n, blocks, block).min(-1), padded.reshape(n, blocks, block).max(-1)
    if zero_points == "none":  # symmetric: q - 2^(bits-1) in [-2^(bits-1), 2^(bits-1) - 1]
        scale = np.maximum(np.maximum(-lo, hi), 1e-3) / ((1 << (bits - 1)) - 1)
        zero = np.full((n, blocks), 1 << (bits - 1))
    else:
        scale = np.maximum(hi - lo, 1e-3) / levels
        zero = np.clip(np.round(-lo / scale), 0, levels)
    q = np.clip(np.round(padded.reshape(n, blocks, block) / scale[..., None] + zero[..., None]),
                0, levels).astype(np.uint8)
    packed = _pack(q.reshape(n, -1), bits).reshape(n, blocks, block * bits // 8)
    scales = scale.astype(np.float32).reshape(-1)
    if zero_points == "none":
        return packed, scales, None
    if zero_points == "float":
        return packed, scales, zero.astype(np.float32).reshape(-1)
    per_byte = 8 // bits
    zrow = np.zeros((n, -(-blocks // per_byte) * per_byte), np.uint8)
    zrow[:, :blocks] = zero
    return packed, scales, _pack(zrow, bits).reshape(-1)


def _pack(values: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return values.astype(np.uint8)
    per_byte = 8 // bits
    v = values.reshape(values.shape[0], -1, per_byte).astype(np.uint16)
    shifts = np.arange(per_byte) * bits
    return (v << shifts).sum(-1).astype(np.uint8)


def rotary_caches(positions: int, half: int) -> tuple[np.ndarray, np.ndarray]:
    inv = 1.0 / (10000 ** (np.arange(half) / half))
    angles = np.arange(positions)[:, None] * inv[None]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
