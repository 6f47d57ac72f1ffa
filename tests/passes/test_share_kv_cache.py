"""share_kv_cache alone: Before / Expected graphs with a GPT-2 attention's
cache pattern, and the near misses it must leave alone."""

from __future__ import annotations

from tinyc.ir import assert_structurally_equal
from tinyc.ir.symbolic import SymDim
from tinyc.passes.share_kv_cache import CAPACITY, KVPair, share_kv_cache

from .graph_builder import GraphBuilder

P, S = SymDim.symbol("past", 3), SymDim.symbol("seq", 1)
T = P + S
CAP = SymDim.symbol(CAPACITY, 9)
SWAP = [0, 1, 3, 2]


def attention(axis: int = 2, perm=SWAP, present_is_output: bool = True, extra_past_reader=False,
              extra_present_reader: bool = False):
    """q @ present^T -> s; s @ present -> y; present = Concat(past, new)."""
    b = GraphBuilder(18)
    past, new, q = b.input("past", (1, 2, P, 4)), b.input("new", (1, 2, S, 4)), \
        b.input("q", (1, 2, S, 4))
    present = b.op("Concat", past, new, shape=(1, 2, T, 4), out="present", axis=axis)
    kt = b.op("Transpose", present, shape=(1, 2, 4, T), perm=perm)
    s = b.op("MatMul", q, kt, shape=(1, 2, S, T))
    y = b.op("MatMul", s, present, shape=(1, 2, S, 4), out="y")
    outs = [y] + ([present] if present_is_output else [])
    if extra_past_reader:
        outs.append(b.op("Relu", past, shape=(1, 2, P, 4)))
    if extra_present_reader:
        outs.append(b.op("Relu", present, shape=(1, 2, T, 4)))
    return b.build(*outs)


def test_concat_of_past_becomes_an_append_and_its_readers_read_in_place():
    after, pairs = share_kv_cache(attention(), CAP)
    e = GraphBuilder(18)
    e.input("past", (1, 2, P, 4))  # still an input (its shape binds `past`), read by nothing
    new, q = e.input("new", (1, 2, S, 4)), e.input("q", (1, 2, S, 4))
    present = e.op("KVAppend", new, shape=(1, 2, T, 4), out="present", domain="tinyc",
                   axis=2, past=P, capacity=CAP)
    s = e.op("KVMatMul", q, present, shape=(1, 2, S, T), domain="tinyc", trans_b=1,
             capacity=CAP)
    y = e.op("KVMatMul", s, present, shape=(1, 2, S, 4), out="y", domain="tinyc", trans_b=0,
             capacity=CAP)
    assert_structurally_equal(after, e.build(y, present))
    assert pairs == [KVPair("past", "present", 2)]


def test_near_misses_are_left_alone():
    for before in (attention(axis=3, perm=[0, 1, 2, 3]),  # not the rows axis
                   attention(perm=[0, 2, 1, 3]),  # a Transpose the MatMul cannot read through
                   attention(present_is_output=False),  # nobody's buffer to share
                   attention(extra_past_reader=True),  # the past is read: it must stay
                   attention(extra_present_reader=True)):  # a reader without the stride
        after, pairs = share_kv_cache(before, CAP)
        assert pairs == [] and after is before
