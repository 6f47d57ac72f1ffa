"""Checking a cpu name and feature string before LLVM sees them.

LLVM takes any name: an unknown cpu or feature only draws a warning, and a
known cpu that cannot run the triple (i386 for x86_64) makes it call exit()
on the whole process when code is emitted. llvmlite has no list of names, but
LLVM prints them for the cpu "help". So a child process prints the lists and
then emits a small function for the asked (triple, cpu, features); the answer
is kept per process and on disk (keyed by LLVM's version), so the child runs
once per combination and machine (about 0.15 s).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

_PROBE = r"""
import sys
import llvmlite.binding as llvm
llvm.initialize_all_targets()
llvm.initialize_all_asmprinters()
triple, cpu, features = sys.argv[1:4]
target = llvm.Target.from_triple(triple)
target.create_target_machine(cpu="help", features="+help")
sys.stderr.write("\n<<probe>>\n")
sys.stderr.flush()
tm = target.create_target_machine(cpu=cpu, features=features, opt=2)
m = llvm.parse_assembly("define i32 @f(i32 %x) {\n  %y = add i32 %x, 1\n  ret i32 %y\n}\n")
m.triple = triple
m.data_layout = str(tm.target_data)
tm.emit_object(m)
"""

_ROW = re.compile(r"^\s{2}(\S+)\s+- ", re.M)


def cpu_problem(triple: str, cpu: str, features: str) -> str | None:
    """None if LLVM knows `cpu` and every feature for `triple` and emits code with
    them, else what is wrong and the valid choices (or the nearest ones)."""
    answer = _probe(triple, cpu, features)
    cpus, feats = answer["cpus"], answer["features"]
    if cpus and cpu not in cpus and cpu not in ("", "generic"):
        return f"unknown cpu '{cpu}' for {triple}; {_choices(cpu, cpus)}"
    for f in (f.strip() for f in features.split(",") if f.strip()):
        name = f.lstrip("+-")
        if not f.startswith(("+", "-")):
            return f"feature '{f}' must start with '+' or '-'"
        if feats and name not in feats:
            return f"unknown feature '{name}' for {triple}; {_choices(name, feats)}"
    return answer["crash"]


def _choices(name: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(name, valid, n=5, cutoff=0.6)
    if near:
        return "did you mean " + ", ".join(near) + "?"
    return f"valid ones are {', '.join(valid[:60])}{' ...' if len(valid) > 60 else ''}"


@functools.cache
def _probe(triple: str, cpu: str, features: str) -> dict:
    path = probe_cache_file("tinyc-llvm-cpus", triple, cpu, features)
    answer = read_cached(path)
    if answer is None:
        answer = _run_probe(triple, cpu, features)
        write_cached(path, answer)
    return answer


def read_cached(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged entry: probe again
    return answer if isinstance(answer, dict) else None


def write_cached(path: Path | None, answer: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(answer), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # no cache folder: probe again next time


def _run_probe(triple: str, cpu: str, features: str) -> dict:
    r = subprocess.run([sys.executable, "-c", _PROBE, triple, cpu, features],
                       capture_output=True, text=True, timeout=120)
    lists, _, after = (r.stderr + r.stdout).partition("<<probe>>")
    cpu_part, _, feature_part = lists.partition("Available features")
    crash = None
    if r.returncode != 0:
        lines = [ln for ln in after.strip().splitlines() if "LLVM ERROR" in ln] or \
            after.strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        crash = f"LLVM cannot emit code for cpu '{cpu}' on {triple}: {lines[0].strip()}"
    return {"cpus": sorted(set(_ROW.findall(cpu_part))),
            "features": sorted(set(_ROW.findall(feature_part))), "crash": crash}


def probe_cache_file(folder: str, *parts: str) -> Path | None:
    """Where an answer of LLVM's about `parts` is kept: beside the artifact cache,
    not in it (whose folder holds artifacts only), keyed by LLVM's version too;
    TINYC_CACHE_DIR=off turns both off."""
    import llvmlite.binding as llvm

    from ..paths import cache_root

    if cache_root() is None:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    version = ".".join(map(str, llvm.llvm_version_info))
    key = hashlib.sha256("\0".join((version, *parts)).encode()).hexdigest()[:24]
    return Path(base) / folder / f"{key}.json"
