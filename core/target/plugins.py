"""Loading plugins through entry points (group "tinyc") with pluggy.

tinyc's own target specs come from a built-in plugin loaded the same way as any
other. A plugin that fails to import, implements a hook that does not exist, or
raises inside a hook is recorded with its error and skipped; every other target
keeps working. TINYC_PLUGINS=name1,name2 restricts which plugins load (empty:
none but tinyc's own).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from importlib import metadata

import pluggy

from . import builtin, hookspecs
from .store import HOOK_ORDER, PluginInfo, Registry, recorder

ENTRY_POINT_GROUP = "tinyc"
ENV_ONLY = "TINYC_PLUGINS"


@functools.cache
def registry() -> Registry:
    """Everything the installed plugins provide; loaded once per process."""
    return load_registry()


def load_registry(extra: Iterable[tuple[str, object]] = (), entry_points: bool = True
                  ) -> Registry:
    """Load tinyc's built-in plugin, then (unless told not to) installed plugins, then
    `extra` (name, module-or-object) pairs, as tests and docs examples do."""
    reg = Registry()
    pm = pluggy.PluginManager("tinyc")
    pm.add_hookspecs(hookspecs)
    _register(pm, reg, "tinyc", lambda: builtin, _dist_info("tinyc", "tinyc"))
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed(ep.name):
                _register(pm, reg, ep.name, ep.load, _entry_point_info(ep))
    for name, plugin in extra:
        _register(pm, reg, name, lambda p=plugin: p, PluginInfo(name, name, "", "in process"))
    _call_hooks(pm, reg)
    return reg


def allowed(name: str) -> bool:
    only = os.environ.get(ENV_ONLY)
    return only is None or name in {n.strip() for n in only.split(",") if n.strip()}


def _register(pm: pluggy.PluginManager, reg: Registry, name: str,
              load: Callable[[], object], info: PluginInfo) -> None:
    if name in reg.plugins:
        first = reg.plugins[name].distribution
        reg.problems.append(f"plugin '{name}' is provided by {first} and by "
                            f"{info.distribution}; using {first}")
        return
    reg.plugins[name] = info
    try:
        pm.register(load(), name=name)
        pm.check_pending()  # rejects implementations of hooks that do not exist
    except Exception as e:  # a broken plugin must not take the others down
        info.error = f"{type(e).__name__}: {e}"
        plugin = pm.get_plugin(name)
        if plugin is not None:
            pm.unregister(plugin)


def _call_hooks(pm: pluggy.PluginManager, reg: Registry) -> None:
    """Call every implementation alone, so a plugin that raises is named and skipped."""
    for hook_name in HOOK_ORDER:
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name
            try:
                impl.function(register=recorder(reg, hook_name, plugin))
            except Exception as e:
                info = reg.plugins[plugin]
                error = f"{hook_name} raised {type(e).__name__}: {e}"
                info.error = f"{info.error}; {error}" if info.error else error


def _entry_point_info(ep: metadata.EntryPoint) -> PluginInfo:
    dist = ep.dist
    if dist is None:
        return PluginInfo(ep.name, ep.value, "?", "?")
    return PluginInfo(ep.name, dist.name, dist.version, _origin(dist))


def _dist_info(name: str, dist_name: str) -> PluginInfo:
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return PluginInfo(name, dist_name, "?", "not installed (source tree)")
    return PluginInfo(name, dist.name, dist.version, _origin(dist))


def _origin(dist: metadata.Distribution) -> str:
    """Where the distribution comes from: an editable folder, a URL, or site-packages."""
    direct = dist.read_text("direct_url.json")  # PEP 610, written by pip
    if direct:
        info = json.loads(direct)
        url = info.get("url", "")
        where = url.removeprefix("file://")
        return f"editable {where}" if info.get("dir_info", {}).get("editable") else where
    return str(dist.locate_file(""))
