"""The int8 accelerator checks: a target with accelerators (`x86,npu`) must take
the quantized layer of each int8 case onto an accelerator, and compute the
same bits there as the CPU alone.

Placement is the device's call (its op support and `why_not`); whether the
offload pays is the cost model's, which depends on the spec's array and clock:
a device slower than the host here (an 8x8 array beside a 512-bit CPU) would
rightly be passed over. So when the cost model alone keeps the layer on the
host, the check keeps it off the host (`avoid`, as `tinyc compile --avoid`
does) and asserts the device then takes it; any other refusal fails with the
partitioner's reason.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from .cases import Case
from .int8_cases import LAYER


def _deployment(target: str):
    from tinyc.target import resolve_devices

    deployment = resolve_devices(target)
    if not deployment.accelerators:
        pytest.skip(f"'{target}' has no accelerator: the int8 accelerator checks run on a "
                    f"CPU and accelerators, e.g. --tinyc-target {target},NAME")
    return deployment


def accelerated_partition(case: Case, target: str):
    """The options under which the case's layer is on an accelerator (asserted)."""
    from tinyc.compiler import CompileOptions, partition_model
    from tinyc.partition import NOT_WORTH_IT

    deployment = _deployment(target)
    model = case.build()
    accelerators = {d.spec.name for d in deployment.accelerators}
    options = CompileOptions()
    _, partition = partition_model(model, deployment, options)
    placed = partition.placements[LAYER]
    if placed.category == NOT_WORTH_IT:
        print(f"{case.name}: {placed.why}; checking with {deployment.host.spec.name} avoided")
        options = CompileOptions(avoid={deployment.host.spec.name: [LAYER]})
        _, partition = partition_model(model, deployment, options)
        placed = partition.placements[LAYER]
    assert placed.device in accelerators, (
        f"{case.name}: {placed.op} ran on {placed.device}, not on {', '.join(accelerators)}: "
        f"{placed.why}")
    assert placed.op.split(".")[-1] == case.op, f"{LAYER} became {placed.op}, not {case.op}"
    return options


def assert_split_equals_cpu(case: Case, target: str) -> None:
    """Compiled, saved and loaded as a user would (tinyc.runtime.load), on the
    accelerator and on the CPU alone: the outputs are equal, bit for bit."""
    import tinyc
    from tinyc.compiler import compile_model

    options = accelerated_partition(case, target)
    deployment = _deployment(target)
    model = case.build()
    feeds = case.feeds(model)
    artifact = compile_model(model, target, options)
    on = set(artifact.programs) & {d.spec.name for d in deployment.accelerators}
    assert on, f"{case.name}: no accelerator program in the artifact ({set(artifact.programs)})"
    with tempfile.TemporaryDirectory() as folder:
        artifact.save(folder)
        got = tinyc.runtime.load(folder).run(None, feeds)
    want = tinyc.InferenceSession(model, target=deployment.host.spec.name).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w, err_msg=f"{case.name}: split run on {sorted(on)} "
                                                    "vs the CPU alone")
