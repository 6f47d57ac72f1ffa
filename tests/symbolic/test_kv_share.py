"""A KV cache shared by past and present (issue 11, item 5): GPT-2 from
`transformers` decodes with one buffer per pair bound through IO binding,
token for token like onnxruntime and like the copying path; a step writes its
new rows and nothing else; bad bindings are refused before native code runs."""

from __future__ import annotations

import numpy as np
import pytest
from tests_support import need_modules

PROMPT = [11, 400, 27, 3, 999]
LAYERS, HEADS, HEAD = 2, 4, 16


@pytest.fixture(scope="module")
def model():
    need_modules("torch", "transformers", "onnxruntime", "onnxscript")
    from tinyc.testing.llm_models import gpt2_with_kv_cache

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYC_CACHE_DIR", "off")  # count compiles, not cache hits
        yield gpt2_with_kv_cache(layers=LAYERS, hidden=HEADS * HEAD, heads=HEADS, vocab=1000)


@pytest.fixture(scope="module")
def sess(model):
    import tinyc

    return tinyc.InferenceSession(model, target="x86",
                                  options=tinyc.CompileOptions(threads=1, share_kv_cache=True))


@pytest.fixture(scope="module")
def ort_sess(model):
    import onnxruntime as ort

    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def step_feeds(model, past_len: int, rng) -> dict[str, np.ndarray]:
    from tinyc.testing.llm_models import empty_past

    feeds = {"input_ids": np.array([[7]], np.int64),
             "attention_mask": np.ones((1, past_len + 1), np.int64)}
    for n, a in empty_past(model, length=past_len).items():
        feeds[n] = rng.standard_normal(a.shape).astype(np.float32)
    return feeds


def test_shared_cache_decodes_like_onnxruntime_and_the_copying_path(model, sess, ort_sess):
    import tinyc
    from tinyc.testing.kv_cache import SharedCacheStep
    from tinyc.testing.llm_models import empty_past, greedy_decode

    past = empty_past(model)
    want = greedy_decode(ort_sess, PROMPT, 40, past=past, keep_logits=True)
    shared = greedy_decode(SharedCacheStep(sess, past, capacity=64), PROMPT, 40, past=past,
                           keep_logits=True)
    copying = greedy_decode(sess, PROMPT, 40, past=past, keep_logits=True)  # new presents
    concat = tinyc.InferenceSession(model, target="x86",
                                    options=tinyc.CompileOptions(share_kv_cache=False))
    concat_run = greedy_decode(concat, PROMPT, 40, past=past, keep_logits=True)
    assert shared.tokens == copying.tokens == concat_run.tokens == want.tokens
    for a, b, c, w in zip(shared.logits, copying.logits, concat_run.logits, want.logits,
                          strict=True):
        assert np.array_equal(a, b)  # the same kernels, the same rows
        assert np.abs(a - w).max() < 1e-3 and np.abs(a - c).max() < 1e-4
    assert sess.compile_count == 1
    pairs = sess.artifact.meta["symbolic"]["kv_share"]["pairs"]
    assert len(pairs) == 2 * LAYERS
    assert "kv_share" not in concat.artifact.meta["symbolic"]


def test_a_step_writes_only_its_new_rows_and_copies_nothing(model, sess, ort_sess, monkeypatch):
    from tinyc.runtime import kv_share

    rng = np.random.default_rng(0)
    past_len, cap = 6, 10
    feeds = step_feeds(model, past_len, rng)
    want = dict(zip([o.name for o in ort_sess.get_outputs()], ort_sess.run(None, feeds),
                    strict=True))
    io = sess.io_binding()
    io.bind_output("logits")
    buffers = {}
    for n in feeds:
        if n.startswith("past_key_values."):
            buf = np.full((1, HEADS, cap, HEAD), np.nan, np.float32)
            buf[:, :, :past_len] = feeds[n]
            buffers[n] = buf
            io.bind_kv_cache(n, "present." + n.split(".", 1)[1], buf, past_len, 1)
        else:
            io.bind_cpu_input(n, feeds[n])
    before = {n: b.copy() for n, b in buffers.items()}

    def no_copy(*args, **kwargs):
        raise AssertionError("the shared past was copied")

    monkeypatch.setattr(kv_share.np, "copyto", no_copy)
    sess.run_with_iobinding(io)
    logits, *presents = io.get_outputs()
    assert np.abs(logits - want["logits"]).max() < 1e-4
    for n, buf in buffers.items():
        present = want["present." + n.split(".", 1)[1]]
        assert np.array_equal(buf[:, :, :past_len], before[n][:, :, :past_len])
        assert np.abs(buf[:, :, past_len] - present[:, :, past_len]).max() < 1e-5
        assert np.isnan(buf[:, :, past_len + 1:]).all()  # beyond the new row: untouched
    assert all(p.base is not None and np.shares_memory(p, buffers[n])
               for p, n in zip(presents, buffers, strict=True))


def test_a_past_in_other_arrays_is_copied_into_the_bound_buffers(model, sess, ort_sess):
    rng = np.random.default_rng(1)
    feeds = step_feeds(model, 5, rng)
    want = ort_sess.run(None, feeds)
    io = sess.io_binding()
    io.bind_output("logits")
    for n, a in feeds.items():
        io.bind_cpu_input(n, a)
        if n.startswith("past_key_values."):
            io.bind_output("present." + n.split(".", 1)[1],
                           buffer_ptr=np.zeros((1, HEADS, 12, HEAD), np.float32)[:, :, :6])
    sess.run_with_iobinding(io)
    for got, w in zip(io.get_outputs(), want, strict=True):
        assert np.abs(got - w).max() < 1e-4


def _bind_all(io, feeds, buffers, past_len, new_len=1):
    for n, a in feeds.items():
        if n in buffers:
            io.bind_kv_cache(n, "present." + n.split(".", 1)[1], buffers[n], past_len, new_len)
        else:
            io.bind_cpu_input(n, a)


def test_bad_bindings_are_refused_before_native_code_runs(model, sess):
    import tinyc

    rng = np.random.default_rng(2)
    feeds = step_feeds(model, 4, rng)
    pasts = [n for n in feeds if n.startswith("past_key_values.")]

    def buffers(cap=8, dtype=np.float32, heads=HEADS, odd=None):
        return {n: np.zeros((1, heads, (cap if n != odd else cap + 1), HEAD), dtype)
                for n in pasts}

    io = sess.io_binding()
    with pytest.raises(tinyc.InputError, match="capacity of 4 rows"):
        _bind_all(io, feeds, buffers(cap=4), past_len=4)  # 4 + 1 rows into 4
    cases = {"dtype float64": buffers(dtype=np.float64),
             "shape": buffers(heads=HEADS - 1),
             "different capacities": buffers(odd=pasts[1])}
    for message, bufs in cases.items():
        io = sess.io_binding()
        io.bind_output("logits")
        _bind_all(io, feeds, bufs, past_len=4)
        with pytest.raises(tinyc.InputError, match=message):
            sess.run_with_iobinding(io)
    # views the native code would misread: rows not contiguous, or one row past the end
    io = sess.io_binding()
    _bind_all(io, feeds, buffers(), past_len=4)
    name = "present." + pasts[0].split(".", 1)[1]
    wide = np.zeros((1, HEADS, 8, 2 * HEAD), np.float32)[..., :HEAD]
    io.bind_output(name, buffer_ptr=wide[:, :, :5])
    with pytest.raises(tinyc.InputError, match="not a run of rows"):
        sess.run_with_iobinding(io)
    short = np.zeros((1, HEADS, 4, HEAD), np.float32)
    io.bind_output(name, buffer_ptr=short[:, :, :5])  # numpy clamps the view to 4 rows
    with pytest.raises(tinyc.InputError, match="this run writes"):
        sess.run_with_iobinding(io)


def cache_attention_model(heads: int, head: int):
    """y = softmax(q @ present^T) @ present, present = Concat(past, new): the
    pattern alone, batch / seq / past symbolic, odd sizes for the kernels' tails."""
    from onnx import TensorProto as TP
    from onnx import helper as h

    def vi(name, dims):
        return h.make_tensor_value_info(name, TP.FLOAT, dims)

    nodes = [h.make_node("Concat", ["past", "new"], ["present"], axis=-2),
             h.make_node("Transpose", ["present"], ["kt"], perm=[0, 1, 3, 2]),
             h.make_node("MatMul", ["q", "kt"], ["s"]),
             h.make_node("Softmax", ["s"], ["p"], axis=-1),
             h.make_node("MatMul", ["p", "present"], ["y"])]
    graph = h.make_graph(
        nodes, "cache_attention",
        [vi("past", ["batch", heads, "past", head]), vi("new", ["batch", heads, "seq", head]),
         vi("q", ["batch", heads, "seq", head])],
        [vi("y", ["batch", heads, "seq", head]), vi("present", ["batch", heads, "total", head])])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def test_odd_sizes_batches_and_prefills_read_the_cache_rows_in_place():
    need_modules("onnxruntime")
    import onnxruntime as ort

    import tinyc

    heads, head, cap = 3, 19, 40
    model = cache_attention_model(heads, head)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(model, target="x86",
                                  options=tinyc.CompileOptions(share_kv_cache=True))
    rng = np.random.default_rng(3)
    buf = np.full((2, heads, cap, head), np.nan, np.float32)
    past_len = 0
    for seq in (5, 1, 1, 7, 1):  # a prefill, decode steps, a chunk of 7 rows
        new, q = (rng.standard_normal((2, heads, seq, head)).astype(np.float32)
                  for _ in range(2))
        want_y, want_present = ref.run(None, {"past": buf[:, :, :past_len].copy(),
                                              "new": new, "q": q})
        io = sess.io_binding()
        io.bind_cpu_input("new", new)
        io.bind_cpu_input("q", q)
        io.bind_output("y")
        io.bind_kv_cache("past", "present", buf, past_len, seq)
        sess.run_with_iobinding(io)
        y, present = io.get_outputs()
        assert np.abs(y - want_y).max() < 1e-5
        assert np.array_equal(present, want_present)  # the rows, copied exactly
        past_len += seq
        assert np.isnan(buf[:, :, past_len:]).all()
    assert sess.compile_count == 1 and "kv_share" in sess.artifact.meta["symbolic"]
