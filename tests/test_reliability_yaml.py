"""Spec and intrinsic YAML with limits (issue 15, item 6): size, alias expansion,
nesting depth and encodings; every error is a SpecError naming the file.
Cases that used to exhaust memory or the stack run in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tinyc.errors import SpecError
from tinyc.target import resolve_spec_by_name, yamlfile
from tinyc.target.yamlfile import load_yaml

SPEC = "name: board\nextends: x86\nvector_bits: 128\n"

_CHILD = textwrap.dedent("""
    import json, sys, time
    from tinyc.errors import SpecError
    from tinyc.target.yamlfile import load_yaml
    start = time.perf_counter()
    try:
        load_yaml(sys.argv[1], "target spec")
        result = {"outcome": "ok"}
    except SpecError as e:
        result = {"outcome": "SpecError", "message": str(e)}
    result["seconds"] = time.perf_counter() - start
    print(json.dumps(result))
""")


def load_in_child(path) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"the child died with status {r.returncode}:\n{r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def billion_laughs() -> str:
    lines = ['name: lol', 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_fails_fast(tmp_path):
    path = tmp_path / "lol.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1100
    r = load_in_child(path)
    assert r["outcome"] == "SpecError", r
    assert r["message"].startswith(f"{path}: expands to more than"), r["message"]
    assert r["seconds"] < 1.0, r


def test_recursive_alias_is_a_spec_error(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("name: loop\nfeatures: &x [+avx, *x]\n")
    r = load_in_child(path)
    assert r["outcome"] == "SpecError" and r["message"].startswith(f"{path}:2:"), r
    assert "recursive alias" in r["message"]


@pytest.mark.parametrize("text", [
    "name: deep\nx: " + "[" * 3000 + "]" * 3000 + "\n",  # the parser itself recurses
    "name: deep\nx: " + "[" * 60 + "]" * 60 + "\n",
    # each alias one level deeper: shallow as written, 200 levels once expanded
    "name: chain\nc0: &c0 [1]\n" + "".join(f"c{i}: &c{i} [*c{i - 1}]\n" for i in range(1, 200)),
], ids=["parser_depth", "depth", "alias_chain"])
def test_deep_nesting_is_a_spec_error(tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    r = load_in_child(path)
    assert r["outcome"] == "SpecError" and r["message"].startswith(str(path)), r
    assert "deep" in r["message"], r["message"]


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(SPEC + "#" * yamlfile.MAX_BYTES + "\n")
    with pytest.raises(SpecError, match=f"^{path}: target spec is larger than"):
        load_yaml(str(path), "target spec")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-8-sig"])
def test_utf16_and_utf32_specs_are_read(tmp_path, encoding):
    path = tmp_path / "board.yaml"
    path.write_bytes(SPEC.encode(encoding))  # "utf-16" / "utf-32" write a BOM
    spec = resolve_spec_by_name(str(path))
    assert spec.name == "board" and spec.vector_bits == 128 and spec.where["vector_bits"] \
        .endswith("board.yaml:3")


def test_undecodable_bytes_name_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SpecError, match=f"^{path}: target spec is not valid UTF-8"):
        load_yaml(str(path), "target spec")


def test_anchors_and_aliases_within_the_limits_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("name: ok\nbase: &b {size: 32KiB, ways: 8}\nl1: *b\nl2: *b\n")
    doc = load_yaml(str(path), "target spec")
    assert doc.data["l2"] == {"size": "32KiB", "ways": 8} and doc.lines[("l2",)] == 4
