"""Check that an intrinsic set's LLVM emission is real for a CPU target.

Each llvm/ir intrinsic becomes a one-call function, is verified and compiled to
assembly for the target. LLVM aborts the whole process when it cannot select an
instruction, so the check runs in a child process; when a batch aborts, each
function is tried alone to find the culprit.

An `llvm.*` name LLVM does not know is no error to LLVM: it is an ordinary external
function, and the artifact then fails to load ("undefined symbol"). A known
intrinsic is lowered to instructions, so a name that is still in the assembly is
one LLVM does not have.

Answers are kept per process and on disk (llvm_names.probe_cache_file), keyed by
the target and the function's text, which holds the name and the signature; the
child runs once per new intrinsic and machine.

The IR is text on purpose: the declared types *are* text in the YAML, and
llvmlite's IRBuilder has no scalable vectors (RVV).
"""

from __future__ import annotations

import json
import subprocess
import sys

from .intrinsics import Intrinsic, IntrinsicSet
from .llvm_names import probe_cache_file, read_cached, write_cached
from .machine import CpuTarget

_TIMEOUT = 120

# The child imports llvmlite alone (0.1 s; tinyc's import takes a second).
_CHILD = r"""
import json, re, sys
import llvmlite.binding as llvm
llvm.initialize_all_targets()
llvm.initialize_all_asmprinters()
request = json.loads(sys.stdin.read())
triple, cpu, features = request["target"]
tm = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features, opt=2)
out = {}
for name, text in request["jobs"].items():
    try:
        module = llvm.parse_assembly(text)
        module.triple = triple
        module.verify()
        assembly = tm.emit_assembly(module)
    except RuntimeError as e:  # the parser's detail is on its second line
        lines = [re.sub(r"^<string>:\d+:\d+: ", "", ln) for ln in str(e).strip().splitlines()]
        out[name] = ": ".join(lines[:2])
        continue
    called = dict.fromkeys(re.findall(r"@(llvm\.[\w.]+)", text))
    unknown = [n for n in called if n in assembly]
    out[name] = (f"LLVM has no intrinsic named '{unknown[0]}' (a call to it would be an "
                 "undefined symbol when the artifact loads)") if unknown else None
print(json.dumps(out))
"""
_answers: dict[tuple, str | None] = {}  # (target, function text) -> problem or None


def check_intrinsic_set(iset: IntrinsicSet, target: CpuTarget) -> dict[str, str | None]:
    """intrinsic name -> None when LLVM emits it for `target`, else what went wrong."""
    jobs = {i.name: check_function(i) for i in iset.intrinsics if i.emit.kind != "opcode"}
    return emission_problems(jobs, target)


def emission_problems(jobs: dict[str, str], target: CpuTarget) -> dict[str, str | None]:
    """Each job's function text -> None or the problem, from the caches where known."""
    where = (target.triple, target.cpu, target.features)
    out: dict[str, str | None] = {}
    todo: dict[str, str] = {}
    for name, text in jobs.items():
        if (where, text) in _answers:
            out[name] = _answers[(where, text)]
        elif (hit := read_cached(_disk_entry(where, text))) is not None:
            out[name] = _answers[(where, text)] = hit["problem"]
        else:
            todo[name] = text
    for name, problem in _run_child(todo, where).items():
        _answers[(where, todo[name])] = out[name] = problem
        write_cached(_disk_entry(where, todo[name]), {"problem": problem})
    return out


def _disk_entry(where: tuple[str, str, str], text: str):
    return probe_cache_file("tinyc-llvm-intrinsics", *where, text)


def _run_child(jobs: dict[str, str], where: tuple[str, str, str]) -> dict[str, str | None]:
    if not jobs:
        return {}
    request = json.dumps({"target": list(where), "jobs": jobs})
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD], input=request,
                           capture_output=True, text=True, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {name: f"LLVM did not finish within {_TIMEOUT} s" for name in jobs}
    if r.returncode == 0:
        return json.loads(r.stdout)
    if len(jobs) > 1:  # one of them aborted LLVM: find which
        return {k: v for name, text in jobs.items()
                for k, v in _run_child({name: text}, where).items()}
    lines = r.stderr.strip().splitlines()
    crash = next((ln for ln in lines if "LLVM ERROR" in ln), lines[-1] if lines else
                 f"exit status {r.returncode}")
    return {name: f"LLVM aborted: {crash.strip()}" for name in jobs}


def check_function(intrinsic: Intrinsic) -> str:
    """A module with `check(...)` returning the intrinsic's result for its operands."""
    emit = intrinsic.emit
    params = [f"{op.type} %{op.tensor}" for op in emit.operands if op.tensor]
    if emit.kind == "llvm":
        args = ", ".join(f"{op.type} %{op.tensor}" if op.tensor else f"{op.type} {op.const}"
                         for op in emit.operands)
        types = ", ".join(str(op.type) for op in emit.operands)
        head = f"declare {emit.returns} @{emit.code}({types})\n"
        body = f"  %result = call {emit.returns} @{emit.code}({args})\n"
        result = "%result"
    else:
        head = "".join(f"{d}\n" for d in emit.declare)
        lines = [ln.strip() for ln in emit.code.strip().splitlines()]
        body = "".join(f"  {ln}\n" for ln in lines)
        result = lines[-1].split("=", 1)[0].strip()
    return (f"{head}define {emit.returns} @check({', '.join(params)}) {{\n{body}"
            f"  ret {emit.returns} {result}\n}}\n")
