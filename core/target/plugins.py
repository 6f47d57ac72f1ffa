"""Loading backend plugins through entry points (group "tinyc") with pluggy.

A plugin that fails to import, implements an unknown hook, or raises inside a
hook is recorded with its error and skipped; every other target keeps working.
TINYC_PLUGINS=name1,name2 restricts which plugins load.
"""

from __future__ import annotations

import functools
import glob
import os
from dataclasses import dataclass, field
from importlib import metadata, resources

import pluggy

from . import hookspecs
from .spec import read_spec_file

ENTRY_POINT_GROUP = "tinyc"


@dataclass
class PluginInfo:
    name: str
    version: str
    origin: str  # the distribution (or "tinyc" for the core's own specs)
    error: str | None = None


@dataclass
class Registry:
    plugins: list[PluginInfo] = field(default_factory=list)
    # backend name -> (backend, the plugin that registered it)
    backends: dict[str, tuple[object, str]] = field(default_factory=dict)
    spec_files: dict[str, dict] = field(default_factory=dict)  # target name -> raw fields
    spec_origin: dict[str, str] = field(default_factory=dict)  # target name -> plugin
    spec_errors: list[str] = field(default_factory=list)


def _allowed(name: str) -> bool:
    only = os.environ.get("TINYC_PLUGINS")
    return only is None or name in {n.strip() for n in only.split(",") if n.strip()}


def _load_plugins(pm: pluggy.PluginManager, reg: Registry) -> None:
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if not _allowed(ep.name):
            continue
        dist = ep.dist
        info = PluginInfo(ep.name, dist.version if dist else "?", dist.name if dist else ep.value)
        reg.plugins.append(info)
        try:
            pm.register(ep.load(), name=ep.name)
            pm.check_pending()
        except Exception as e:  # a broken plugin must not take the others down
            info.error = f"{type(e).__name__}: {e}"
            plugin = pm.get_plugin(ep.name)
            if plugin is not None:
                pm.unregister(plugin)


def _call_each(hook: pluggy.HookCaller, reg: Registry, make_register) -> None:
    """Call every implementation separately so a raising plugin is attributed and skipped."""
    for impl in hook.get_hookimpls():
        try:
            impl.function(register=make_register(impl.plugin_name))
        except Exception as e:
            for info in reg.plugins:
                if info.name == impl.plugin_name:
                    info.error = f"{hook.name} raised {type(e).__name__}: {e}"


def _add_spec(reg: Registry, path: str, origin: str) -> None:
    from ..errors import SpecError

    try:
        data = read_spec_file(path)
    except SpecError as e:
        reg.spec_errors.append(str(e))
        return
    reg.spec_files[data["name"]] = data
    reg.spec_origin[data["name"]] = origin


def core_spec_paths() -> list[str]:
    folder = resources.files("tinyc.target_specs")
    return sorted(glob.glob(os.path.join(str(folder), "*.yaml")))


@functools.cache
def registry() -> Registry:
    reg = Registry()
    pm = pluggy.PluginManager("tinyc")
    pm.add_hookspecs(hookspecs)
    for path in core_spec_paths():
        _add_spec(reg, path, "tinyc")
    _load_plugins(pm, reg)

    def backend_register(plugin: str):
        return lambda backend: reg.backends.__setitem__(backend.name, (backend, plugin))

    def spec_register(plugin: str):
        return lambda path: _add_spec(reg, str(path), plugin)

    _call_each(pm.hook.tinyc_register_backends, reg, backend_register)
    _call_each(pm.hook.tinyc_register_target_specs, reg, spec_register)
    return reg
