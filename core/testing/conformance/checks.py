"""The conformance checks, as pytest tests of the target named by the `tinyc_target`
fixture (`pytest --tinyc-target NAME`, or a fixture of the same name in a
plugin's own tests).

- the target's spec resolves, names an installed backend, and every intrinsic
  set it names compiles with LLVM for it;
- each op case and each model case compiles for the target, runs, and matches
  onnxruntime (or onnx.reference) within a tolerance of the output range;
- with accelerators in the target (`x86,npu`): an int8 QDQ convolution and
  matrix product are placed on an accelerator, and the split run equals the
  all-CPU run bit for bit (accel_checks.py).

A target may be a comma list (one CPU, any accelerators); every check runs on it.

Op and model checks are skipped, with the reason, when the target cannot be
built on this machine.
"""

from __future__ import annotations

import pytest

from .accel_checks import accelerated_partition, assert_split_equals_cpu
from .cases import MODEL_CASES, OP_CASES, Case
from .int8_cases import INT8_CASES


def _names(target: str) -> list[str]:
    return [n.strip() for n in target.split(",")]


def test_spec_resolves(tinyc_target: str) -> None:
    from tinyc.target import registry, resolve_spec_by_name

    reg = registry()
    for name in _names(tinyc_target):
        spec = resolve_spec_by_name(name)
        assert spec.backend in reg.backends, (f"target {spec.name} names backend "
                                              f"{spec.backend}, which no installed plugin provides")


def test_intrinsics_emit(tinyc_target: str) -> None:
    """Checks the intrinsic sets of the target's CPU (an accelerator's are its
    opcodes, checked by its backend when the spec resolves)."""
    from tinyc.target import registry, resolve_spec_by_name
    from tinyc.target.llvm_check import check_intrinsic_set
    from tinyc.target.targets import named_intrinsic_sets

    reg = registry()
    specs = [resolve_spec_by_name(n) for n in _names(tinyc_target)]
    cpus = [s for s in specs if reg.backends[s.backend].value.kind == "cpu"]
    spec = cpus[0] if cpus else specs[0]
    backend = reg.backends[spec.backend].value
    sets = named_intrinsic_sets(spec, reg)
    if backend.kind != "cpu" or not sets:
        pytest.skip(f"{spec.name} has no LLVM intrinsics to check")
    cpu = backend.cpu_target(spec)
    have = set(cpu.features.split(","))
    problems = {}
    for iset in sets:
        if all(f in have for f in iset.requires):
            for name, problem in check_intrinsic_set(iset, cpu).items():
                if problem:
                    problems[f"{iset.name}.{name}"] = problem
    assert not problems, f"intrinsics LLVM cannot emit for {spec.name}: {problems}"


@pytest.mark.parametrize("case", OP_CASES, ids=lambda c: c.name)
def test_op(case: Case, tinyc_target: str, tinyc_buildable: None) -> None:
    _compare(case, tinyc_target)


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: c.name)
def test_model(case: Case, tinyc_target: str, tinyc_buildable: None) -> None:
    _compare(case, tinyc_target)


@pytest.mark.parametrize("case", INT8_CASES, ids=lambda c: c.name)
def test_int8_layer_runs_on_the_accelerator(case: Case, tinyc_target: str,
                                             tinyc_buildable: None) -> None:
    accelerated_partition(case, tinyc_target)


@pytest.mark.parametrize("case", INT8_CASES, ids=lambda c: c.name)
def test_int8_split_run_equals_the_cpu_run(case: Case, tinyc_target: str,
                                           tinyc_buildable: None) -> None:
    assert_split_equals_cpu(case, tinyc_target)


def _compare(case: Case, target: str) -> None:
    import tinyc
    from tinyc.testing.compare import assert_close_to_range
    from tinyc.testing.reference import reference_outputs

    model = case.build()
    feeds = case.feeds(model)
    names = [o.name for o in model.graph.output]
    got = tinyc.InferenceSession(model, target=target).run(names, feeds)
    want, oracle = reference_outputs(model, feeds, names)
    for name, g, w in zip(names, got, want, strict=True):
        assert_close_to_range(g, w, case.tolerance, f"{case.name} output {name} vs {oracle}")
