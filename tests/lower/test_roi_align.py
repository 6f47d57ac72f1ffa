"""RoiAlign against onnxruntime: both modes and coordinate transformations,
fixed and adaptive sampling grids, rois partly or wholly outside the image;
bad batch indices and malformed rois are refused or harmless."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc
from tinyc.errors import InputError, ModelError

ort = pytest.importorskip("onnxruntime")
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(x_shape, rois: int, attrs_list: list[dict], opset: int = 16) -> bytes:
    nodes = [helper.make_node("RoiAlign", ["x", "rois", "batch"], [f"y{k}"], **attrs)
             for k, attrs in enumerate(attrs_list)]
    inputs = [helper.make_tensor_value_info("x", F, x_shape),
              helper.make_tensor_value_info("rois", F, [rois, 4]),
              helper.make_tensor_value_info("batch", I64, [rois])]
    outputs = [helper.make_tensor_value_info(f"y{k}", F, None) for k in range(len(attrs_list))]
    graph = helper.make_graph(nodes, "roi_align", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _rois(rng, count: int, h: int, w: int) -> np.ndarray:
    """Boxes in image coordinates, some reaching past the borders, one degenerate."""
    x1, y1 = rng.uniform(-3, w, count), rng.uniform(-3, h, count)
    boxes = np.stack([x1, y1, x1 + rng.uniform(0, w, count), y1 + rng.uniform(0, h, count)], 1)
    boxes[0] = [2.0, 3.0, 2.0, 3.0]  # zero size
    return boxes.astype(np.float32)


def _attrs() -> list[dict]:
    combos = itertools.product(["avg", "max"], ["half_pixel", "output_half_pixel"], [0, 2],
                               [(3, 4), (1, 1)], [1.0, 0.5])
    return [dict(mode=m, coordinate_transformation_mode=t, sampling_ratio=s, output_height=oh,
                 output_width=ow, spatial_scale=scale)
            for m, t, s, (oh, ow), scale in combos]


def test_roi_align_matches_onnxruntime(rng):
    x = rng.standard_normal((2, 3, 11, 13)).astype(np.float32)
    rois = _rois(rng, 6, 11, 13)
    feeds = {"x": x, "rois": rois, "batch": np.array([0, 1, 1, 0, 1, 0], np.int64)}
    attrs = _attrs()
    model = _model(x.shape, len(rois), attrs)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = tinyc.InferenceSession(model).run(None, feeds)
    bad = [a for a, g, w in zip(attrs, got, want, strict=True)
           if g.shape != w.shape or not np.allclose(g, w, rtol=1e-4, atol=1e-5)]
    assert not bad, f"{len(bad)} of {len(attrs)} differ: {bad}"


def test_opset_10_defaults_to_output_half_pixel(rng):
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    feeds = {"x": x, "rois": _rois(rng, 3, 8, 8), "batch": np.zeros(3, np.int64)}
    model = _model(x.shape, 3, [dict(output_height=2, output_width=2)], opset=10)
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(tinyc.InferenceSession(model).run(None, feeds)[0], want,
                               rtol=1e-4, atol=1e-5)


def test_a_batch_index_outside_the_images_is_refused(rng):
    sess = tinyc.InferenceSession(_model((2, 1, 5, 5), 2, [{}]))
    feeds = {"x": np.ones((2, 1, 5, 5), np.float32), "rois": _rois(rng, 2, 5, 5),
             "batch": np.array([1, 2], np.int64)}
    with pytest.raises(InputError, match="index 2"):
        sess.run(None, feeds)


def _run_rois(rois: np.ndarray, **attrs) -> np.ndarray:
    attrs = dict(output_height=2, output_width=2) | attrs
    sess = tinyc.InferenceSession(_model((1, 1, 5, 5), len(rois), [attrs]))
    return sess.run(None, {"x": np.ones((1, 1, 5, 5), np.float32), "rois": rois,
                           "batch": np.zeros(len(rois), np.int64)})[0]


def test_non_finite_rois_read_nothing_outside_the_image():
    rois = np.array([[np.nan, 0, 4, 4], [0, np.nan, 4, 4]], np.float32)
    assert _run_rois(rois).shape == (2, 1, 2, 2)  # values unspecified; no crash
    # a fixed grid samples even infinite rois a bounded number of times
    rois = np.array([[0, -np.inf, 4, np.inf], [1e30, 1e30, 2e30, 2e30]], np.float32)
    assert _run_rois(rois, sampling_ratio=2).shape == (2, 1, 2, 2)


@pytest.mark.parametrize("roi", [[0, -np.inf, 4, np.inf], [0, 0, 1e30, 4], [0, 0, 4, 4100]])
def test_an_adaptive_grid_of_absurd_size_is_refused(roi):
    # a 4100-pixel roi in 2 bins needs 2050 samples a side: over MAX_GRID (1024)
    with pytest.raises(InputError, match="sampling grid of a bin of input 'rois'"):
        _run_rois(np.array([[0, 0, 4, 4], roi], np.float32))


def test_a_bad_mode_is_a_model_error():
    with pytest.raises(ModelError, match="mode"):
        tinyc.InferenceSession(_model((1, 1, 5, 5), 1, [dict(mode="median")]))
