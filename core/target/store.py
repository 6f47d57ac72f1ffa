"""The registry: what each plugin provided, and the callbacks hooks register with.

Each `register` callback checks what it is given, so a plugin author learns of a
mistake from a message naming the hook, not from a failure deep in the compiler.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import SpecError
from .backend import Backend, check_backend
from .intrinsics import IntrinsicSet, read_intrinsic_file
from .registrations import PASS_PHASES, OpSupport, PassRegistration, RuntimeDevice
from .spec import read_spec_file, spec_name
from .yamlfile import YamlDoc

T = TypeVar("T")

# The order hooks are called in: what later hooks' checks may refer to comes first.
HOOK_ORDER = ("tinyc_register_target_specs", "tinyc_register_intrinsics",
              "tinyc_register_backends", "tinyc_register_op_support",
              "tinyc_register_passes", "tinyc_register_runtime_devices")


@dataclass
class PluginInfo:
    name: str  # the entry point's name
    distribution: str  # e.g. tinyc-backend-x86
    version: str
    origin: str  # where it is installed from
    error: str | None = None


@dataclass(frozen=True)
class Provided(Generic[T]):
    value: T
    plugin: str  # the name of the plugin that registered it


@dataclass
class Registry:
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    specs: dict[str, Provided[YamlDoc]] = field(default_factory=dict)
    intrinsic_sets: dict[str, Provided[IntrinsicSet]] = field(default_factory=dict)
    backends: dict[str, Provided[Backend]] = field(default_factory=dict)
    op_support: list[Provided[OpSupport]] = field(default_factory=list)
    passes: list[Provided[PassRegistration]] = field(default_factory=list)
    runtime_devices: dict[str, Provided[RuntimeDevice]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # invalid files, clashes

    def spec_files(self) -> dict[str, YamlDoc]:
        return {name: p.value for name, p in self.specs.items()}

    def passes_for(self, phase: str, backend: str | None) -> list[PassRegistration]:
        return [p.value for p in self.passes
                if p.value.phase == phase and p.value.backend in (None, backend)]

    def op_support_for(self, backend: str) -> list[OpSupport]:
        return [p.value for p in self.op_support if p.value.backend == backend]

    def broken_plugins(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]


def recorder(reg: Registry, hook: str, plugin: str) -> Callable[[object], None]:
    """The `register` callback handed to `plugin`'s implementation of `hook`."""
    record = _RECORDERS[hook]
    return lambda value: record(reg, plugin, value)


def _unique(reg: Registry, table: dict, key: str, value: object, plugin: str,
            what: str) -> None:
    if key in table and table[key].plugin != plugin:
        reg.problems.append(f"{what} '{key}' is registered by plugins '{table[key].plugin}' "
                            f"and '{plugin}'; using '{table[key].plugin}'")
        return
    table[key] = Provided(value, plugin)


def _record_spec(reg: Registry, plugin: str, path: object) -> None:
    try:
        doc = read_spec_file(os.fspath(path))  # type: ignore[arg-type]
    except SpecError as e:
        reg.problems.append(f"plugin '{plugin}': {e}")
        return
    _unique(reg, reg.specs, spec_name(doc), doc, plugin, "target")


def _record_intrinsics(reg: Registry, plugin: str, path: object) -> None:
    try:
        iset = read_intrinsic_file(os.fspath(path))  # type: ignore[arg-type]
    except SpecError as e:
        reg.problems.append(f"plugin '{plugin}': {e}")
        return
    _unique(reg, reg.intrinsic_sets, iset.name, iset, plugin, "intrinsic set")


def _record_backend(reg: Registry, plugin: str, backend: object) -> None:
    check_backend(backend)
    _unique(reg, reg.backends, backend.name, backend, plugin, "backend")  # type: ignore[attr-defined]


def _record_op_support(reg: Registry, plugin: str, support: object) -> None:
    _expect(support, OpSupport, "tinyc_register_op_support")
    reg.op_support.append(Provided(support, plugin))  # type: ignore[arg-type]


def _record_pass(reg: Registry, plugin: str, registration: object) -> None:
    _expect(registration, PassRegistration, "tinyc_register_passes")
    if registration.phase not in PASS_PHASES:  # type: ignore[attr-defined]
        raise ValueError(f"pass {registration.name!r} has phase "  # type: ignore[attr-defined]
                         f"{registration.phase!r}; expected one of {', '.join(PASS_PHASES)}")  # type: ignore[attr-defined]
    reg.passes.append(Provided(registration, plugin))  # type: ignore[arg-type]


def _record_runtime_device(reg: Registry, plugin: str, device: object) -> None:
    _expect(device, RuntimeDevice, "tinyc_register_runtime_devices")
    _unique(reg, reg.runtime_devices, device.name, device, plugin, "runtime device")  # type: ignore[attr-defined]


def _expect(value: object, kind: type, hook: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"register() of {hook} takes a tinyc.target.{kind.__name__}, "
                        f"not {type(value).__name__}")


_RECORDERS: dict[str, Callable[[Registry, str, object], None]] = {
    "tinyc_register_target_specs": _record_spec,
    "tinyc_register_intrinsics": _record_intrinsics,
    "tinyc_register_backends": _record_backend,
    "tinyc_register_op_support": _record_op_support,
    "tinyc_register_passes": _record_pass,
    "tinyc_register_runtime_devices": _record_runtime_device,
}
