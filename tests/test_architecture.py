"""The import graph of tinyc follows docs/architecture.md: no cycles between
units (subpackages and top-level modules), and every import goes down the
layer table written there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["tinyc", *parts])


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Every tinyc module `path` imports, lazily or not, relative imports resolved;
    `from pkg import name` counts pkg.name when that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in found if m in modules}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tinyc"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in CORE.rglob("*.py")}
    return {m: imported_modules(p, set(files)) for m, p in files.items()}


@pytest.fixture(scope="module")
def layers() -> dict[str, int]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers table"
    out = {}
    for line in block.group(1).strip().splitlines():
        level, *names = line.split()
        out |= dict.fromkeys(names, int(level))
    return out


def unit_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for m, targets in graph.items():
        for t in targets:
            if unit(m) != unit(t):
                edges.setdefault((unit(m), unit(t)), []).append(f"{m} -> {t}")
    return edges


def test_the_graph_is_read_from_the_source(graph):
    """A check over an empty or unresolved graph would pass for nothing."""
    assert len(graph) > 200
    assert "tinyc.program" in graph["tinyc.lower.registry"]
    assert "tinyc.tensorize.int_gemm" in graph["tinyc.lower.igemm"]  # a lazy import


def test_no_cycles_between_units(graph):
    edges = unit_edges(graph)
    succ: dict[str, set[str]] = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(u: str, path: list[str]) -> None:
        state[u] = 1
        for v in sorted(succ.get(u, ())):
            if state.get(v) == 1:
                cycle = path[path.index(v):] + [u, v] if v in path else [u, v]
                hops = [edges[(a, b)][0] for a, b in zip(cycle, cycle[1:], strict=False)
                        if (a, b) in edges]
                pytest.fail(f"import cycle {' -> '.join(cycle)}: {hops}")
            if state.get(v) is None:
                visit(v, path + [u])
        state[u] = 2

    for u in sorted(succ):
        if u not in state:
            visit(u, [])


def test_every_unit_has_a_layer(graph, layers):
    missing = sorted({unit(m) for m in graph} - set(layers))
    assert not missing, f"units missing from docs/architecture.md's layer table: {missing}"


def test_imports_go_down_the_layers(graph, layers):
    wrong = [f"{hop} (layer {layers[a]} -> {layers[b]})"
             for (a, b), hops in sorted(unit_edges(graph).items()) for hop in hops[:1]
             if layers.get(a, -1) <= layers.get(b, -1)]
    assert not wrong, "imports against docs/architecture.md's layers:\n" + "\n".join(wrong)


def test_the_layer_check_catches_an_upward_import(layers):
    """lower importing codegen is allowed; codegen importing lower is not."""
    assert layers["lower"] > layers["codegen"] > layers["program"] > layers["ir"]
    assert layers["runtime"] < min(layers[u] for u in ("passes", "codegen", "link", "compiler"))
