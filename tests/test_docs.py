"""Meta-tests, as datasette has them: every hook is documented (name and signature
match the hookspec), its documented example runs and registers something, every
hook has a test, and every schema field is in the reference docs."""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path

import pytest

from tinyc.target import hookspecs, load_registry
from tinyc.target.intrinsic_schema import INTRINSIC_SET_SCHEMA
from tinyc.target.schema import field_paths
from tinyc.target.spec_schema import SPEC_SCHEMA

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "writing-a-backend.md"
HOOKS = sorted(n for n, f in vars(hookspecs).items()
               if inspect.isfunction(f) and hasattr(f, "tinyc_spec"))


def _documented_hooks() -> dict[str, tuple[str, str]]:
    """hook name -> (documented arguments, the python example of its section)."""
    text = GUIDE.read_text()
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    found = {}
    for section in sections:
        m = re.match(r"`(tinyc_\w+)\(([^)]*)\)`", section)
        if m:
            example = re.search(r"```python\n(.*?)```", section, flags=re.S)
            found[m.group(1)] = (m.group(2), example.group(1) if example else "")
    return found


def test_there_are_hooks():
    assert len(HOOKS) == 6


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    documented = _documented_hooks()
    assert hook in documented, f"{hook} has no section in {GUIDE.name}"
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert documented[hook][0] == params


def test_no_documented_hook_is_missing_from_the_hookspecs():
    assert sorted(_documented_hooks()) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_has_a_docstring_for_register(hook):
    assert ":param register:" in (getattr(hookspecs, hook).__doc__ or "")


@pytest.mark.parametrize("hook", HOOKS)
def test_documented_example_runs_and_registers(hook, monkeypatch):
    monkeypatch.chdir(REPO)
    example = _documented_hooks()[hook][1]
    assert f"def {hook}(register)" in example
    module = types.ModuleType(f"example_{hook}")
    exec(compile(example, f"{GUIDE.name}:{hook}", "exec"), module.__dict__)
    reg = load_registry(extra=[("example", module)], entry_points=False)
    assert reg.plugins["example"].error is None and not reg.problems
    provided = [p for table in (reg.specs, reg.intrinsic_sets, reg.backends, reg.runtime_devices)
                for p in table.values()] + reg.op_support + reg.passes
    assert any(p.plugin == "example" for p in provided), f"{hook}'s example registered nothing"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tree = ast.parse((REPO / "tests" / "test_plugins.py").read_text())
    tests = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert f"test_hook_{hook}" in tests


@pytest.mark.parametrize(("doc", "schema"), [("spec-schema.md", SPEC_SCHEMA),
                                             ("intrinsics.md", INTRINSIC_SET_SCHEMA)])
def test_every_schema_field_is_documented(doc, schema):
    text = (REPO / "docs" / doc).read_text()
    missing = [f for f in field_paths(schema) if f"`{f}`" not in text]
    assert not missing, f"docs/{doc} does not document {missing}"
