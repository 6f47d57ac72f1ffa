"""Where tinyc's and onnxruntime's accuracy_level 4 results part, on a builder
model (tinyc.testing.genai_models.llama_genai, int4, level 4), for developers:

    python bench/genai_level4_parts.py [--init-std 0.02] [--layers 8 --hidden 1024]

The 32-token prefill runs node by node, each node a one-node model run by
onnxruntime or by tinyc (onnxruntime node by node gives its whole-graph logits
bit for bit). It prints

  ops    per op of layer 0, fed onnxruntime's inputs: the fraction of outputs
         differing from onnxruntime's and max |diff| / range;
  mixes  the logits' max |diff| / range from onnxruntime's when only the
         MatMulNBits nodes are tinyc's, and when all but those are;
  mlas   a numpy model of MLAS's CompInt8 order (block length 32, AVX-512) on
         the first MatMulNBits: the fraction of its outputs differing from
         onnxruntime's (0: the model is onnxruntime's arithmetic exactly).

docs/quantization.md has the figures. Numbers for notes, not a test; no timing.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import tinyc
from tinyc.compiler import CompileOptions
from tinyc.testing.genai_models import empty_genai_past, llama_genai

SHAPE_OPS = {"Shape", "Gather", "ReduceSum", "Sub", "Cast", "Constant"}


def _one_node_model(model, node, feeds: dict, inits: dict):
    from onnx import TensorProto, helper

    used = [i for i in node.input if i]
    ins = [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(feeds[i].dtype),
                                         list(feeds[i].shape)) for i in used if i not in inits]
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
            for o in node.output if o]
    graph = helper.make_graph([node], "one", ins, outs, [inits[i] for i in used if i in inits])
    one = helper.make_model(graph, opset_imports=list(model.opset_import))
    one.ir_version = model.ir_version
    return one


def _run_node(engine: str, model, node, env: dict, inits: dict, scratch: str) -> list:
    import onnx
    import onnxruntime as ort

    feeds = {i: env[i] for i in node.input if i and i not in inits}
    one = _one_node_model(model, node, feeds, inits)
    outs = [o for o in node.output if o]
    if engine == "tinyc":
        path = os.path.join(scratch, "one.onnx")
        onnx.save(one, path, save_as_external_data=True, location="one.data")
        sess = tinyc.InferenceSession(path, target="x86", options=CompileOptions(threads=1))
        return sess.run(outs, feeds)
    if node.op_type in SHAPE_OPS:  # integer mask arithmetic: any engine gives the same
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(one).run(outs, feeds)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    for o in one.graph.output:  # onnxruntime wants the output types
        o.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return ort.InferenceSession(one.SerializeToString(), so,
                                providers=["CPUExecutionProvider"]).run(outs, feeds)


def prefill(model, feeds: dict, engine_of, scratch: str) -> dict:
    """Every value of the prefill, node by node; engine_of(node) -> 'ort' | 'tinyc'."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    env = dict(feeds)
    for node in model.graph.node:
        if node.op_type == "Constant":
            env[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            continue
        engine = "ort" if node.op_type in SHAPE_OPS else engine_of(node)
        env.update(zip([o for o in node.output if o],
                       _run_node(engine, model, node, env, inits, scratch), strict=True))
    return env


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    span = float(b.max() - b.min()) or 1.0
    return float(np.mean(a != b)), float(np.abs(a - b).max()) / span


def _ops(model, ref: dict, scratch: str) -> None:
    inits = {i.name: i for i in model.graph.initializer}
    print("ops of layer 0, fed onnxruntime's inputs: outputs differing, max |diff| / range")
    seen = set()
    for node in model.graph.node:
        if "/layers.0/" not in node.name or node.op_type in seen:
            continue
        seen.add(node.op_type)
        got = _run_node("tinyc", model, node, ref, inits, scratch)
        for name, value in zip([o for o in node.output if o], got, strict=True):
            share, diff = _diff(value, ref[name])
            print(f"  {node.op_type:34s} {share:6.1%}  {diff:.1e}  {name.split('/')[-1]}")


def _mixes(model, feeds: dict, ref: dict, scratch: str) -> None:
    print("prefill logits, max |diff| / range from onnxruntime's:")
    for label, tinyc_nbits in (("tinyc's MatMulNBits only", True), ("all but MatMulNBits", False)):
        env = prefill(model, feeds, lambda n, t=tinyc_nbits: "tinyc" if (
            n.op_type == "MatMulNBits") == t else "ort", scratch)
        print(f"  {label:26s} {_diff(env['logits'], ref['logits'])[1]:.1e}")


def mlas_order(a: np.ndarray, packed: np.ndarray, scales: np.ndarray,
               zero: int = 8) -> np.ndarray:
    """y = a @ dequantized(weight) in MLAS's CompInt8 order for block length 32 and
    a number of blocks divisible by 4 (AVX-512, 4 columns at a time, no bias):
    per column, 16 float lanes each accumulate fma(float(partial dot of 8 codes),
    sa * sb) over groups of 4 blocks; lanes fold 16 -> 8 -> 2 x 4 -> 1; then a
    float GEMM over blocks adds (sa * sum qa) * (-zero * sb), one fma per block."""
    f32 = np.float32
    rows, k = a.shape
    n, blocks = scales.shape
    if blocks % 4:
        raise ValueError("the model covers whole groups of 4 blocks only")
    codes = np.stack([packed & 15, packed >> 4], -1).reshape(n, blocks, 32).astype(np.int64)
    ab = a.reshape(rows, blocks, 32)
    amax = np.abs(ab).max(-1)
    sa = (amax / f32(127)).astype(f32)
    inverse = np.where(amax != 0, f32(127) / np.where(amax == 0, 1, amax), 0).astype(f32)
    qa = np.rint((ab * inverse[..., None]).astype(f32)).astype(np.int64)
    # value 16h + 8s + 4t + u of a block lands in partial 2h + t (VNNI quads, pairs added)
    partial = (qa[:, None] * codes[None]).reshape(rows, n, blocks, 2, 2, 2, 4)
    partial = partial.sum(axis=(4, 6)).reshape(rows, n, blocks, 4).astype(f32)
    scale = (scales[None] * sa[:, None]).astype(f32)
    lanes = np.zeros((rows, n, 16), f32)
    for group in range(blocks // 4):
        for lane in range(16):
            quarter, e = divmod(lane, 4)
            j = (quarter >= 2) + 2 * (e >= 2)  # block of the group
            b = 4 * group + j
            lanes[..., lane] = _fma(partial[..., b, 2 * (quarter % 2) + e % 2], scale[..., b],
                                    lanes[..., lane])
    eight = (lanes[..., :8] + lanes[..., 8:]).astype(f32)
    halves = []
    for h in (0, 4):
        s = (eight[..., h] + eight[..., h + 1]).astype(f32)
        s = (s + eight[..., h + 2]).astype(f32)
        halves.append((s + eight[..., h + 3]).astype(f32))
    y = (halves[0] + halves[1]).astype(f32)
    a_sums = (sa * qa.sum(-1).astype(f32)).astype(f32)
    b_sums = (-zero * scales).astype(f32)
    zero_term = np.zeros((rows, n), f32)
    for b in range(blocks):
        zero_term = _fma(a_sums[:, b][:, None], b_sums[:, b][None, :], zero_term)
    return (y + zero_term).astype(f32)


def _fma(x, y, z):
    """float32 fused multiply-add (the product is exact in float64; the sum rounds twice,
    which differs from one rounding too rarely to matter here)."""
    return (x.astype(np.float64) * y.astype(np.float64) + z).astype(np.float32)


def _mlas(model, ref: dict) -> None:
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    packed = numpy_helper.to_array(inits[node.input[1]])
    scales = numpy_helper.to_array(inits[node.input[2]]).reshape(packed.shape[0], -1)
    a = ref[node.input[0]].reshape(-1, packed.shape[1] * 32)
    got = mlas_order(a, packed, scales)
    share, diff = _diff(got, ref[node.output[0]].reshape(got.shape))
    print(f"numpy model of MLAS's order on {node.name}: {share:.1%} of outputs differ "
          f"(max {diff:.1e} of the range)")


def main() -> None:
    import onnx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init-std", type=float, default=0.02)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=1024)
    args = p.parse_args()
    heads = max(args.hidden // 64, 1)
    folder = llama_genai("int4", layers=args.layers, hidden=args.hidden, heads=heads,
                         kv_heads=max(heads // 4, 1), intermediate=args.hidden * 11 // 4,
                         vocab=4000, accuracy_level=4, init_std=args.init_std)
    model = onnx.load(f"{folder}/model.onnx")
    prompt = [int(t) for t in np.random.default_rng(0).integers(3, 900, 32)]
    feeds = {"input_ids": np.array([prompt], np.int64),
             "attention_mask": np.ones((1, len(prompt)), np.int64)} | empty_genai_past(folder)
    with tempfile.TemporaryDirectory() as scratch:
        ref = prefill(model, feeds, lambda _: "ort", scratch)
        _ops(model, ref, scratch)
        _mixes(model, feeds, ref, scratch)
    _mlas(model, ref)


if __name__ == "__main__":
    main()
