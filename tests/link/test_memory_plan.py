from __future__ import annotations

from tinyc.codegen.memory_plan import ALIGN, _place_greedy


def test_buffers_with_disjoint_lifetimes_share_memory():
    offsets, arena = _place_greedy({"a": (0, 1), "b": (2, 3)}, {"a": 1000, "b": 1000})
    assert offsets["a"] == offsets["b"] == 0
    assert arena == 1024


def test_overlapping_lifetimes_never_overlap_in_memory():
    intervals = {"a": (0, 2), "b": (1, 3), "c": (2, 4), "d": (5, 6)}
    sizes = {"a": 100, "b": 300, "c": 200, "d": 600}
    offsets, arena = _place_greedy(intervals, sizes)
    for x in intervals:
        for y in intervals:
            (fx, lx), (fy, ly) = intervals[x], intervals[y]
            if x < y and not (lx < fy or ly < fx):
                ex = offsets[x] + sizes[x]
                ey = offsets[y] + sizes[y]
                assert ex <= offsets[y] or ey <= offsets[x], (x, y)
    assert all(o % ALIGN == 0 for o in offsets.values())
    assert arena <= 640 + 320 + 256  # d reuses the space of a, b, c


def test_calls_of_one_node_share_a_scratch_by_tag():

    from tinyc.codegen.kernels.ops.bytes_copy import COPY_BYTES
    from tinyc.codegen.memory_plan import plan_memory
    from tinyc.ir import DType, Graph, Node, TensorType
    from tinyc.program import Buf, Call, LoweredNode, Scratch

    t = TensorType(DType.float32, (4,))
    g = Graph("g", ("x",), ("y",), (Node("Relu", ("x",), ("y",), {}, "n"),), {"x": t, "y": t},
              {}, {})
    calls = [Call(COPY_BYTES, (Scratch("tmp", n), Buf("x"), 16)) for n in (100, 300)]
    calls.append(Call(COPY_BYTES, (Buf("y"), Scratch("tmp", 200), 16)))
    plan = plan_memory(g, [LoweredNode("n", "Relu", ("y",), calls)], {"y": 0})
    keys = {plan.scratch_keys[id(c.args[0 if i < 2 else 1])] for i, c in enumerate(calls)}
    assert len(keys) == 1
    assert plan.arena_bytes == 320  # the largest request, aligned


# ---- in place: an elementwise node writes over an input it reads last


def _chain(steps, dtypes=None, outputs=("y",)):
    """A graph of copy calls (x -> ... -> y) standing in for elementwise kernels:
    `steps` are (input, output, in_place)."""
    from tinyc.codegen.kernels.ops.bytes_copy import COPY_BYTES
    from tinyc.ir import DType, Graph, TensorType
    from tinyc.program import Buf, Call, LoweredNode

    dtypes = dtypes or {}
    names = {v for x, y, _ in steps for v in (*x.split("+"), y)}
    types = {v: TensorType(dtypes.get(v, DType.float32), (256,)) for v in names}
    lowered = [LoweredNode(f"n{i}", "Add", (y,),
                           [Call(COPY_BYTES, (Buf(y), Buf(x), 1024)) for x in xs.split("+")],
                           in_place=tuple(xs.split("+")) if ok else ())
               for i, (xs, y, ok) in enumerate(steps)]
    g = Graph("g", ("x",), outputs, (), types, {}, {})
    from tinyc.codegen.memory_plan import plan_memory

    return plan_memory(g, lowered, {o: i for i, o in enumerate(outputs)})


def test_elementwise_chain_runs_in_one_buffer():
    plan = _chain([("x", "a", True), ("a", "b", True), ("b", "c", True), ("c", "y", True)])
    assert plan.root["b"] == plan.root["c"] == "a"
    assert plan.arena_bytes == 1024


def test_no_in_place_over_a_value_read_later_or_a_callers_buffer():
    plan = _chain([("x", "a", True), ("a", "b", True), ("a+b", "y", True)])
    assert "b" not in plan.root  # a is read again by the last node
    assert "a" not in plan.root  # x is the caller's input
    assert plan.arena_bytes == 2048


def test_no_in_place_without_the_lowerings_leave_or_across_element_sizes():
    from tinyc.ir import DType

    plan = _chain([("x", "a", True), ("a", "b", False), ("b", "c", True), ("c", "y", True)],
                  dtypes={"c": DType.int32, "b": DType.float32})
    assert "b" not in plan.root and plan.root.get("c") == "b"  # f32 and i32: same layout
    plan = _chain([("x", "a", True), ("a", "b", True), ("b", "y", True)],
                  dtypes={"b": DType.float16})
    assert "b" not in plan.root  # 2-byte elements over 4-byte ones: not the same layout


def test_in_place_model_matches_onnxruntime(ort_run):
    """Relu, Add, Sigmoid and Mul chained on x86, written over their inputs."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    import tinyc

    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "b"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["t"]), helper.make_node("Mul", ["t", "r2"], ["u"]),
             helper.make_node("Relu", ["x"], ["r2"]), helper.make_node("Add", ["u", "t"], ["y"])]
    nodes = [nodes[0], nodes[4], nodes[1], nodes[2], nodes[3], nodes[5]]
    b = numpy_helper.from_array(np.linspace(-1, 1, 64, dtype=np.float32), "b")
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 64])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    got = tinyc.InferenceSession(model, target="x86").run(None, {"x": x})[0]
    # r and r2 live together; s, t over r and u over r2 (without: t, r2 and u at Mul)
    assert tinyc.compile(model, "x86").meta["arena_bytes"] == 2 * 8 * 64 * 4
    np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_a_weight_packed_in_two_variants_is_stored_once():
    """A symbolic row count puts a MatMul on both sides of a guard (a variant per
    side), each packing the constant B: equal packings share one place in the
    blob, so the artifact holds the weight once (an fp32 LLM's was twice)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    import tinyc

    w = np.random.default_rng(0).standard_normal((256, 384)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["M", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 384])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    art = tinyc.compile(model, target="x86")
    assert w.nbytes <= len(art.weights) < 1.5 * w.nbytes
    sess = tinyc.InferenceSession(model, target="x86")
    for m in (1, 20):  # both variants read the shared packing
        x = np.random.default_rng(m).standard_normal((m, 256)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], x @ w, rtol=1e-4, atol=1e-4)
