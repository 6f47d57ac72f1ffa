"""tinyc's own plugin: the hardware descriptions shipped in target_specs/.

Loaded through the same hooks as every other plugin, and always loaded: specs of
other plugins and of users `extend` these.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from .hookspecs import PathLike, hookimpl


def yaml_files(package: str, folder: str = "") -> list[str]:
    """The .yaml files in a folder of an installed package, sorted: what plugins register."""
    where = resources.files(package)
    if folder:
        where = where.joinpath(folder)
    return sorted(str(p) for p in where.iterdir() if p.name.endswith((".yaml", ".yml")))


def core_spec_paths() -> list[str]:
    return yaml_files("tinyc.target_specs")


@hookimpl
def tinyc_register_target_specs(register: Callable[[PathLike], None]) -> None:
    for path in core_spec_paths():
        register(path)
