"""`tinyc new-backend NAME [--kind cpu|accelerator]`: a pip-installable backend
plugin, ready to test.

The result installs with pip, registers backend, spec and intrinsics through the
`tinyc` entry point group, and passes its own tests (which run the conformance
kit) as generated. A `cpu` backend is tinyc's LLVM code generator for a spec
extending another CPU's; an `accelerator` is an int8 GEMM array on tinyc's
accelerator kit (tinyc.accel): a YAML spec and a few hooks.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

from ..errors import TinycError
from ..target.cpu import arch_of
from ..target.machine import host_triple

# template -> where it goes in the new project ({package}, {name} filled in), by kind
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package_init.py.tmpl": "{package}/__init__.py",
    "spec.yaml.tmpl": "{package}/{name}.yaml",
    "intrinsics.yaml.tmpl": "{package}/intrinsics/{name}_fma.yaml",
    "test_plugin.py.tmpl": "tests/test_{name}_plugin.py",
    "test_conformance.py.tmpl": "tests/test_{name}_conformance.py",
}
ACCELERATOR_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "accel_README.md.tmpl": "README.md",
    "accel_package_init.py.tmpl": "{package}/__init__.py",
    "accel_spec.yaml.tmpl": "{package}/{name}.yaml",
    "accel_intrinsics.yaml.tmpl": "{package}/intrinsics/{name}_gemm.yaml",
    "accel_test_plugin.py.tmpl": "tests/test_{name}_plugin.py",
    "accel_test_conformance.py.tmpl": "tests/test_{name}_conformance.py",
}
FILES_BY_KIND = {"cpu": FILES, "accelerator": ACCELERATOR_FILES}

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def scaffold_backend(name: str, parent: str | Path, extends: str = "x86",
                     kind: str = "cpu") -> Path:
    """Write tinyc-backend-NAME/ under `parent`; returns its folder. `extends`
    applies to a cpu backend (an accelerator's spec stands alone)."""
    if kind not in FILES_BY_KIND:
        raise TinycError(f"backend kind {kind!r}: expected one of {', '.join(FILES_BY_KIND)}")
    if not NAME.match(name):
        raise TinycError(f"backend name {name!r}: expected lower-case letters, digits and _ "
                         "starting with a letter (it becomes a Python package name)")
    root = Path(parent) / f"tinyc-backend-{name.replace('_', '-')}"
    if root.exists():
        raise TinycError(f"{root} already exists; choose another folder or name")
    values = _values(name, extends)
    templates = resources.files(__name__).joinpath("templates")
    for template, dest in FILES_BY_KIND[kind].items():
        path = root / dest.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = templates.joinpath(template).read_text(encoding="utf-8")
        path.write_text(string.Template(text).substitute(values), encoding="utf-8")
    return root


def _values(name: str, extends: str) -> dict[str, str]:
    return {
        "name": name,
        "package": f"tinyc_backend_{name}",
        "dist": f"tinyc-backend-{name.replace('_', '-')}",
        "class_name": "".join(p.capitalize() for p in name.split("_")),
        "extends": extends,
        "extends_ident": re.sub(r"\W", "_", extends),
        "host_arch": arch_of(host_triple()),
    }
