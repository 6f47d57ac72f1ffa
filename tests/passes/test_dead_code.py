from __future__ import annotations

import numpy as np

from tinyc.ir import assert_structurally_equal
from tinyc.passes import dead_code_pass

from .graph_builder import GraphBuilder, run_pass


def test_unread_chain_and_its_constants_go():
    b = GraphBuilder()
    x = b.input("x", (2,))
    dead = b.op("Add", x, b.const("only_dead_reads_me", [1, 2]), shape=(2,))
    b.op("Relu", dead, shape=(2,))
    y = b.op("Neg", x, shape=(2,), out="y")
    after = run_pass(dead_code_pass, b.build(y))

    e = GraphBuilder()
    y = e.op("Neg", e.input("x", (2,)), shape=(2,))
    assert_structurally_equal(after, e.build(y))
    assert set(after.constants) == set() and set(after.types) == {"x", "y"}


def test_node_with_one_read_output_stays_whole():
    b = GraphBuilder(opset=18)
    x = b.input("x", (4,))
    lo, _ = b.op_multi("Split", [x], [(None, (2,), None), (None, (2,), None)], axis=0,
                       num_outputs=2)
    y = b.op("Neg", lo, shape=(2,))
    before = b.build(y)
    assert_structurally_equal(run_pass(dead_code_pass, before), before)


def test_graph_outputs_and_unused_inputs_are_kept():
    b = GraphBuilder()
    x = b.input("x", (2,))
    b.input("unused", (3,))
    y = b.op("Neg", x, shape=(2,))
    before = b.build(y)
    after = run_pass(dead_code_pass, before)
    assert_structurally_equal(after, before)
    assert after.inputs == ("x", "unused")


def test_constant_graph_output_is_kept():
    b = GraphBuilder()
    b.input("x", (2,))
    c = b.const("c", np.ones(2))
    after = run_pass(dead_code_pass, b.build(c))
    assert after.is_const("c")
