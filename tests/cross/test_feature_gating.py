"""A target without a feature never gets its instructions, and an artifact run on
a core that lacks one of its features fails with a clear error, not a crash.

- aarch64-cortex-a72 code has no SVE or dot products and runs on qemu's
  cortex-a72 (test_acceptance); here an SVE build dies with SIGILL there;
- riscv64-rvv code dies on a qemu cpu without the V extension;
- Cortex-M55 code (Helium) faults on the Cortex-M4 board.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tinyc
from tinyc.runtime.emulated import RunError, load_emulated

from .support import conformance_model, feeds_for, require

SVE = re.compile(r"\b(z\d+\.[bhsd]|p\d+/[zm]|ptrue|whilelo)\b")


def saved(target: str, tmp_path, emit: tuple[str, ...] = ()) -> tinyc.Artifact:
    art = tinyc.compile(conformance_model("mlp"), target=target,
                        options=tinyc.CompileOptions(emit=emit))
    art.save(tmp_path)
    return art


def run_on(tmp_path, **core: str) -> list[np.ndarray]:
    model = load_emulated(tmp_path, **core)
    return model.run(None, feeds_for(conformance_model("mlp")))


def test_cortex_a72_build_runs_on_cortex_a72_and_has_no_sve(tmp_path):
    require("aarch64-cortex-a72")
    art = saved("aarch64-cortex-a72", tmp_path, emit=("asm",))
    assert not SVE.search(art.listings["s"]) and " sdot " not in art.listings["s"]
    (probs,) = run_on(tmp_path, cpu="cortex-a72")
    np.testing.assert_allclose(probs.sum(axis=-1), 1, rtol=1e-5)


def test_sve_build_fails_cleanly_on_cortex_a72(tmp_path):
    require("aarch64-sve")
    art = saved("aarch64-sve", tmp_path, emit=("asm",))
    assert SVE.search(art.listings["s"])
    run_on(tmp_path)  # qemu's "max" core has SVE
    with pytest.raises(RunError, match=r"cortex-a72 failed: killed by SIGILL: an illegal "
                                       r"instruction"):
        run_on(tmp_path, cpu="cortex-a72")


def test_rvv_build_fails_cleanly_without_the_v_extension(tmp_path):
    require("riscv64-rvv")
    saved("riscv64-rvv", tmp_path)
    with pytest.raises(RunError, match="killed by SIGILL"):
        run_on(tmp_path, cpu="rv64,v=false")


def test_helium_build_faults_cleanly_on_a_cortex_m4_board(tmp_path):
    require("cortex-m55")
    saved("cortex-m55", tmp_path)
    with pytest.raises(RunError, match="mps2-an386 .* the CPU faulted"):
        run_on(tmp_path, machine="mps2-an386")
