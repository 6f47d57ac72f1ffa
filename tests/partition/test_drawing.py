"""The Graphviz drawing of a partition: structure checked from the dot source
(clusters, directed edges, rankdir, collapsed chains, wrapped rows), then
rendered to SVG and PNG when Graphviz's `dot` is installed."""

from __future__ import annotations

import re

import onnx
import pytest
from onnx import TensorProto, helper

from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.partition import partition_graph
from tinyc.partition import render as render_module
from tinyc.partition.drawing import partition_dot
from tinyc.partition.render import dot_binary, render

from .helpers import Net, host, npu

BOX = re.compile(r'^\s+(g\d+) \[label="([^"]*)".*tooltip="([^":]*)', re.M)
EDGE = re.compile(r"^\s+(\w+) -> (\w+)( \[[^]]*\])?;", re.M)


def _graph():
    """x -> Softmax -> Relu -> Relu -> Relu (a host chain) -> two MatMuls (an npu
    chain) -> Add, which also reads the host chain's end (a skip) -> Softmax."""
    n = Net()
    x = n.input("x", (512, 512))
    t = n.op("Relu", "t3", n.op("Relu", "t2", n.op("Relu", "t1", n.op("Softmax", "s", x))))
    big = n.mm("big", n.mm("big0", t, 512), 512)
    return n.build(n.op("Softmax", "out", n.op("Add", "d", big, t)))


@pytest.fixture(scope="module")
def drawn():
    graph = _graph()
    partition = partition_graph(graph, [host(), npu()])
    return graph, partition, partition_dot(graph, partition)


def _boxes(dot: str) -> dict[str, tuple[str, list[str]]]:
    """box id -> (label, the node names it holds)."""
    return {m[1]: (m[2], m[3].split(", ")) for m in BOX.finditer(dot)}


def test_ranks_run_left_to_right_and_every_edge_has_an_arrowhead(drawn):
    _, _, dot = drawn
    assert "rankdir=LR" in dot
    assert re.search(r"edge \[dir=forward, arrowhead=normal", dot)
    assert "arrowhead=none" not in dot and "dir=none" not in dot and "dir=back" not in dot


def test_each_region_is_a_cluster_coloured_by_its_device(drawn):
    _, partition, dot = drawn
    assert [r.device for r in partition.regions] == ["cpu", "npu", "cpu"]
    for r in partition.regions:
        assert f'label="region {r.index}: {r.device}"' in dot
    clusters = re.findall(r"subgraph cluster_r(\d+)_\d+ \{\n.*color=\"(#\w+)\"", dot)
    colour = {int(i): c for i, c in clusters}
    assert colour[0] == colour[2] != colour[1]  # cpu, npu, cpu


def test_chains_collapse_into_one_box_with_op_count_and_shape(drawn):
    _, _, dot = drawn
    boxes = _boxes(dot)
    by_nodes = {tuple(nodes): label for label, nodes in boxes.values()}
    assert by_nodes[("s", "t1", "t2", "t3")] == r"Softmax → Relu → …\n4 nodes · 512×512"
    assert by_nodes[("big0", "big")] == r"MatMul → MatMul\n2 nodes · 512×512"
    assert by_nodes[("d",)] == r"Add\n512×512" and by_nodes[("out",)] == r"Softmax\n512×512"
    assert len(boxes) == 4


def test_edges_are_exactly_the_connections_between_boxes(drawn):
    _, _, dot = drawn
    box_of = {nodes[0]: box for box, (_, nodes) in _boxes(dot).items()}
    edges = {(a, b) for a, b, _ in EDGE.findall(dot) if not a.startswith("row")}
    assert edges == {("in0", box_of["s"]), (box_of["s"], box_of["big0"]),
                     (box_of["s"], box_of["d"]), (box_of["big0"], box_of["d"]),
                     (box_of["d"], box_of["out"]), (box_of["out"], "out0")}


def test_a_long_graph_wraps_into_ordered_rows(drawn):
    graph, partition, _ = drawn
    dot = partition_dot(graph, partition, ranks_per_row=2)
    rows = re.findall(r"subgraph cluster_row(\d+)", dot)
    assert rows == ["0", "1", "2"]  # ranks 0..5 (input, 4 boxes, output), 2 per row
    assert "{ rank=same; row0; row1; row2; }" in dot and "row0 -> row1 -> row2" in dot
    wrapped = [(a, b) for a, b, attrs in EDGE.findall(dot) if "constraint=false" in attrs]
    assert len(wrapped) == 3  # one edge out of each of rows 0 and 1, plus the skip
    assert "(cont.)" not in partition_dot(graph, partition)


def test_without_chain_collapsing_every_node_is_a_box(drawn):
    graph, partition, _ = drawn
    assert len(_boxes(partition_dot(graph, partition, min_chain=10**6))) == len(graph.nodes)


@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_renders_svg_and_png_with_graphviz(drawn, fmt, magic):
    if dot_binary() is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    _, _, dot = drawn
    picture = render(dot, fmt)
    assert magic in picture[:400]
    if fmt == "svg":
        svg = picture.decode()
        edges = re.findall(r'<g id="edge\d+" class="edge">(.*?)</g>', svg, re.S)
        visible = [e for e in edges if 'stroke="transparent"' not in e]
        assert len(visible) == 6 and all("<polygon" in e for e in visible)  # arrowheads


def test_a_missing_dot_is_a_clear_error(drawn, monkeypatch):
    monkeypatch.setattr(render_module, "dot_binary", lambda: None)
    with pytest.raises(TinycError, match="apt-get install graphviz"):
        render(drawn[2], "png")


def test_explain_writes_png_svg_and_dot_or_says_how_to_get_dot(tmp_path, capsys, monkeypatch):
    info = helper.make_tensor_value_info
    relu = helper.make_node("Relu", ["x"], ["y"], name="r")
    graph = helper.make_graph([relu], "g", [info("x", TensorProto.FLOAT, [1, 4])],
                              [info("y", TensorProto.FLOAT, [1, 4])])
    model = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), model)
    out = {k: str(tmp_path / f"g.{k}") for k in ("svg", "png", "dot")}
    flags = [x for k, path in out.items() for x in (f"--{k}", path)]
    monkeypatch.setattr(render_module, "dot_binary", lambda: None)
    assert main(["explain", str(model), "--target", "x86", *flags]) == 1
    assert "needs Graphviz's 'dot' command" in capsys.readouterr().err
    monkeypatch.undo()
    if dot_binary() is None:
        pytest.skip("Graphviz's dot is not installed: the files were not drawn")
    assert main(["explain", str(model), "--target", "x86", *flags]) == 0
    assert open(out["dot"]).read().startswith('digraph "g"')
    assert open(out["png"], "rb").read(4) == b"\x89PNG"
    assert "<svg" in open(out["svg"]).read()
