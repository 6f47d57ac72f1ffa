"""com.microsoft MultiHeadAttention against onnxruntime: the forms the exporters
emit (self-attention with a KV cache, cross-attention on fresh or cached
encoder keys), with masks, bias and scale; the others refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
from genai_cases import Case, assert_close, model, run_both
from tests_support import need_modules

import tinyc
from tinyc.errors import UnsupportedOpsError

rng = np.random.default_rng(1)
B, N, H = 2, 4, 8
D = N * H


def randn(*shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture(autouse=True)
def _ort():
    need_modules("onnxruntime")


def _mha(s: int, kv: int, past: int = 0, attrs: dict | None = None, bias: bool = False,
         pad: str = "", attn_bias: bool = False, cached_kv: bool = False, dv: int = D) -> Case:
    """One MultiHeadAttention: query [B, s, D], keys [B, kv, D] (or [B, N, kv, H]
    when cached_kv), a past of `past` positions, and the optional inputs."""
    total = past + kv
    ins: list = [randn(B, s, D), None, None, None, None, None, None, None]
    if cached_kv:
        ins[1], ins[2] = randn(B, N, kv, H), randn(B, N, kv, dv // N)
    else:
        ins[1], ins[2] = randn(B, kv, D), randn(B, kv, dv)
    if bias:
        ins[3] = randn(2 * D + dv)
    if pad == "lengths":
        ins[4] = np.array([total, max(total - 2, 1)], np.int32)
    elif pad == "2d":
        ins[4] = (rng.random((B, total)) > 0.3).astype(np.int32)
        ins[4][:, -1] = 1
    elif pad == "3d":
        ins[4] = (rng.random((B, s, total)) > 0.3).astype(np.int32)
    if attn_bias:
        ins[5] = randn(1, N, s, total)
    if past:
        ins[6], ins[7] = randn(B, N, past, H), randn(B, N, past, dv // N)
    while ins[-1] is None:
        ins.pop()
    return Case("MultiHeadAttention", ins, (3,) if bias else (),
                {"num_heads": N, **(attrs or {})}, outputs=3)


@pytest.mark.parametrize("s,past", [(5, 0), (1, 6), (3, 4)], ids=["prefill", "decode",
                                                                  "chunk"])
def test_decoder_self_attention_with_a_cache(s, past):
    causal = {"unidirectional": 1}
    cases = [_mha(s, s, past, causal),
             _mha(s, s, past, causal, bias=True),
             _mha(s, s, past, causal | {"scale": 0.2}, pad="2d"),
             _mha(s, s, past, causal, pad="lengths", attn_bias=True),
             _mha(s, s, past, {}, bias=True, pad="3d")]
    want, got = run_both(cases)
    assert_close(want, got, rtol=1e-4, atol=1e-5, what="MHA self-attention")


def test_cross_attention_fresh_and_cached_encoder_keys():
    cases = [_mha(3, 7), _mha(1, 7, bias=True, dv=2 * D), _mha(3, 7, pad="2d"),
             _mha(3, 7, cached_kv=True), _mha(1, 9, cached_kv=True, pad="lengths"),
             _mha(2, 5, cached_kv=True, attn_bias=True, attrs={"mask_filter_value": -1e9})]
    want, got = run_both(cases)
    assert_close(want, got, rtol=1e-4, atol=1e-5, what="MHA cross-attention")


def test_fully_masked_rows_match_onnxruntime():
    every_key = _mha(3, 3, 0, {"unidirectional": 1}, pad="2d")
    every_key.inputs[4][0] = 0  # all of entry 0 padding: mask_filter_value, not -inf
    first_key = _mha(4, 4, 0, {"unidirectional": 1}, pad="2d")
    first_key.inputs[4][:] = 1
    first_key.inputs[4][:, 0] = 0  # query 0's one key is padding; the causal mask still holds
    want, got = run_both([every_key, first_key])
    assert_close(want, got, rtol=1e-4, atol=1e-5, what="MHA fully masked")


def test_packed_forms_match_the_unpacked_node():
    """Packed QKV / KV (onnxruntime's CPU kernel lacks them): against onnxruntime
    on the same values unpacked."""
    import onnxruntime as ort

    s, kv, past = 3, 5, 2
    q, k, v = randn(B, s, D), randn(B, s, D), randn(B, s, D)
    k_x, v_x, bias = randn(B, kv, D), randn(B, kv, D), randn(3 * D)
    past_k, past_v = randn(B, N, past, H), randn(B, N, past, H)

    def pack(*xs):  # [B, L, D] each -> [B, L, N, len(xs), H]
        return np.stack([x.reshape(x.shape[0], x.shape[1], N, H) for x in xs], axis=3)

    causal = {"num_heads": N, "unidirectional": 1}
    unpacked = [Case("MultiHeadAttention", [q, k, v, bias, None, None, past_k, past_v], (3,),
                     causal, outputs=3),
                Case("MultiHeadAttention", [q, k_x, v_x], attrs={"num_heads": N})]
    packed = [Case("MultiHeadAttention", [pack(q, k, v), None, None, bias, None, None, past_k,
                                          past_v], (3,), causal, outputs=3),
              Case("MultiHeadAttention", [q, pack(k_x, v_x)], attrs={"num_heads": N})]
    proto, feeds, names = model(unpacked)
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(names, feeds)
    proto, feeds, names = model(packed)
    got = tinyc.InferenceSession(proto.SerializeToString(), target="x86").run(names, feeds)
    assert_close(want, got, rtol=1e-4, atol=1e-5, what="packed MHA")


@pytest.mark.parametrize("case,why", [
    (Case("MultiHeadAttention", [randn(1, N, 2, H), randn(1, N, 2, H), randn(1, N, 2, H)],
          attrs={"num_heads": N}), "4-D query"),
    (Case("MultiHeadAttention", [randn(1, 2, D), randn(1, 2, N, 2, H), None, randn(3 * D)],
          (3,), {"num_heads": N}), "packed KV with a value or a bias"),
    (Case("MultiHeadAttention", [randn(1, 2, D), randn(1, N, 2, H), randn(1, N, 2, H),
                                 randn(3 * D)], (3,), {"num_heads": N}),
     "with a bias or a past"),
    (Case("MultiHeadAttention", [randn(1, 2, D), randn(1, 2, D), randn(1, 2, D)],
          attrs={"num_heads": N}, outputs=4), "qk output"),
])
def test_other_forms_are_refused_clearly(case, why):
    proto, _, _ = model([case])
    with pytest.raises(UnsupportedOpsError, match=why):
        tinyc.compile(proto.SerializeToString(), target="x86")


def test_one_compile_serves_every_cache_length():
    """A decoder layer's MultiHeadAttention with symbolic batch / lengths (the
    causal mask and key padding are built at run time); the past's head dim, a
    dim_param, is pinned to the head size."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    F, I32 = TensorProto.FLOAT, TensorProto.INT32
    w = numpy_helper.from_array(randn(D, 3 * D), "w_qkv")
    nodes = [helper.make_node("MatMul", ["x", "w_qkv"], ["qkv"]),
             helper.make_node("Split", ["qkv"], ["q", "k", "v"], axis=-1, num_outputs=3),
             helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "mask", "", "past_k",
                                                     "past_v"], ["y", "present_k", "present_v"],
                              domain="com.microsoft", num_heads=N, unidirectional=1)]
    ins = [helper.make_tensor_value_info("x", F, ["batch", "seq", D]),
           helper.make_tensor_value_info("mask", I32, ["batch", "total"]),
           helper.make_tensor_value_info("past_k", F, ["batch", N, "past", "head"]),
           helper.make_tensor_value_info("past_v", F, ["batch", N, "past", "head"])]
    outs = [helper.make_tensor_value_info(name, F, None)
            for name in ("y", "present_k", "present_v")]
    proto = helper.make_model(helper.make_graph(nodes, "layer", ins, outs, [w]),
                              opset_imports=[helper.make_opsetid("", 21),
                                             helper.make_opsetid("com.microsoft", 1)])
    proto.ir_version = 10
    data = proto.SerializeToString()
    ours = tinyc.InferenceSession(data, target="x86")
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for batch, seq, past in [(1, 5, 0), (2, 1, 7), (2, 3, 2)]:
        mask = np.ones((batch, past + seq), np.int32)
        mask[-1, :1] = 0  # left padding of the last entry
        feeds = {"x": randn(batch, seq, D), "mask": mask, "past_k": randn(batch, N, past, H),
                 "past_v": randn(batch, N, past, H)}
        assert_close(theirs.run(None, feeds), ours.run(None, feeds), rtol=1e-4, atol=1e-5,
                     what=f"batch {batch} seq {seq} past {past}")
    bad = {"x": randn(1, 1, D), "mask": np.ones((1, 3), np.int32),
           "past_k": randn(1, N, 2, H + 1), "past_v": randn(1, N, 2, H + 1)}
    with pytest.raises(tinyc.errors.TinycError):
        ours.run(None, bad)
    short_mask = {"x": randn(2, 3, D), "mask": np.ones((2, 3), np.int32),  # the new keys only
                  "past_k": randn(2, N, 3, H), "past_v": randn(2, N, 3, H)}
    with pytest.raises(tinyc.errors.TinycError) as refused:
        ours.run(None, short_mask)
    print("a [B, L] mask with a past:", refused.value)


def test_cached_cross_attention_keys_with_a_symbolic_head_dim_are_pinned():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    F = TensorProto.FLOAT
    node = helper.make_node("MultiHeadAttention", ["q", "enc_k", "enc_v"], ["y"],
                            domain="com.microsoft", num_heads=N)
    ins = [helper.make_tensor_value_info("q", F, ["batch", "seq", D])] + [
        helper.make_tensor_value_info(n, F, ["batch", N, "enc", "head"])
        for n in ("enc_k", "enc_v")]
    proto = helper.make_model(
        helper.make_graph([node], "cross", ins, [helper.make_tensor_value_info("y", F, None)]),
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    proto.ir_version = 10
    data = proto.SerializeToString()
    feeds = {"q": randn(2, 1, D), "enc_k": randn(2, N, 6, H), "enc_v": randn(2, N, 6, H)}
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    ours = tinyc.InferenceSession(data, target="x86")
    assert_close(want, ours.run(None, feeds), rtol=1e-4, atol=1e-5, what="cross, symbolic head")
    feeds["enc_k"], feeds["enc_v"] = randn(2, N, 6, 2 * H), randn(2, N, 6, 2 * H)
    with pytest.raises(tinyc.errors.TinycError):
        ours.run(None, feeds)
