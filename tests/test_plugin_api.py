"""tinyc.plugin is the whole API plugins use: every name it lists resolves, and
the in-tree plugins import nothing else of tinyc."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tinyc.plugin

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"tinyc", "tinyc.plugin", "tinyc.plugin.conformance"}


def tinyc_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each import of a tinyc module in `path`, lazy ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, m) for line, m in found if m == "tinyc" or m.startswith("tinyc.")]


def plugin_files() -> list[Path]:
    return sorted(p for p in (ROOT / "plugins").rglob("*.py") if ".egg-info" not in str(p))


def test_the_scan_sees_the_plugins():
    files = plugin_files()
    assert len(files) > 10  # five plugins with their tests
    assert any(m == "tinyc.plugin" for f in files for _, m in tinyc_imports(f))


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_api(path):
    internal = [f"line {line}: {m}" for line, m in tinyc_imports(path) if m not in PUBLIC]
    assert not internal, (f"{path.relative_to(ROOT)} imports tinyc internals (use "
                          f"tinyc.plugin, or add what is missing to it): {internal}")


def test_the_scan_flags_an_internal_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tinyc.lower.igemm import int_gemm_calls\n")
    assert [m for _, m in tinyc_imports(bad) if m not in PUBLIC] == ["tinyc.lower.igemm"]


@pytest.mark.parametrize("name", tinyc.plugin.__all__)
def test_every_name_of_the_plugin_api_resolves(name):
    assert getattr(tinyc.plugin, name) is not None


def test_an_unknown_name_says_where_to_ask():
    with pytest.raises(AttributeError, match="added here"):
        tinyc.plugin.lower_graph  # noqa: B018


def test_the_scaffolds_use_the_plugin_api_only():
    for path in (ROOT / "core" / "scaffold" / "templates").glob("*.py.tmpl"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith(("from tinyc", "import tinyc")):
                module = line.split()[1]
                assert module in PUBLIC, f"{path.name}: {line}"
