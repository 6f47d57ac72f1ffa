"""runtime/fastpath.py's SizeBinder: the one-pass check of a run's feeds that
binds the symbols' sizes. Anything it does not accept plainly goes back to
the careful path (None), which raises the clear error."""

from __future__ import annotations

import numpy as np

from tinyc.runtime.fastpath import SizeBinder
from tinyc.runtime.native import TensorInfo

INPUTS = [TensorInfo("ids", [1, "seq"], "int64"),
          TensorInfo("past", [1, 4, "past", 8], "float32"),
          TensorInfo("mask", [1, "total"], "int64")]
SYMBOLS = ["past", "seq", "total"]


def feeds(**changes):
    out = {"ids": np.zeros((1, 3), np.int64), "past": np.zeros((1, 4, 5, 8), np.float32),
           "mask": np.ones((1, 8), np.int64)}
    out.update(changes)
    return out


def test_plain_feeds_bind_every_symbol():
    arrays, values = SizeBinder(INPUTS, SYMBOLS).bind(feeds())
    assert values == (5, 3, 8) and [a.shape for a in arrays] == [(1, 3), (1, 4, 5, 8), (1, 8)]


def test_anything_unusual_goes_to_the_careful_path():
    binder = SizeBinder(INPUTS, SYMBOLS)
    bad = [feeds(ids=[[1, 2, 3]]),                                   # a list
           feeds(ids=np.zeros((1, 3), np.int32)),                    # dtype
           feeds(past=np.zeros((1, 4, 5), np.float32)),              # rank
           feeds(past=np.zeros((1, 2, 5, 8), np.float32)),           # a fixed dim
           {k: v for k, v in feeds().items() if k != "mask"},        # a missing name
           {**feeds(), "extra": np.zeros(1)},                        # an unknown one
           [("ids", np.zeros((1, 3), np.int64))]]                    # not a dict
    for f in bad:
        assert binder.bind(f) is None


def test_one_symbol_with_two_sizes_is_refused():
    inputs = INPUTS + [TensorInfo("ids2", [1, "seq"], "int64")]
    binder = SizeBinder(inputs, SYMBOLS)
    assert binder.bind({**feeds(), "ids2": np.zeros((1, 3), np.int64)}) is not None
    assert binder.bind({**feeds(), "ids2": np.zeros((1, 4), np.int64)}) is None
