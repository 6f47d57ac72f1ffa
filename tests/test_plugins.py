"""The plugin layer: every hook (datasette-style, one test_hook_<name> per hook,
checked by tests/test_docs.py), unknown hooks rejected, broken plugins isolated,
TINYC_PLUGINS."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from tinyc.passes import FunctionPass
from tinyc.target import (
    LlvmCpuBackend,
    OpSupport,
    PassRegistration,
    RuntimeDevice,
    hookimpl,
    load_registry,
    registry,
)

X86_SPEC = "name: mychip\nextends: x86\nbackend: mychip\n"
FMA_SET = """set: my_fma
intrinsics:
  fma4:
    compute: C[i] += A[i] * B[i]
    tile: {i: 4}
    dtypes: {A: float32, B: float32, C: float32}
    emit: {llvm: llvm.fma.v4f32, returns: <4 x float>, operands: [{tensor: A, type: <4 x float>},
           {tensor: B, type: <4 x float>}, {tensor: C, type: <4 x float>}]}
"""


def plugin(**hooks) -> types.SimpleNamespace:
    """A plugin object whose attributes are hook implementations."""
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def load(*plugins: tuple[str, object]):
    return load_registry(extra=plugins, entry_points=False)


class MyChip(LlvmCpuBackend):
    name = "mychip"


def test_hook_tinyc_register_target_specs(tmp_path: Path):
    (tmp_path / "mychip.yaml").write_text(X86_SPEC)
    reg = load(("mine", plugin(tinyc_register_target_specs=lambda register: register(
        tmp_path / "mychip.yaml"))))
    assert reg.specs["mychip"].plugin == "mine"
    assert reg.specs["x86"].plugin == "tinyc"  # the core's own specs, by the same hook


def test_hook_tinyc_register_intrinsics(tmp_path: Path):
    (tmp_path / "fma.yaml").write_text(FMA_SET)
    reg = load(("mine", plugin(tinyc_register_intrinsics=lambda register: register(
        str(tmp_path / "fma.yaml")))))
    (fma,) = reg.intrinsic_sets["my_fma"].value.intrinsics
    assert fma.tile == {"i": 4} and reg.intrinsic_sets["my_fma"].plugin == "mine"


def test_hook_tinyc_register_op_support():
    support = OpSupport("mychip", frozenset({"Conv"}))
    reg = load(("mine", plugin(tinyc_register_op_support=lambda register: register(support))))
    assert reg.op_support_for("mychip") == [support]
    assert reg.op_support_for("x86") == []


def test_hook_tinyc_register_passes():
    identity = FunctionPass("my_identity", lambda g: g)
    reg = load(("mine", plugin(tinyc_register_passes=lambda register: register(
        PassRegistration("before_lower", identity, identity.name, backend="mychip")))))
    assert [p.name for p in reg.passes_for("before_lower", "mychip")] == ["my_identity"]
    assert reg.passes_for("before_lower", "x86") == []
    assert reg.passes_for("after_import", "mychip") == []


def test_hook_tinyc_register_backends(tmp_path: Path):
    (tmp_path / "mychip.yaml").write_text(X86_SPEC)
    reg = load(("mine", plugin(
        tinyc_register_backends=lambda register: register(MyChip()),
        tinyc_register_target_specs=lambda register: register(tmp_path / "mychip.yaml"))))
    assert reg.backends["mychip"].plugin == "mine"
    assert reg.plugins["mine"].error is None


def test_hook_tinyc_register_runtime_devices():
    device = RuntimeDevice("board", ("mychip",), load=lambda folder: None)
    reg = load(("mine", plugin(tinyc_register_runtime_devices=lambda register: register(device))))
    assert reg.runtime_devices["board"].value is device


def test_implementing_an_unknown_hook_is_rejected():
    reg = load(("typo", plugin(tinyc_register_backend=lambda register: None)),
               ("good", plugin(tinyc_register_backends=lambda register: register(MyChip()))))
    assert "unknown hook 'tinyc_register_backend'" in reg.plugins["typo"].error
    assert "mychip" in reg.backends


def test_a_hook_with_wrong_arguments_is_rejected():
    reg = load(("bad", plugin(tinyc_register_backends=lambda reg: None)))
    assert "reg" in reg.plugins["bad"].error


def test_a_plugin_raising_in_a_hook_is_named_and_others_keep_working():
    def boom(register):
        raise RuntimeError("no license")

    reg = load(("broken", plugin(tinyc_register_backends=boom)),
               ("good", plugin(tinyc_register_backends=lambda register: register(MyChip()))))
    assert reg.plugins["broken"].error == \
        "tinyc_register_backends raised RuntimeError: no license"
    assert "mychip" in reg.backends and "x86" in reg.specs


def test_register_checks_what_it_is_given():
    reg = load(("wrong", plugin(tinyc_register_backends=lambda register: register("x86"))),
               ("phase", plugin(tinyc_register_passes=lambda register: register(
                   PassRegistration("sometime", lambda g: g, "p")))))
    assert "lacks name, kind" in reg.plugins["wrong"].error
    assert "expected one of after_import" in reg.plugins["phase"].error


def test_an_invalid_spec_from_a_plugin_is_a_problem_not_a_crash(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("name: bad\nbackend: x86\nvectr_bits: 128\n")
    reg = load(("mine", plugin(tinyc_register_target_specs=lambda register: register(
        tmp_path / "bad.yaml"))))
    assert any("bad.yaml:3: unknown field 'vectr_bits'" in p for p in reg.problems)
    assert "bad" not in reg.specs and "x86" in reg.specs


def test_two_plugins_registering_one_backend_name_is_reported():
    reg = load(("a", plugin(tinyc_register_backends=lambda register: register(MyChip()))),
               ("b", plugin(tinyc_register_backends=lambda register: register(MyChip()))))
    assert reg.backends["mychip"].plugin == "a"
    assert "registered by plugins 'a' and 'b'" in reg.problems[0]


def test_two_plugins_of_one_name_keep_the_first():
    reg = load(("same", plugin(tinyc_register_backends=lambda register: register(MyChip()))),
               ("same", plugin(tinyc_register_backends=lambda register: None)))
    assert reg.backends["mychip"].plugin == "same"
    assert reg.problems == ["plugin 'same' is provided by same and by same; using same"]


@pytest.mark.parametrize(("only", "loaded"), [("x86", {"tinyc", "x86"}), ("", {"tinyc"}),
                                              ("x86, arm", {"tinyc", "x86", "arm"})])
def test_tinyc_plugins_restricts_which_load(monkeypatch, only: str, loaded: set[str]):
    monkeypatch.setenv("TINYC_PLUGINS", only)
    assert set(load_registry().plugins) == loaded


def test_in_tree_backends_load_through_entry_points():
    reg = registry()
    for name in ("x86", "arm", "riscv", "wasm", "accel_sim"):
        assert reg.plugins[name].distribution.startswith("tinyc-backend-")
        assert reg.backends[name].plugin == name
