"""Target specs: YAML hardware descriptions, validated on load.

Errors name the file, the line and the field, and say what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from ..errors import SpecError

# field -> (expected type(s), description for error messages)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string (the target's name)"),
    "extends": ((str,), "the name of another target spec"),
    "backend": ((str,), "the name of a backend plugin, e.g. x86"),
    "description": ((str,), "a string"),
    "triple": ((str,), "an LLVM target triple such as x86_64-unknown-linux-gnu"),
    "cpu": ((str,), "an LLVM cpu name, or 'host'"),
    "features": ((list, str), "a list of LLVM features like [+avx2, +fma], or 'host'"),
    "vector_bits": ((int, str), "the SIMD width in bits (128, 256, 512), or 'host'"),
}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    backend: str
    path: str
    triple: str = ""
    cpu: str = "generic"
    features: tuple[str, ...] | str = ()
    vector_bits: int | str = 128
    description: str = ""
    extends: str | None = None
    fields: dict = field(default_factory=dict, compare=False)


class _LineLoader(yaml.SafeLoader):
    """safe_load that remembers the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = yaml.SafeLoader.construct_mapping(loader, node)
    mapping["__lines__"] = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_spec_file(path: str) -> dict:
    """Parse and validate one file; returns its fields (not yet merged with `extends`)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as e:
        raise SpecError(f"{path}: cannot read target spec: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise SpecError(f"{path}{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}:1: a target spec must be a mapping of fields")
    lines = data.pop("__lines__")
    for key, value in data.items():
        line = lines.get(key, 1)
        if key not in _FIELDS:
            raise SpecError(f"{path}:{line}: unknown field '{key}'; expected one of "
                            f"{', '.join(sorted(_FIELDS))}")
        types, what = _FIELDS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise SpecError(f"{path}:{line}: field '{key}' is {type(value).__name__} "
                            f"{value!r}; expected {what}")
    if "name" not in data:
        raise SpecError(f"{path}:1: missing field 'name'")
    data["__path__"] = os.path.abspath(path)
    return data


def resolve_spec(name: str, files: dict[str, dict]) -> TargetSpec:
    """Merge a spec with the chain of specs it extends (child fields win)."""
    chain: list[dict] = []
    current: str | None = name
    while current is not None:
        if current not in files:
            where = chain[-1]["__path__"] if chain else "<targets>"
            raise SpecError(f"{where}: extends unknown target '{current}'")
        if any(c["name"] == current for c in chain):
            raise SpecError(f"{files[current]['__path__']}: 'extends' forms a cycle at {current}")
        chain.append(files[current])
        current = files[current].get("extends")
    merged: dict = {}
    for d in reversed(chain):
        merged.update(d)
    if "backend" not in merged:
        raise SpecError(f"{merged['__path__']}:1: missing field 'backend' (directly or "
                        f"through 'extends')")
    features = merged.get("features", ())
    return TargetSpec(
        name=merged["name"], backend=merged["backend"], path=merged["__path__"],
        triple=merged.get("triple", ""), cpu=merged.get("cpu", "generic"),
        features=features if isinstance(features, str) else tuple(features),
        vector_bits=merged.get("vector_bits", 128), description=merged.get("description", ""),
        extends=files[name].get("extends"),
        fields={k: v for k, v in merged.items() if not k.startswith("__")},
    )
