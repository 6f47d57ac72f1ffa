"""onnxruntime's `providers=` list -> a tinyc target string.

A provider is a tinyc target name (x86, accel_sim, ...) or an onnxruntime
name; onnxruntime's CPU names mean this machine's CPU target. The list is
ordered by preference, so ["accel_sim", "x86"] is a split deployment with the
accelerator preferred: the target "accel_sim,x86" (compiler.py; one CPU
and any accelerators). As in onnxruntime, the CPU is added last when the list
names none: every op it cannot place elsewhere runs there.
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Sequence

from .errors import TargetError

# onnxruntime provider names that mean "this machine's CPU"
CPU_PROVIDERS = ("CPUExecutionProvider", "DnnlExecutionProvider", "XnnpackExecutionProvider")

_HOST_TARGETS = {"x86_64": "x86", "amd64": "x86", "aarch64": "aarch64", "arm64": "aarch64"}


def host_target() -> str:
    machine = platform.machine().lower()
    if machine not in _HOST_TARGETS:
        raise TargetError(f"no tinyc target for this machine's CPU ({machine}); "
                          f"name one with target=")
    return _HOST_TARGETS[machine]


def normalize_providers(providers, provider_options=None) -> tuple[list[str], list[dict]]:
    """(names, options) from onnxruntime's two spellings: names with a parallel
    list of option dicts, or (name, options) tuples. Values become strings, as
    onnxruntime stores them; a name given twice keeps its first place (warned)."""
    if providers is None:
        return [], []
    if isinstance(providers, str) or not isinstance(providers, Sequence):
        raise ValueError("providers must be a list of names or (name, options) tuples")
    if provider_options is not None:
        if not isinstance(provider_options, Sequence) or isinstance(provider_options, str):
            raise ValueError("provider_options must be a list of dicts, one per provider")
        if len(provider_options) != len(providers):
            raise ValueError(f"{len(providers)} providers but {len(provider_options)} "
                             f"provider_options")
    names: list[str] = []
    options: list[dict] = []
    for k, p in enumerate(providers):
        name, opts = _one_provider(p, None if provider_options is None else provider_options[k])
        if name in names:
            warnings.warn(f"provider '{name}' is listed twice; the first is used", stacklevel=3)
            continue
        names.append(name)
        options.append(opts)
    return names, options


def _one_provider(p, given) -> tuple[str, dict]:
    if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], dict):
        if given is not None:
            raise ValueError(f"provider '{p[0]}' has options both in its tuple and in "
                             f"provider_options")
        name, opts = p
    elif isinstance(p, str):
        name, opts = p, given if given is not None else {}
    else:
        raise ValueError(f"a provider is a name or a (name, options) tuple, not {p!r}")
    if not isinstance(opts, dict):
        raise ValueError(f"options of provider '{name}' must be a dict, not {opts!r}")
    return name, {str(k): str(v) for k, v in opts.items()}


def target_for(names: list[str]) -> str:
    """The tinyc target string for an ordered provider list."""
    targets: list[str] = []
    for name in names:
        t = host_target() if name in CPU_PROVIDERS else name
        if name.endswith("ExecutionProvider") and name not in CPU_PROVIDERS:
            raise TargetError(f"provider '{name}' is an onnxruntime device tinyc has no target "
                              f"for; use a tinyc target name (tinyc targets lists them) or "
                              f"'CPUExecutionProvider'")
        if t not in targets:
            targets.append(t)
    if not targets:
        return host_target()
    if not any(_is_cpu(t) for t in targets):
        targets.append(host_target())
    return ",".join(targets)


def _is_cpu(target: str) -> bool:
    from .errors import TinycError
    from .target import registry, resolve_spec_by_name

    try:
        spec = resolve_spec_by_name(target)
    except TinycError:  # an unknown name: resolve_devices reports it with the others
        return True
    backend = registry().backends.get(spec.backend)
    return backend is None or backend.value.kind == "cpu"


def available_providers() -> list[str]:
    """The targets this machine can build for, then onnxruntime's CPU name (last,
    as onnxruntime lists it)."""
    from .target import registry
    from .target.listing import target_rows

    rows = target_rows(registry())
    names = [r[0] for r in rows[1:] if str(r[-1]).startswith("ok")]
    return [*names, "CPUExecutionProvider"]
