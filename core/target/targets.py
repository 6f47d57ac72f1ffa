"""Resolving what the user wrote after --target into devices.

`--target x86` (a name), `--target path/to/board.yaml` (the user's own spec),
`--target x86,accel_sim` (devices composed for split deployment: one CPU for
everything else, plus accelerators).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import SpecError, TargetError
from .backend import Backend
from .intrinsics import IntrinsicSet, read_intrinsic_file
from .llvm_check import check_function, emission_problems
from .llvm_names import cpu_problem
from .machine import CpuTarget, host_triple
from .plugins import registry
from .spec import TargetSpec, read_spec_file, resolve_spec, spec_name
from .store import Registry


@dataclass(frozen=True)
class Device:
    spec: TargetSpec
    backend: Backend
    cpu: CpuTarget | None  # None for an accelerator
    intrinsics: tuple[IntrinsicSet, ...] = ()  # the sets this device can use
    plugin: str = ""  # the plugin that provided the backend


@dataclass(frozen=True)
class Deployment:
    host: Device  # the CPU that runs whatever no accelerator takes
    accelerators: tuple[Device, ...] = ()

    @property
    def devices(self) -> tuple[Device, ...]:
        return (self.host, *self.accelerators)


def is_spec_path(target: str) -> bool:
    return target.endswith((".yaml", ".yml")) or os.path.sep in target


def resolve_spec_by_name(target: str, reg: Registry | None = None) -> TargetSpec:
    """A target name or the path of a spec file -> the merged spec."""
    files = (reg or registry()).spec_files()
    name = target
    if is_spec_path(target):
        doc = read_spec_file(target)
        name = spec_name(doc)
        files[name] = doc
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise TargetError(f"unknown target '{target}'; known targets: {known} "
                          "(or give the path of a .yaml spec)")
    return resolve_spec(name, files)


def resolve_device(target: str) -> Device:
    """The one device the compiler builds for today (see resolve_devices)."""
    deployment = resolve_devices(target)
    if deployment.accelerators:
        names = ", ".join(d.spec.name for d in deployment.accelerators)
        raise TargetError(f"'{target}': split deployment onto {names} needs the partitioner, "
                          "which the compiler does not have yet; compile for "
                          f"'{deployment.host.spec.name}' alone")
    return deployment.host


def resolve_devices(target: str) -> Deployment:
    """A comma list of targets -> one CPU device and any accelerators, each buildable."""
    names = [n.strip() for n in target.split(",")]
    if not all(names):
        raise TargetError(f"'{target}': empty target name in the list")
    reg = registry()
    specs = [resolve_spec_by_name(n, reg) for n in names]  # spec errors first, all of them
    devices = [device_for(spec, reg) for spec in specs]
    cpus = [d for d in devices if d.backend.kind == "cpu"]
    if len(cpus) != 1:
        raise TargetError(_cpu_count_problem(target, cpus))
    return Deployment(cpus[0], tuple(d for d in devices if d.backend.kind != "cpu"))


def device_for(spec: TargetSpec, reg: Registry) -> Device:
    if spec.backend not in reg.backends:
        hint = "".join(f"\n  plugin '{p.name}' failed to load: {p.error}"
                       for p in reg.broken_plugins())
        raise TargetError(f"target '{spec.name}' needs backend '{spec.backend}', which no "
                          f"installed plugin provides (pip install tinyc-backend-{spec.backend})"
                          + hint)
    provided = reg.backends[spec.backend]
    backend = provided.value
    if backend.kind == "cpu":
        check_llvm_names(spec)
    reason = backend.not_buildable_reason(spec)
    if reason:
        raise TargetError(f"target '{spec.name}' cannot be built here: {reason}")
    cpu = backend.cpu_target(spec) if backend.kind == "cpu" else None
    sets = usable_intrinsics(spec, reg, cpu.features if cpu else "")
    if cpu is not None:
        check_intrinsic_emission(cpu, sets)
    return Device(spec, backend, cpu, sets, provided.plugin)


def check_llvm_names(spec: TargetSpec) -> None:
    """The spec's cpu and features must be names LLVM knows and can build for its
    triple (else LLVM warns, or exits the process). 'host' ones come from LLVM."""
    cpu = "" if spec.cpu == "host" else str(spec.cpu)
    features = "" if spec.features == "host" else ",".join(spec.features)
    problem = cpu_problem(spec.triple or host_triple(), cpu, features)
    if problem:
        field = "features" if problem.split("'")[0].strip().endswith("feature") else "cpu"
        raise spec_error(spec, field, problem)


def check_intrinsic_emission(cpu: CpuTarget, sets: tuple[IntrinsicSet, ...]) -> None:
    """Every intrinsic the device may call must be one LLVM knows, with the types
    it takes, and can emit for the target; else the compile would fail in LLVM's
    verifier, abort the process, or build an artifact that cannot load."""
    intrinsics = {f"{s.name}.{i.name}": (s, i) for s in sets for i in s.intrinsics
                  if i.emit.kind != "opcode"}
    problems = emission_problems({k: check_function(i) for k, (_, i) in intrinsics.items()}, cpu)
    for key, (iset, intr) in intrinsics.items():
        if problems[key]:
            raise SpecError(f"{intr.where}: field 'intrinsics.{intr.name}.emit.{intr.emit.kind}'"
                            f": intrinsic '{intr.name}' of set '{iset.name}' cannot be used "
                            f"for {cpu.triple} (cpu {cpu.cpu or 'generic'}): {problems[key]}")


def usable_intrinsics(spec: TargetSpec, reg: Registry, features: str) -> tuple[IntrinsicSet, ...]:
    """The spec's intrinsic sets that `features` allow. A set the spec's own (explicit)
    features do not allow is an error; with `features: host` it is left out."""
    have = set(features.split(","))
    usable = []
    for iset in named_intrinsic_sets(spec, reg):
        lacking = [f for f in iset.requires if f not in have]
        if lacking and spec.features != "host":
            raise spec_error(spec, "intrinsics", f"intrinsic set '{iset.name}' needs "
                             f"{', '.join(lacking)}, which the spec's features lack")
        if not lacking:
            usable.append(iset)
    return tuple(usable)


def named_intrinsic_sets(spec: TargetSpec, reg: Registry) -> list[IntrinsicSet]:
    sets = []
    # paths are relative to the file that lists them, which may be a parent spec
    folder = os.path.dirname(os.path.abspath(spec.sources.get("intrinsics", spec.path)))
    for name in spec.intrinsics:
        if name.endswith((".yaml", ".yml")):
            sets.append(read_intrinsic_file(os.path.join(folder, name)))
        elif name in reg.intrinsic_sets:
            sets.append(reg.intrinsic_sets[name].value)
        else:
            known = ", ".join(sorted(reg.intrinsic_sets)) or "none"
            raise spec_error(spec, "intrinsics", f"intrinsic set '{name}' is not provided by "
                             f"any installed plugin; expected one of: {known}")
    return sets


def spec_error(spec: TargetSpec, field: str, message: str) -> SpecError:
    return SpecError(f"{spec.where.get(field, spec.path)}: field '{field}': {message}")


def _cpu_count_problem(target: str, cpus: list[Device]) -> str:
    if not cpus:
        return (f"'{target}' has no CPU target to run the ops no accelerator takes; add one, "
                f"e.g. --target x86,{target}")
    return (f"'{target}' names {len(cpus)} CPU targets ({', '.join(d.spec.name for d in cpus)});"
            " give one CPU and any number of accelerators")
