"""Resolving what the user wrote after --target into a spec and a backend."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..codegen.machine import CpuTarget
from ..errors import TargetError
from .plugins import registry
from .spec import TargetSpec, read_spec_file, resolve_spec


@dataclass(frozen=True)
class Device:
    spec: TargetSpec
    backend: object
    cpu: CpuTarget


def _is_spec_path(target: str) -> bool:
    return target.endswith((".yaml", ".yml")) or os.path.sep in target


def resolve_spec_by_name(target: str) -> TargetSpec:
    reg = registry()
    files = dict(reg.spec_files)
    name = target
    if _is_spec_path(target):
        data = read_spec_file(target)
        name = data["name"]
        files[name] = data
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise TargetError(f"unknown target '{target}'; known targets: {known}")
    return resolve_spec(name, files)


def resolve_device(target: str) -> Device:
    if "," in target:
        raise TargetError(f"'{target}': deployment across several devices is not available "
                          "yet; give one target")
    spec = resolve_spec_by_name(target.strip())
    reg = registry()
    if spec.backend not in reg.backends:
        broken = [p for p in reg.plugins if p.error]
        hint = "".join(f"\n  plugin '{p.name}' failed to load: {p.error}" for p in broken)
        raise TargetError(f"target '{spec.name}' needs backend '{spec.backend}', which no "
                          f"installed plugin provides (pip install tinyc-backend-{spec.backend})"
                          + hint)
    backend = reg.backends[spec.backend][0]
    reason = backend.not_buildable_reason(spec)
    if reason:
        raise TargetError(f"target '{spec.name}' cannot be built here: {reason}")
    return Device(spec, backend, backend.cpu_target(spec))
