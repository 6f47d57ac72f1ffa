"""The guide's cross-target example (docs/writing-a-backend.md) runs and registers
a packaging backend and its runtime device."""

from __future__ import annotations

import re
import types
from pathlib import Path

from tinyc.target import Packager, load_registry

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-backend.md"


def test_cross_target_example_registers_a_packager_and_a_runtime_device():
    text = GUIDE.read_text()
    example = re.search(r"## Cross targets.*?```python\n(.*?)```", text, re.S).group(1)
    module = types.ModuleType("cross_example")
    exec(compile(example, f"{GUIDE.name}:cross targets", "exec"), module.__dict__)
    reg = load_registry(extra=[("example", module)], entry_points=False)
    assert reg.plugins["example"].error is None and not reg.problems
    assert isinstance(reg.backends["myriscv"].value, Packager)
    assert reg.runtime_devices["myriscv-qemu"].value.backends == ("myriscv",)
