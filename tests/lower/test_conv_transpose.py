"""ConvTranspose and Col2Im lowerings against onnxruntime (and onnx.reference
where its ConvTranspose is right: one group), over ONNX's attribute space:
strides, pads, dilations, groups (depthwise too), output_padding,
output_shape, auto_pad, bias, 1-D / 2-D / 3-D, constant and run-time weights;
then whole models on two threads and with a symbolic batch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from op_batch import Case, check_cases, ort_oracle, reference_oracle

import tinyc
from tinyc.compiler import CompileOptions
from tinyc.errors import ModelError, NotLowerable
from tinyc.ir import Graph, Node, TensorType
from tinyc.lower.conv_transpose import lower_conv_transpose
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target

TOL = dict(rtol=1e-4, atol=1e-4)


def _r(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def ct_case(rng, x_shape, cout: int, kernel, attrs: dict, bias: bool = True,
            const_w: bool = True) -> Case:
    group = attrs.get("group", 1)
    w = _r(rng, x_shape[1], cout // group, *kernel)
    inputs = [_r(rng, *x_shape), w] + ([_r(rng, cout)] if bias else [])
    consts = (1, 2) if const_w else (2,)
    return Case("ConvTranspose", inputs, attrs, consts=consts, opset=17)


def _sweep_2d(rng) -> list[Case]:
    cases = []
    for s, d, (group, cin, cout), pads in itertools.product(
            (1, 2, 3), (1, 2), ((1, 3, 5), (2, 4, 6), (4, 4, 4), (3, 3, 6)),
            ([0, 0, 0, 0], [1, 0, 2, 1])):
        out_pad = [s - 1, 0] if s > 1 else [0, 0]
        attrs = {"strides": [s, s + (d == 2 and s < 3)], "dilations": [d, 1], "pads": pads,
                 "group": group, "output_padding": out_pad}
        cases.append(ct_case(rng, (2, cin, 5, 7), cout, (3, 2 + s), attrs,
                             bias=(s + d) % 2 == 0))
    return cases


def _sweep_1d(rng) -> list[Case]:
    cases = []
    for s, d, (group, cin, cout), k in itertools.product(
            (1, 2, 3), (1, 2), ((1, 4, 3), (2, 4, 2), (4, 4, 8)), (1, 4)):
        attrs = {"strides": [s], "dilations": [d], "pads": [k // 2, (k - 1) // 2],
                 "group": group}
        cases.append(ct_case(rng, (1, cin, 11), cout, (k,), attrs, bias=k == 4))
    # a vocoder-like upsampler: stride 8, kernel 16, padding 4
    cases.append(ct_case(rng, (1, 8, 9), 4, (16,), {"strides": [8], "pads": [4, 4]}))
    for s, k in ((4, 5), (5, 3), (7, 9), (9, 4), (2, 2)):  # spread 4-7-fold; 9: scalar
        for width in (1, 3, 16, 37):  # one source, part of a step, whole steps, a rest
            cases.append(ct_case(rng, (2, 2, width), 3, (k,),
                                 {"strides": [s], "pads": [1, k - 1], "output_padding": [1]}))
    return cases


def _shapes_and_autopad(rng) -> list[Case]:
    cases = []
    for auto_pad, s in itertools.product(("SAME_UPPER", "SAME_LOWER", "VALID"), (1, 2, 3)):
        cases.append(ct_case(rng, (1, 3, 4, 5), 2, (3, 4),
                             {"auto_pad": auto_pad, "strides": [s, s]}))
        cases.append(ct_case(rng, (1, 2, 6), 3, (1,), {"auto_pad": auto_pad, "strides": [s]}))
    for out in ([9, 12], [10, 11], [14, 10]):  # odd, even and negative total padding
        cases.append(ct_case(rng, (1, 2, 4, 5), 3, (3, 3),
                             {"strides": [3, 2], "output_shape": out}))
        cases.append(ct_case(rng, (1, 2, 4, 5), 3, (3, 3),
                             {"strides": [3, 2], "output_shape": out, "auto_pad": "SAME_UPPER"}))
    return cases


def _depthwise_and_runtime_w(rng) -> list[Case]:
    return [
        ct_case(rng, (2, 6, 5, 6), 6, (3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
        ct_case(rng, (1, 4, 5, 6), 8, (4, 4), {"group": 4, "strides": [2, 2],
                                               "pads": [1, 1, 1, 1]}, bias=False),
        ct_case(rng, (1, 1, 7), 3, (5,), {"strides": [2], "dilations": [2]}),  # C_in = 1
        ct_case(rng, (1, 5, 4, 6), 5, (3, 3), {"group": 5, "strides": [1, 3]}, const_w=False),
        ct_case(rng, (2, 4, 5, 6), 6, (3, 3), {"group": 2, "strides": [2, 1]}, const_w=False),
        ct_case(rng, (1, 3, 5, 6), 4, (3, 3), {"strides": [2, 2]}, const_w=False, bias=False),
    ]


def _sweep_3d(rng) -> list[Case]:
    return [
        ct_case(rng, (1, 2, 3, 4, 5), 3, (3, 3, 3), {}),
        ct_case(rng, (2, 4, 3, 3, 4), 4, (2, 3, 2),
                {"strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 0], "group": 2}),
        ct_case(rng, (1, 3, 3, 4, 3), 2, (3, 2, 3),
                {"strides": [1, 2, 3], "dilations": [2, 1, 1], "output_padding": [0, 1, 2]},
                bias=False),
        ct_case(rng, (1, 4, 2, 3, 4), 4, (3, 3, 3), {"group": 4, "auto_pad": "SAME_LOWER",
                                                     "strides": [2, 2, 2]}),
    ]


def _few_pixels(rng) -> list[Case]:
    """Inputs of a few pixels: the GEMM runs with pixels as rows."""
    return [
        ct_case(rng, (2, 24, 1, 1), 16, (4, 4), {}),  # a generator's first layer
        ct_case(rng, (1, 16, 2, 2), 24, (4, 4), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ct_case(rng, (1, 12, 3), 10, (5,), {"strides": [3], "group": 2}, bias=False),
        ct_case(rng, (2, 8, 2, 3), 12, (3, 3), {"strides": [2, 2]}, const_w=False),
        ct_case(rng, (1, 6, 1, 1, 1), 4, (2, 2, 2), {}),
    ]


SWEEPS = {"2d": _sweep_2d, "1d": _sweep_1d, "shapes_autopad": _shapes_and_autopad,
          "depthwise_runtime_w": _depthwise_and_runtime_w, "3d": _sweep_3d,
          "few_pixels": _few_pixels}


def _ort_leaves_the_spec(case: Case) -> bool:
    """SAME padding whose total is negative (a kernel shorter than the stride, an
    output_shape past the input's reach): onnxruntime shrinks the output or
    moves it, onnx.reference follows the spec's formulas (floor division)."""
    if not case.attrs.get("auto_pad", "").startswith("SAME"):
        return False
    x, w = case.inputs[0].shape[2:], case.inputs[1].shape[2:]
    s = case.attrs.get("strides", [1] * len(x))
    out = case.attrs.get("output_shape", [a * b for a, b in zip(x, s, strict=True)])
    return any(si * (xi - 1) + wi - oi < 0 for xi, wi, si, oi in zip(x, w, s, out, strict=True))


def _oracle(case: Case) -> np.ndarray:
    return reference_oracle(case) if _ort_leaves_the_spec(case) else ort_oracle(case)


@pytest.mark.parametrize("sweep", sorted(SWEEPS))
def test_conv_transpose_matches_onnxruntime(sweep, rng):
    check_cases(SWEEPS[sweep](rng), _oracle, **TOL)


def test_avx2_vectors(rng, monkeypatch):
    """256-bit vectors: other step and spread widths, same results (128-bit
    targets run the backend suite's cases under tests/cross/node_sweep.py)."""
    import op_batch

    monkeypatch.setattr(op_batch, "host_target", lambda: host_target(256))
    cases = [c for c in _sweep_1d(rng) if c.attrs["strides"][0] > 1 and
             c.attrs.get("group", 1) < 4]
    check_cases(cases + _sweep_3d(rng)[:2], _oracle, **TOL)


def test_one_group_matches_onnx_reference(rng):
    cases = [c for c in _sweep_2d(rng) + _sweep_3d(rng) if c.attrs.get("group", 1) == 1]
    check_cases(cases, reference_oracle, **TOL)


def col2im_case(rng, n: int, c: int, image, block, attrs: dict) -> Case:
    rank = len(image)
    s, d = attrs.get("strides", [1] * rank), attrs.get("dilations", [1] * rank)
    p = attrs.get("pads", [0] * 2 * rank)
    grid = [(image[i] + p[i] + p[rank + i] - (block[i] - 1) * d[i] - 1) // s[i] + 1
            for i in range(rank)]
    x = _r(rng, n, c * int(np.prod(block)), int(np.prod(grid)))
    return Case("Col2Im", [x, np.array(image, np.int64), np.array(block, np.int64)], attrs,
                consts=(1, 2), opset=18)


def test_col2im_matches_the_reference(rng):
    cases = [col2im_case(rng, 1, 1, [5, 5], [1, 5], {}),
             col2im_case(rng, 2, 3, [6, 7], [2, 3], {"strides": [2, 1], "pads": [1, 0, 0, 1]}),
             col2im_case(rng, 1, 2, [9, 8], [3, 2], {"dilations": [2, 3], "strides": [1, 2]}),
             col2im_case(rng, 1, 2, [11], [3], {"strides": [2], "pads": [1, 2]}),
             col2im_case(rng, 1, 2, [3, 4, 5], [2, 2, 3], {"strides": [1, 2, 1]})]
    check_cases(cases, reference_oracle, **TOL)


def _model(x_dims, w: np.ndarray, b: np.ndarray | None, attrs: dict, relu: bool = False):
    """x -> ConvTranspose [-> Relu, which fuse_epilogue folds into it] -> y."""
    inits = [numpy_helper.from_array(w, "w")] + \
        ([numpy_helper.from_array(b, "b")] if b is not None else [])
    nodes = [helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if b is not None else []),
                              ["ct" if relu else "y"], **attrs)]
    nodes += [helper.make_node("Relu", ["ct"], ["y"])] if relu else []
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("attrs,cin,cout,size", [
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, 32, 24, 24),  # a decoder's 4x4 / 2 upsampling
    ({"strides": [2, 2], "group": 32}, 32, 32, 24),  # depthwise
    ({}, 256, 128, 1),  # a generator's first layer: pixels as GEMM rows
])
def test_two_threads_same_bits_as_one(attrs, cin, cout, size, rng):
    """Big enough for two workers in the GEMM and the col2im planes (with a
    fused Relu: its bounds travel to the workers too)."""
    w = _r(rng, cin, cout // attrs.get("group", 1), 4, 4)
    b = _r(rng, cout)
    model = _model([1, cin, size, size], w, b, attrs, relu=size > 1)
    x = _r(rng, 1, cin, size, size)
    got = {t: tinyc.InferenceSession(model.SerializeToString(), target="x86",
                                     options=CompileOptions(threads=t)).run(None, {"x": x})[0]
           for t in (1, 2)}
    np.testing.assert_array_equal(got[1], got[2])
    np.testing.assert_allclose(got[2], _ort(model, x), **TOL)


def test_symbolic_batch_and_size(rng):
    """One compile serves every batch and image size (the output's sizes are
    expressions of the input's)."""
    w, b = _r(rng, 6, 4, 3, 3), _r(rng, 4)
    model = _model(["N", 6, "H", 7], w, b, {"strides": [2, 2], "pads": [1, 0, 1, 0],
                                            "output_padding": [1, 1]})
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86")
    for n, h in ((1, 5), (3, 9), (2, 1)):
        x = _r(rng, n, 6, h, 7)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], _ort(model, x), **TOL)


def _graph(node: Node, shapes: dict, consts: dict) -> Graph:
    types = {k: TensorType.of(np.zeros(v, np.float32)) for k, v in shapes.items()}
    types.update({k: TensorType.of(v) for k, v in consts.items()})
    return Graph("g", ("x",), ("y",), (node,), types, consts, {"": 18})


def test_lowering_notes_name_the_plan():
    w = np.zeros((8, 4, 3, 3), np.float32)
    node = Node("ConvTranspose", ("x", "w"), ("y",), {"strides": [2, 2]}, name="up")
    ln = lower_conv_transpose(node, LowerContext(
        _graph(node, {"x": (1, 8, 5, 5), "y": (1, 4, 11, 11)}, {"w": w}), host_target()))
    assert "GEMM 36x25x8" in ln.note and "packed at compile time" in ln.note
    assert [c.kernel.name.split("_")[0] for c in ln.calls] == ["gemm", "col2im"]
    assert "spread 2-fold" in ln.note


def test_few_pixels_are_gemm_rows():
    w = np.zeros((64, 32, 4, 4), np.float32)
    node = Node("ConvTranspose", ("x", "w"), ("y",), {}, name="gen")
    ln = lower_conv_transpose(node, LowerContext(
        _graph(node, {"x": (1, 64, 1, 1), "y": (1, 32, 4, 4)}, {"w": w}), host_target()))
    assert "pixels as rows (only 1), 1x512x64" in ln.note


def test_inconsistent_output_shape_is_a_model_error():
    w = np.zeros((2, 3, 3, 3), np.float32)
    node = Node("ConvTranspose", ("x", "w"), ("y",), {"output_shape": [9, 9]}, name="ct")
    g = _graph(node, {"x": (1, 2, 4, 4), "y": (1, 3, 9, 9)}, {"w": w})
    with pytest.raises(ModelError, match="inconsistent"):
        lower_conv_transpose(node, LowerContext(g, host_target()))


def test_4d_spatial_is_not_lowerable():
    w = np.zeros((2, 3, 1, 1, 1, 1), np.float32)
    node = Node("ConvTranspose", ("x", "w"), ("y",), {}, name="ct")
    g = _graph(node, {"x": (1, 2, 2, 2, 2, 2), "y": (1, 3, 2, 2, 2, 2)}, {"w": w})
    with pytest.raises(NotLowerable, match="3-D"):
        lower_conv_transpose(node, LowerContext(g, host_target()))


def _col2im_model(x_shape, image, taps: int, attrs: dict):
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
                      helper.make_tensor_value_info("image", TensorProto.INT64, [len(image)]),
                      helper.make_tensor_value_info("block", TensorProto.INT64, [len(image)])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    # the output's shape as an exporter writes it (inference cannot know it)
    graph.output[0].CopyFrom(helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [x_shape[0], x_shape[1] // taps, *image]))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_col2im_with_run_time_shapes_reads_and_checks_them(rng):
    """image_shape and block_shape as graph inputs: the block is read at run time
    (two blocks with the same product give different results), a size that does
    not fit the compiled input is an InputError naming the node."""
    from onnx.reference import ReferenceEvaluator

    model = _col2im_model([1, 12, 16], [5, 6], 6, {"strides": [1, 1]})
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86")
    x = _r(rng, 1, 12, 16)
    image = np.array([5, 6], np.int64)
    for block in ([2, 3], [3, 2]):  # grids 4x4 / 3x5: only [2, 3] gives 16 blocks
        feeds = {"x": x, "image": image, "block": np.array(block, np.int64)}
        if block == [2, 3]:
            want = ReferenceEvaluator(model).run(None, feeds)[0]
            np.testing.assert_allclose(sess.run(None, feeds)[0], want, **TOL)
        else:
            with pytest.raises(tinyc.InputError, match="Col2Im node .* 16 blocks"):
                sess.run(None, feeds)
    feeds = {"x": x, "image": np.array([5, 7], np.int64), "block": np.array([2, 3], np.int64)}
    with pytest.raises(tinyc.InputError, match="image"):
        sess.run(None, feeds)
    feeds["image"], feeds["block"] = image, np.array([0, 3], np.int64)
    with pytest.raises(tinyc.InputError, match="must lie in \\[1, 5\\]"):
        sess.run(None, feeds)


def test_partition_cost_counts_its_macs():
    from tinyc.partition.work import macs

    w = np.zeros((8, 2, 3, 3), np.float32)  # group 2: C_out = 4, each input feeds 2 * 9
    node = Node("ConvTranspose", ("x", "w"), ("y",), {"group": 2, "strides": [2, 2]})
    g = _graph(node, {"x": (1, 8, 5, 5), "y": (1, 4, 11, 11)}, {"w": w})
    assert macs(node, g) == 8 * 25 * 2 * 9


@pytest.mark.parametrize("activation,clip", [("Relu", None), ("Clip", (-0.5, 0.7)), ("", None)])
@pytest.mark.parametrize("group,cout", [(1, 5), (4, 8)])  # GEMM, then direct (depthwise)
def test_fused_residual_and_activation(activation, clip, group, cout, rng):
    """tinyc.ConvTranspose (fuse_epilogue's): act(conv_transpose(x) + b + r)."""
    from tinyc.testing.lowered_harness import run_graph_nodes

    attrs = {"strides": [2, 2], "pads": [1, 0, 0, 1], "group": group}
    case = ct_case(rng, (2, 4, 5, 6), cout, (3, 3), attrs)
    x, w, b = case.inputs
    want = ort_oracle(case)
    r = _r(rng, *want.shape)
    want = want + r
    if activation == "Relu":
        want = np.maximum(want, 0)
    elif activation == "Clip":
        want = np.clip(want, *clip)
    fused = {**attrs, "activation": activation}
    if clip:
        fused.update(clip_min=clip[0], clip_max=clip[1])
    node = Node("ConvTranspose", ("x", "w", "b", "r"), ("y",), fused, name="ct", domain="tinyc")
    types = {k: TensorType.of(v) for k, v in {"x": x, "w": w, "b": b, "r": r, "y": want}.items()}
    g = Graph("g", ("x", "r"), ("y",), (node,), types, {"w": w, "b": b}, {"": 17})
    got = run_graph_nodes(g, {"x": x, "r": r})["y"]
    np.testing.assert_allclose(got, want, **TOL)
