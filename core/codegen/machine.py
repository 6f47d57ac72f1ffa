"""LLVM target machines, optimization and object emission for CPU targets."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import llvmlite.ir as ir

from ..errors import TargetError
from ..target.llvm_names import cpu_problem
from ..target.machine import CpuTarget, host_cpu, host_features, host_triple, init_llvm
from .llvm_util import check_selectable

# CpuTarget and the host queries live in target/machine.py; re-exported for
# branches in flight that import them from here
__all__ = ["CpuTarget", "emit_assembly", "emit_object", "host_cpu", "host_features",
           "host_triple", "init_llvm", "new_module", "optimize", "target_machine"]


def target_machine(t: CpuTarget, reloc: str = "pic") -> llvm.TargetMachine:
    init_llvm()
    problem = cpu_problem(t.triple, t.cpu, t.features)  # LLVM would exit() on some
    if problem:
        raise TargetError(problem)
    target = llvm.Target.from_triple(t.triple)
    return target.create_target_machine(
        cpu=t.cpu, features=t.features, opt=3, reloc=reloc, codemodel="default"
    )


def new_module(name: str, t: CpuTarget) -> ir.Module:
    # the name lands in a ModuleID comment: a newline or quote from a model's
    # graph name would end it and break the IR
    m = ir.Module(name=re.sub(r"[^A-Za-z0-9_.\-]", "_", name))
    m.triple = t.triple
    m.data_layout = str(target_machine(t).target_data)
    return m


def optimize(module: ir.Module, t: CpuTarget) -> llvm.ModuleRef:
    """Parse, verify and run LLVM's O3 pipeline for the target."""
    init_llvm()
    tm = target_machine(t)
    ref = llvm.parse_assembly(str(module))
    ref.triple = t.triple
    ref.data_layout = str(tm.target_data)
    ref.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(ref, pb)
    check_selectable(lambda: str(ref), t.triple)  # an error here, not an LLVM abort later
    return ref


def emit_object(ref: llvm.ModuleRef, t: CpuTarget) -> bytes:
    return target_machine(t).emit_object(ref)


def emit_assembly(ref: llvm.ModuleRef, t: CpuTarget) -> str:
    return target_machine(t).emit_assembly(ref)
