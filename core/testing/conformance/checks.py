"""The conformance checks, as pytest tests of the target named by the `tinyc_target`
fixture (`pytest --tinyc-target NAME`, or a fixture of the same name in a
plugin's own tests).

- the target's spec resolves, names an installed backend, and every intrinsic
  set it names compiles with LLVM for it;
- each op case and each model case compiles for the target, runs, and matches
  onnxruntime (or onnx.reference) within a tolerance of the output range.

Op and model checks are skipped, with the reason, when the target cannot be
built on this machine.
"""

from __future__ import annotations

import pytest

from .cases import MODEL_CASES, OP_CASES, Case


def test_spec_resolves(tinyc_target: str) -> None:
    from tinyc.target import registry, resolve_spec_by_name

    spec = resolve_spec_by_name(tinyc_target)
    reg = registry()
    assert spec.backend in reg.backends, (
        f"target {spec.name} names backend {spec.backend}, which no installed plugin provides")


def test_intrinsics_emit(tinyc_target: str) -> None:
    from tinyc.target import registry, resolve_spec_by_name
    from tinyc.target.llvm_check import check_intrinsic_set
    from tinyc.target.targets import named_intrinsic_sets

    reg = registry()
    spec = resolve_spec_by_name(tinyc_target)
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
