"""Passes that plugins register run at their phase of the compile pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc
import tinyc.compiler as compiler
from tinyc.target import PassRegistration, hookimpl
from tinyc.target.plugins import load_registry


def _relu_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _relu_to_abs(g):
    return g.replace(nodes=tuple(n.with_(op="Abs") if n.op == "Relu" else n for n in g.nodes))


class _Plugin:
    def __init__(self, registration: PassRegistration):
        self.registration = registration

    @hookimpl
    def tinyc_register_passes(self, register):
        register(self.registration)


def _use_plugin(monkeypatch, registration: PassRegistration) -> None:
    reg = load_registry(extra=[("mine", _Plugin(registration))])
    monkeypatch.setattr(compiler, "registry", lambda: reg)


@pytest.mark.parametrize("phase", ["after_import", "before_partition", "before_lower"])
def test_plugin_pass_changes_what_is_compiled(monkeypatch, phase):
    _use_plugin(monkeypatch, PassRegistration(phase, _relu_to_abs, "relu_to_abs"))
    sess = tinyc.InferenceSession(_relu_model())
    (y,) = sess.run(None, {"x": np.array([-1, 2, -3, 4], np.float32)})
    np.testing.assert_array_equal(y, [1, 2, 3, 4])


def test_plugin_pass_for_another_backend_does_not_run(monkeypatch):
    _use_plugin(monkeypatch, PassRegistration("before_lower", _relu_to_abs, "r2a", "mychip"))
    (y,) = tinyc.InferenceSession(_relu_model()).run(None, {"x": np.array([-1, 2, -3, 4],
                                                                           np.float32)})
    np.testing.assert_array_equal(y, [0, 2, 0, 4])


def test_plugin_pass_that_breaks_the_ir_is_named(monkeypatch):
    def drop_nodes(g):
        return g.replace(nodes=())

    _use_plugin(monkeypatch, PassRegistration("before_partition", drop_nodes, "dropper"))
    with pytest.raises(tinyc.TinycError, match="plugin pass 'dropper'"):
        tinyc.InferenceSession(_relu_model())
