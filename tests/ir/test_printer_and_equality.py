from __future__ import annotations

import textwrap

import numpy as np
import pytest

from tinyc.ir import (
    DType,
    Graph,
    IRError,
    Node,
    TensorType,
    assert_structurally_equal,
    print_graph,
    structurally_equal,
    verify,
)

F = DType.float32


def _graph(names=("x", "w", "y", "z")) -> Graph:
    x, w, y, z = names
    return Graph(
        name="g", inputs=(x,), outputs=(z,),
        nodes=(Node("Conv", (x, w), (y,), {"strides": [2, 2]}, "c"),
               Node("Relu", (y,), (z,), {}, "r")),
        types={x: TensorType(F, (1, 3, 8, 8)), w: TensorType(F, (4, 3, 1, 1)),
               y: TensorType(F, (1, 4, 4, 4)), z: TensorType(F, (1, 4, 4, 4))},
        constants={w: np.ones((4, 3, 1, 1), np.float32)},
    )


def test_printer_is_deterministic_text():
    expected = textwrap.dedent("""\
        graph g(%x: f32[1,3,8,8]) {
          %w: f32[4,3,1,1] = const dense<sha1:3adc7d4d5d2f>
          %y: f32[1,4,4,4] = Conv(%x, %w) {strides=[2,2]}
          %z: f32[1,4,4,4] = Relu(%y)
          return %z
        }""")
    text = print_graph(_graph())
    assert text.splitlines()[0] == expected.splitlines()[0]
    assert text.splitlines()[2:] == expected.splitlines()[2:]
    assert text == print_graph(_graph())


def test_equality_ignores_value_names():
    assert structurally_equal(_graph(), _graph(("a", "b", "c", "d")))


def test_equality_sees_attribute_and_constant_changes():
    g = _graph()
    other_attr = g.replace(nodes=(g.nodes[0].with_(attrs={"strides": [1, 1]}), g.nodes[1]))
    assert not structurally_equal(g, other_attr)
    other_const = g.replace(constants={"w": np.zeros((4, 3, 1, 1), np.float32)})
    with pytest.raises(AssertionError, match="differ structurally"):
        assert_structurally_equal(other_const, g)


def test_verify_catches_use_before_definition():
    g = _graph()
    broken = g.replace(nodes=(g.nodes[1], g.nodes[0]))
    with pytest.raises(IRError, match="before it is defined"):
        verify(broken)
    verify(g)
