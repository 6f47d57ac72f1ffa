"""LLVM must never kill the process (issue 15, item 5): a cpu or feature LLVM does
not know, or cannot use for the triple, is an error naming the spec file and
field. Each case runs in a child process, since the failure was an exit()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent("""
    import json, sys
    import tinyc
    try:
        exec(sys.argv[1])
        result = {"outcome": "ok"}
    except tinyc.TinycError as e:
        result = {"outcome": type(e).__name__, "message": str(e)}
    print(json.dumps(result))
""")


def run_in_child(code: str, cache_dir) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_dir)}
    r = subprocess.run([sys.executable, "-c", _CHILD, code], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, f"the child died with status {r.returncode}:\n{r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def _spec(tmp_path, cpu: str, features: str) -> str:
    path = tmp_path / "board.yaml"
    path.write_text(f"name: board\nextends: x86\ncpu: {cpu}\nfeatures: [{features}]\n"
                    "vector_bits: 128\nintrinsics: []\n")
    return str(path)


@pytest.mark.parametrize("cpu, features, field, words", [
    ("pentium99", "+sse2", "cpu", "did you mean pentium"),
    ("i386", "+sse2", "cpu", "64-bit code requested"),
    ("x86-64", "+sse2, +avx5", "features", "unknown feature 'avx5'"),
])
def test_bad_cpu_or_feature_in_a_spec_is_a_spec_error(tmp_path, cpu, features, field, words):
    path = _spec(tmp_path, cpu, features)
    r = run_in_child(f"tinyc.target.resolve_device({path!r})", tmp_path / "cache")
    assert r["outcome"] == "SpecError", r
    assert r["message"].startswith(f"{path}:3: field '{field}'") or \
        r["message"].startswith(f"{path}:4: field '{field}'"), r["message"]
    assert words in r["message"], r["message"]


def test_a_target_machine_for_an_impossible_cpu_raises(tmp_path):
    code = ("from tinyc.codegen.machine import CpuTarget, target_machine\n"
            "target_machine(CpuTarget('x86_64-unknown-linux-gnu', 'i386', '', 128))")
    for _ in range(2):  # the second answer comes from the disk cache
        r = run_in_child(code, tmp_path / "cache")
        assert r["outcome"] == "TargetError" and "i386" in r["message"], r
    assert list((tmp_path / "cache" / "tinyc-llvm-cpus").glob("*.json"))


def test_a_good_cpu_still_builds(tmp_path):
    path = _spec(tmp_path, "x86-64", "+sse2")
    r = run_in_child(f"d = tinyc.target.resolve_device({path!r}); assert d.cpu.cpu == 'x86-64'",
                     tmp_path / "cache")
    assert r == {"outcome": "ok"}
