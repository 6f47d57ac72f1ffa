"""Target specs: YAML hardware descriptions, validated on load.

A spec may `extend` another; the child's fields win, mappings (caches, memories,
accelerator) merge key by key. Errors name the file, the line and the field,
and say what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import SpecError
from .schema import validate
from .spec_schema import SPEC_SCHEMA
from .yamlfile import YamlDoc, load_yaml

_UNITS = {"B": 1, "kB": 1000, "MB": 10**6, "GB": 10**9, "KiB": 1 << 10, "MiB": 1 << 20,
          "GiB": 1 << 30}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    backend: str
    path: str
    triple: str = ""
    cpu: str = "generic"
    features: tuple[str, ...] | str = ()  # or "host": detected when compiling
    vector_bits: int | str = 128  # or "host"
    description: str = ""
    extends: str | None = None
    caches: dict = field(default_factory=dict, compare=False)
    memories: dict = field(default_factory=dict, compare=False)
    intrinsics: tuple[str, ...] = ()  # intrinsic set names or paths
    accelerator: dict | None = field(default=None, compare=False)
    fields: dict = field(default_factory=dict, compare=False)  # everything, merged
    where: dict[str, str] = field(default_factory=dict, compare=False)  # field -> file:line
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # field -> its file


def read_spec_file(path: str) -> YamlDoc:
    """Parse and validate one file (not yet merged with what it extends)."""
    doc = load_yaml(path, "target spec")
    validate(doc, SPEC_SCHEMA, "target spec")
    return doc


def parse_size(size: int | str) -> int:
    """48KiB -> 49152; a plain integer is a number of bytes."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)", size.strip())
    if m is None or m.group(2) not in _UNITS:
        raise ValueError(f"not a size: {size!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def resolve_spec(name: str, files: dict[str, YamlDoc]) -> TargetSpec:
    """Merge a spec with the chain of specs it extends (child fields win)."""
    chain = _chain(name, files)
    merged: dict = {}
    where: dict[str, str] = {}
    sources: dict[str, str] = {}
    for doc in reversed(chain):
        _deep_merge(merged, doc.data)  # type: ignore[arg-type]
        where.update({k: doc.where((k,)) for k in doc.data})  # type: ignore[union-attr]
        sources.update({k: doc.path for k in doc.data})  # type: ignore[union-attr]
    if "backend" not in merged:
        raise chain[0].error((), f"spec '{name}' has no field 'backend' (directly or through "
                             "'extends'); expected the name of a backend plugin, e.g. x86")
    features = merged.get("features", ())
    return TargetSpec(
        name=merged["name"], backend=merged["backend"], path=chain[0].path,
        triple=merged.get("triple", ""), cpu=merged.get("cpu", "generic"),
        features=features if isinstance(features, str) else tuple(features),
        vector_bits=merged.get("vector_bits", 128), description=merged.get("description", ""),
        extends=chain[0].data.get("extends"),  # type: ignore[union-attr]
        caches=merged.get("caches", {}), memories=merged.get("memories", {}),
        intrinsics=tuple(merged.get("intrinsics", ())), accelerator=merged.get("accelerator"),
        fields=merged, where=where, sources=sources,
    )


def _chain(name: str, files: dict[str, YamlDoc]) -> list[YamlDoc]:
    chain: list[YamlDoc] = [files[name]]
    while "extends" in chain[-1].data:  # type: ignore[operator]
        parent = chain[-1].data["extends"]  # type: ignore[index]
        if parent not in files:
            known = ", ".join(sorted(files))
            raise chain[-1].error(("extends",), f"field 'extends' names unknown target "
                                  f"'{parent}'; expected one of: {known}")
        if any(d.data["name"] == parent for d in chain):  # type: ignore[index]
            raise chain[-1].error(("extends",), f"field 'extends' forms a cycle through "
                                  f"'{parent}'; expected a chain that ends")
        chain.append(files[parent])
    return chain


def _deep_merge(into: dict, child: dict) -> None:
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merged = dict(into[key])
            _deep_merge(merged, value)
            into[key] = merged
        else:
            into[key] = value


def spec_name(doc: YamlDoc) -> str:
    if not isinstance(doc.data, dict) or "name" not in doc.data:
        raise SpecError(f"{doc.path}:1: missing field 'name'")
    return str(doc.data["name"])
