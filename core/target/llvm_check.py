"""Check that an intrinsic set's LLVM emission is real for a CPU target.

Each llvm/ir intrinsic becomes a one-call function, is verified and compiled to
assembly for the target. LLVM aborts the whole process when it cannot select an
instruction, so the check runs in a child process (`python -m tinyc.target.llvm_check`).

The IR is text on purpose: the declared types *are* text in the YAML, and
llvmlite's IRBuilder has no scalable vectors (RVV).
"""

from __future__ import annotations

import json
import subprocess
import sys

from .intrinsics import Intrinsic, IntrinsicSet
from .machine import CpuTarget


def check_intrinsic_set(iset: IntrinsicSet, target: CpuTarget) -> dict[str, str | None]:
    """intrinsic name -> None when LLVM emits it for `target`, else what went wrong."""
    jobs = {i.name: check_function(i) for i in iset.intrinsics if i.emit.kind != "opcode"}
    request = {"target": [target.triple, target.cpu, target.features], "jobs": jobs}
    r = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(request),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        crash = (r.stderr.strip().splitlines() or ["no message"])[-1]
        return {name: f"LLVM aborted: {crash}" for name in jobs}
    return json.loads(r.stdout)


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


def _run(request: dict) -> dict[str, str | None]:
    import llvmlite.binding as llvm

    from .machine import init_llvm

    init_llvm()
    triple, cpu, features = request["target"]
    tm = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, features=features, opt=2)
    out: dict[str, str | None] = {}
    for name, text in request["jobs"].items():
        try:
            module = llvm.parse_assembly(text)
            module.triple = triple
            module.verify()
            tm.emit_assembly(module)
            out[name] = None
        except RuntimeError as e:
            out[name] = str(e).strip().splitlines()[0]
    return out


if __name__ == "__main__":
    print(json.dumps(_run(json.loads(sys.stdin.read()))))
