"""What `tinyc targets` prints: targets, plugins, problems, and intrinsic sets.

Listing never raises for a plugin's sake: a broken plugin or spec is a line of
the listing, and every other target is listed as usual.
"""

from __future__ import annotations

from ..errors import TinycError
from .spec import TargetSpec
from .store import Registry
from .targets import device_for, resolve_spec_by_name


def target_rows(reg: Registry) -> list[tuple[str, ...]]:
    rows = [("target", "backend", "plugin", "spec from", "status")]
    for name in sorted(reg.specs):
        try:
            spec = resolve_spec_by_name(name, reg)
        except TinycError as e:
            rows.append((name, "?", "?", reg.specs[name].plugin, f"invalid spec: {e}"))
            continue
        rows.append((name, spec.backend, _provider(reg, spec), reg.specs[name].plugin,
                     target_status(spec, reg)))
    return rows


def target_status(spec: TargetSpec, reg: Registry) -> str:
    if spec.backend not in reg.backends:
        return f"needs plugin tinyc-backend-{spec.backend.replace('_', '-')}"
    try:
        reason = reg.backends[spec.backend].value.not_buildable_reason(spec)
        if reason:
            return f"not buildable: {reason}"
        device = device_for(spec, reg)
    except TinycError as e:
        return f"invalid: {e}"
    except Exception as e:  # a plugin's bug must not break the listing
        return f"plugin error: {type(e).__name__}: {e}"
    if device.cpu is None:
        return "ok"
    return f"ok ({device.cpu.cpu}, {device.cpu.vector_bits}-bit vectors)"


def plugin_lines(reg: Registry) -> list[str]:
    lines = []
    for p in reg.plugins.values():
        state = f"FAILED: {p.error}" if p.error else _provides(reg, p.name)
        lines.append(f"  {p.name:<12} {p.distribution} {p.version}  [{p.origin}]  {state}")
    return lines


def intrinsic_lines(reg: Registry) -> list[str]:
    lines = []
    for name in sorted(reg.intrinsic_sets):
        provided = reg.intrinsic_sets[name]
        iset = provided.value
        needs = f"; needs {','.join(iset.requires)}" if iset.requires else ""
        lines.append(f"{name} (plugin {provided.plugin}{needs}): {iset.description}")
        for i in iset.intrinsics:
            tile = " ".join(f"{k}={v}" for k, v in i.tile.items())
            dtypes = " ".join(f"{k}:{v}" for k, v in i.dtypes.items())
            lines.append(f"  {i.name:<24} {i.compute.text:<28} tile {tile:<14} {dtypes:<28} "
                         f"{i.emit.kind} {i.emit.code.strip().splitlines()[0]}")
    return lines


def format_table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    return [" ".join(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=False)) + " " + r[-1]
            for r in rows]


def _provider(reg: Registry, spec: TargetSpec) -> str:
    if spec.backend not in reg.backends:
        return "(not installed)"
    info = reg.plugins[reg.backends[spec.backend].plugin]
    return f"{info.distribution} {info.version}"


def _provides(reg: Registry, plugin: str) -> str:
    parts = [
        ("specs", [n for n, p in reg.specs.items() if p.plugin == plugin]),
        ("backends", [n for n, p in reg.backends.items() if p.plugin == plugin]),
        ("intrinsic sets", [n for n, p in reg.intrinsic_sets.items() if p.plugin == plugin]),
        ("op support", [p.value.backend for p in reg.op_support if p.plugin == plugin]),
        ("passes", [p.value.name for p in reg.passes if p.plugin == plugin]),
        ("runtime devices", [n for n, p in reg.runtime_devices.items() if p.plugin == plugin]),
    ]
    return "; ".join(f"{what}: {', '.join(sorted(names))}" for what, names in parts if names)
