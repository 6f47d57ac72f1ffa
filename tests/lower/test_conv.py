"""Conv / tinyc.Conv lowerings against onnx.reference, across ONNX's attribute space."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from tinyc.errors import NotLowerable
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.conv import lower_conv
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_graph_nodes

F32 = DType.float32


def reference_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict) -> np.ndarray:
    inputs = ["x", "w"] + (["b"] if b is not None else [])
    node = helper.make_node("Conv", inputs, ["y"], **attrs)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs]
    graph = helper.make_graph([node], "g", vi,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": x, "w": w} | ({"b": b} if b is not None else {})
    return ReferenceEvaluator(model).run(None, feeds)[0]


def conv_graph(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict,
               out_shape: tuple[int, ...], const_w: bool = True, residual: bool = False,
               activation: str = "", clip: tuple[float, float] | None = None) -> Graph:
    fused = residual or activation
    inputs = ["x", "w", "b" if b is not None else ""] + (["r"] if residual else [])
    attrs = dict(attrs)
    if fused:
        attrs["activation"] = activation
        if clip:
            attrs.update(clip_min=clip[0], clip_max=clip[1])
    node = Node("Conv", tuple(inputs), ("y",), attrs, name="conv",
                domain="tinyc" if fused else "")
    types = {"x": TensorType.of(x), "w": TensorType.of(w), "y": TensorType(F32, out_shape)}
    constants = {"w": w} if const_w else {}
    if b is not None:
        types["b"] = TensorType.of(b)
        constants["b"] = b
    if residual:
        types["r"] = TensorType(F32, out_shape)
    graph_inputs = ("x",) + (() if const_w else ("w",)) + (("r",) if residual else ())
    return Graph("conv", graph_inputs, ("y",), (node,), types, constants, {"": 17})


def check_conv(rng: np.random.Generator, x_shape, w_shape, attrs=None, bias=True,
               const_w=True, residual=False, activation="", clip=None, target=None) -> None:
    attrs = attrs or {}
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32) if bias else None
    expected = reference_conv(x, w, b, attrs)
    feeds = {"x": x} | ({} if const_w else {"w": w})
    if residual:
        r = rng.standard_normal(expected.shape).astype(np.float32)
        feeds["r"] = r
        expected = expected + r
    if activation == "Relu":
        expected = np.maximum(expected, 0)
    elif activation == "Clip":
        expected = np.clip(expected, *clip)
    g = conv_graph(x, w, b, attrs, expected.shape, const_w, residual, activation, clip)
    got = run_graph_nodes(g, feeds, target)["y"]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


CASES = {
    "3x3_pad1": ((1, 8, 10, 12), (16, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
    "odd_sizes": ((1, 5, 9, 23), (13, 5, 3, 3), {"pads": [1, 1, 1, 1]}),
    "no_pad_5x5": ((1, 3, 17, 19), (7, 3, 5, 5), {}),
    "stride2": ((1, 6, 15, 18), (10, 6, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "stride2_1x1": ((1, 8, 14, 14), (24, 8, 1, 1), {"strides": [2, 2]}),
    "dilation2": ((1, 4, 20, 21), (9, 4, 3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    "asym_pads": ((1, 4, 11, 13), (5, 4, 3, 2), {"pads": [0, 2, 1, 0]}),
    "same_upper": ((1, 4, 11, 12), (6, 4, 4, 3),
                   {"auto_pad": "SAME_UPPER", "strides": [2, 1]}),
    "same_lower": ((1, 4, 11, 12), (6, 4, 4, 4),
                   {"auto_pad": "SAME_LOWER", "strides": [1, 2]}),
    "valid": ((1, 3, 9, 9), (4, 3, 3, 3), {"auto_pad": "VALID"}),
    "batch2": ((2, 8, 9, 30), (20, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
    "groups": ((2, 8, 9, 10), (12, 4, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    "groups4_1x1": ((1, 16, 7, 9), (8, 4, 1, 1), {"group": 4}),
    "pointwise": ((2, 19, 7, 9), (33, 19, 1, 1), {}),
    "conv1d": ((2, 5, 37), (7, 5, 3), {"pads": [1, 2], "strides": [2]}),
    "conv1d_dilated": ((1, 3, 40), (4, 3, 5), {"dilations": [3]}),
    "wide_k": ((1, 70, 6, 6), (9, 70, 3, 3), {"pads": [1, 1, 1, 1]}),  # K > one KC block
    "narrow_output": ((1, 4, 7, 7), (3, 4, 3, 3), {"pads": [1, 1, 1, 1]}),
    "single_pixel": ((1, 6, 1, 1), (5, 6, 1, 1), {}),
    # 7x7 outputs: computed transposed (pixels as GEMM rows)
    "small_image": ((2, 16, 7, 7), (32, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    "small_image_pointwise": ((1, 24, 7, 7), (32, 24, 1, 1), {}),
    "small_image_stride2": ((1, 8, 14, 13), (32, 8, 3, 3),
                            {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "small_image_groups": ((1, 16, 6, 9), (64, 8, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_matches_onnx_reference(rng, case):
    x_shape, w_shape, attrs = CASES[case]
    check_conv(rng, x_shape, w_shape, attrs)


DEPTHWISE = {
    "dw3x3": ((1, 8, 13, 21), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
    "dw_stride2": ((2, 5, 14, 17), (5, 1, 3, 3),
                   {"group": 5, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "dw_dilated_asym": ((1, 3, 12, 40), (3, 1, 3, 5),
                        {"group": 3, "dilations": [2, 1], "pads": [2, 0, 1, 3]}),
    "dw_multiplier": ((1, 4, 9, 9), (8, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
    "dw_same_lower": ((1, 6, 10, 10), (6, 1, 5, 5),
                      {"group": 6, "auto_pad": "SAME_LOWER", "strides": [2, 2]}),
}


@pytest.mark.parametrize("case", sorted(DEPTHWISE))
def test_depthwise_matches_onnx_reference(rng, case):
    x_shape, w_shape, attrs = DEPTHWISE[case]
    check_conv(rng, x_shape, w_shape, attrs)


@pytest.mark.parametrize("activation,clip", [("", None), ("Relu", None), ("Clip", (-0.5, 1.5))])
@pytest.mark.parametrize("kind", ["gemm", "depthwise"])
def test_fused_epilogue(rng, activation, clip, kind):
    if kind == "gemm":
        shapes = ((2, 6, 9, 11), (10, 6, 3, 3), {"pads": [1, 1, 1, 1]})
    else:
        shapes = ((2, 6, 9, 11), (6, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 6})
    check_conv(rng, *shapes, residual=True, activation=activation, clip=clip)


@pytest.mark.parametrize("bias", [True, False])
def test_fused_epilogue_transposed(rng, bias):
    check_conv(rng, (2, 8, 7, 7), (48, 8, 3, 3), {"pads": [1, 1, 1, 1]}, bias=bias,
               residual=True, activation="Clip", clip=(-0.5, 1.5))


def test_small_images_are_computed_transposed():
    x = np.zeros((1, 64, 13, 13), np.float32)  # stride 2: not Winograd's
    w = np.zeros((128, 64, 3, 3), np.float32)
    g = conv_graph(x, w, None, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, (1, 128, 7, 7))
    ln = lower_conv(g.nodes[0], LowerContext(g, host_target()))
    assert "transposed" in ln.note and "49 pixels as 7-row panels" in ln.note
    assert "KC=576" in ln.note  # one K block: each further one re-stores C transposed


def test_transposed_gemm_k_blocks_up_to_1024(rng):
    x = np.zeros((1, 1280, 7, 7), np.float32)
    g = conv_graph(x, np.zeros((64, 1280, 1, 1), np.float32), None, {}, (1, 64, 7, 7))
    ln = lower_conv(g.nodes[0], LowerContext(g, host_target()))
    assert "transposed" in ln.note and "KC=640" in ln.note
    check_conv(rng, (1, 1100, 7, 7), (24, 1100, 1, 1), {}, bias=True)  # 2 K blocks


def test_fused_relu_without_bias_or_residual(rng):
    check_conv(rng, (1, 4, 8, 8), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]}, bias=False,
               activation="Relu")


def test_grouped_fused_residual(rng):
    check_conv(rng, (2, 8, 6, 7), (8, 2, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]},
               residual=True, activation="Relu")


def test_runtime_weights(rng):
    check_conv(rng, (2, 6, 9, 10), (8, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]},
               const_w=False)


def test_avx2_target(rng):
    check_conv(rng, (1, 5, 9, 13), (11, 5, 3, 3), {"pads": [1, 1, 1, 1], "strides": [1, 2]},
               target=host_target(256), residual=True, activation="Relu")
    check_conv(rng, (1, 4, 9, 13), (4, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 4},
               target=host_target(256))


def test_note_and_semantics_name_the_schedule(rng):
    x = np.zeros((1, 8, 5, 5), np.float32)
    w = np.zeros((4, 8, 3, 3), np.float32)
    g = conv_graph(x, w, None, {"pads": [1, 1, 1, 1]}, (1, 4, 5, 5))
    ln = lower_conv(g.nodes[0], LowerContext(g, host_target()))
    assert "im2col" in ln.note and "GEMM" in ln.note
    assert ln.semantics.startswith("y[n,co,y,x] += x[n,ci,y*1+ky*1-1,x*1+kx*1-1]")
    assert len(ln.calls) == 1


def test_3d_conv_is_not_lowerable():
    x = np.zeros((1, 2, 4, 4, 4), np.float32)
    w = np.zeros((3, 2, 2, 2, 2), np.float32)
    g = conv_graph(x, w, None, {}, (1, 3, 3, 3, 3))
    with pytest.raises(NotLowerable, match="2-D"):
        lower_conv(g.nodes[0], LowerContext(g, host_target()))


def test_non_float_is_not_lowerable():
    x = np.zeros((1, 2, 4, 4), np.float64)
    w = np.zeros((3, 2, 2, 2), np.float64)
    g = conv_graph(x, w, None, {}, (1, 3, 3, 3))
    g = g.replace(types={**g.types, "y": TensorType(DType.float64, (1, 3, 3, 3))})
    with pytest.raises(NotLowerable, match="f32"):
        lower_conv(g.nodes[0], LowerContext(g, host_target()))


def test_clip_bounds_may_be_infinite(rng):
    check_conv(rng, (1, 3, 6, 6), (4, 3, 3, 3), {}, residual=True, activation="Clip",
               clip=(-math.inf, 0.25))




@pytest.mark.parametrize("case", ["3x3_pad1", "stride2", "small_image", "groups", "pointwise"])
def test_plain_path_without_intrinsics(case):
    """A target with no intrinsic sets: the plain LLVM path, still correct."""
    x_shape, w_shape, attrs = CASES[case]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    expected = reference_conv(x, w, None, attrs)
    g = conv_graph(x, w, None, attrs, expected.shape)
    ln = lower_conv(g.nodes[0], LowerContext(g, host_target()))
    assert ln.intrinsic == "" and "plain LLVM path" in ln.note
    got = run_graph_nodes(g, {"x": x}, intrinsics=())["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_conv_is_tensorized_with_the_targets_intrinsic():
    """x86-avx2: 8-lane FMA, 16 registers -> a 6x16 tile; AVX-512 gives 32."""
    from tinyc.target import resolve_device

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    g = conv_graph(x, w, None, {"pads": [1, 1, 1, 1]}, (1, 16, 20, 20))
    avx2 = resolve_device("x86-avx2")
    ln = lower_conv(g.nodes[0], LowerContext(g, avx2.cpu, avx2.intrinsics))
    assert ln.intrinsic == "avx2_fma.fma_f32_1x8"
    assert "tile 6x16" in ln.note and "im2col" in ln.note
    vnni = resolve_device("x86-avx512-vnni")
    ln = lower_conv(g.nodes[0], LowerContext(g, vnni.cpu, vnni.intrinsics))
    assert ln.intrinsic == "avx512_fma.fma_f32_1x16" and "tile 8x48" in ln.note
    assert dict(ln.rejected)["avx2_fma.fma_f32_1x8"].startswith("ranked below")
    assert dict(ln.rejected)["avx512_vnni.dot_16x4_u8i8i32"].startswith("dtype")


# -- Winograd F(2x2, 3x3): 3x3 stride-1 convs of 16+ channels (conv_winograd.py)
WINOGRAD = {
    "pad1": ((1, 16, 12, 12), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    "odd_sizes": ((1, 32, 13, 17), (48, 32, 3, 3), {"pads": [1, 1, 1, 1]}),
    "asym_pads_batch2": ((2, 16, 15, 14), (24, 16, 3, 3), {"pads": [0, 1, 2, 0]}),
    "no_pad": ((1, 20, 9, 30), (17, 20, 3, 3), {}),
    "pad2": ((1, 16, 6, 7), (16, 16, 3, 3), {"pads": [2, 2, 2, 2]}),
    "same_upper": ((1, 24, 11, 11), (16, 24, 3, 3), {"auto_pad": "SAME_UPPER"}),
    "wide_k": ((1, 300, 8, 8), (32, 300, 3, 3), {"pads": [1, 1, 1, 1]}),  # K > one KC block
    # F(4x4): 36+ of its tiles
    "f4_pad1": ((1, 16, 24, 26), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),
    "f4_odd": ((1, 24, 25, 23), (20, 24, 3, 3), {"pads": [1, 1, 1, 1]}),
    "f4_asym_batch2": ((2, 16, 21, 19), (16, 16, 3, 3), {"pads": [0, 1, 2, 0]}),
}


def _lowered(x_shape, w_shape, attrs, target=None):
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    out = reference_conv(x, w, None, attrs).shape
    g = conv_graph(x, w, None, attrs, out)
    return lower_conv(g.nodes[0], LowerContext(g, target or host_target()))


@pytest.mark.parametrize("case", sorted(WINOGRAD))
def test_winograd_matches_onnx_reference(rng, case):
    x_shape, w_shape, attrs = WINOGRAD[case]
    tile = "F(4x4" if case.startswith("f4") else "F(2x2"
    assert f"Winograd {tile}" in _lowered(x_shape, w_shape, attrs).note
    check_conv(rng, x_shape, w_shape, attrs)


@pytest.mark.parametrize("image", [(11, 10), (22, 27)])  # F(2x2), F(4x4)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation,clip", [("Relu", None), ("Clip", (-0.5, 1.5))])
def test_winograd_fused_epilogue(rng, image, bias, activation, clip):
    check_conv(rng, (2, 16, *image), (32, 16, 3, 3), {"pads": [1, 1, 1, 1]}, bias=bias,
               residual=True, activation=activation, clip=clip)


@pytest.mark.parametrize("image", [(10, 19), (26, 22)])
def test_winograd_on_avx2(rng, image):
    shapes = ((1, 16, *image), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]})
    assert "Winograd" in _lowered(*shapes, target=host_target(256)).note
    check_conv(rng, *shapes, target=host_target(256), residual=True, activation="Relu")


@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 16, 12, 12), (16, 16, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((1, 16, 12, 12), (16, 16, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 32, 12, 12), (32, 16, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),
    ((1, 8, 12, 12), (16, 8, 3, 3), {"pads": [1, 1, 1, 1]}),  # too few channels
    ((1, 16, 4, 4), (16, 16, 3, 3), {"pads": [1, 1, 1, 1]}),  # too few tiles
    ((1, 16, 12, 12), (16, 16, 5, 5), {"pads": [2, 2, 2, 2]}),
])
def test_winograd_only_where_it_applies(x_shape, w_shape, attrs):
    assert "Winograd" not in _lowered(x_shape, w_shape, attrs).note


def test_winograd_weight_transform_gives_a_tile():
    """One 4x4 patch through V = B^T d B, U = G g G^T, Y = A^T (U * V) A is the
    2x2 correlation of the patch with the filter."""
    from tinyc.codegen.kernels.ops.winograd import WinogradTile
    from tinyc.lower.conv_winograd import transformed_weights

    rng = np.random.default_rng(1)
    for m in (2, 4):
        tile = WinogradTile(m)
        d, g = rng.standard_normal((tile.n, tile.n)), rng.standard_normal((1, 1, 3, 3))
        u = transformed_weights(g, tile).reshape(tile.n, tile.n)
        got = tile.at @ (u * (tile.bt @ d @ tile.bt.T)) @ tile.at.T
        want = [[(d[a:a + 3, b:b + 3] * g[0, 0]).sum() for b in range(m)] for a in range(m)]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_winograd_serves_symbolic_batch_and_image_sizes():
    """One compile (decided at the hints) runs every size, down to one partial tile."""
    import onnxruntime as ort
    from onnx import numpy_helper

    import tinyc

    rng = np.random.default_rng(5)
    w = (rng.standard_normal((32, 16, 3, 3)) / 12).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 32, "H", "W"])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = tinyc.InferenceSession(model, target="x86", options=tinyc.CompileOptions(
        shape_hints={"N": 1, "H": 24, "W": 24}))
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for shape in [(1, 16, 24, 24), (3, 16, 24, 24), (2, 16, 13, 30), (1, 16, 2, 2)]:
        x = rng.standard_normal(shape).astype(np.float32)
        got, want = session.run(None, {"x": x})[0], ref.run(None, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert session.compile_count == 1
    assert "Winograd F(4x4" in str(session.artifact.report if hasattr(
        session.artifact, "report") else session.artifact.meta)


def test_winograd_scratch_is_bounded():
    """V and M scale with the whole batch: past SCRATCH_LIMIT, F(4x4) (less
    scratch per pixel), then im2col."""
    from tinyc.lower import conv_winograd as W
    from tinyc.lower.conv import conv_shape

    big = ((64, 64, 112, 112), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]})
    assert "Winograd" not in _lowered(*big).note  # 2.3 GB of V and M even for F(4x4)
    mid = ((12, 256, 56, 56), (256, 256, 3, 3), {"pads": [1, 1, 1, 1]})
    g = conv_graph(np.zeros(mid[0], np.float32), np.zeros(mid[1], np.float32), None, mid[2],
                   mid[0])
    shape = conv_shape(g.nodes[0], mid[0], mid[1])
    assert W.transform_bytes(shape, 4) <= W.SCRATCH_LIMIT < W.transform_bytes(shape, 2)
    assert W.default_tile(shape) == 4
