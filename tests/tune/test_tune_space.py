"""Knob spaces as the GEMM declares them: the defaults are exactly the
hand-picked blocking, every value is legal for the driver, and a space's
sampling and mutation stay inside it."""

from __future__ import annotations

import random

import pytest

from tinyc.codegen.kernels.gemm.gemm_blocking import (
    blocking_knobs,
    configured_blocking,
    default_blocking,
)
from tinyc.schedule import KnobSpace

SHAPES = [(64, 80, 96), (1, 1000, 2048), (3136, 64, 576), (49, 512, 4608), (7, 7, 7)]


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("mr,nr", [(8, 48), (6, 16), (7, 64)])
def test_the_defaults_are_the_hand_picked_blocking(m, n, k, mr, nr):
    space = KnobSpace(blocking_knobs(mr, nr, m, n, k))
    assert configured_blocking(space.defaults(), mr, nr, m, n, k) == \
        default_blocking(mr, nr, m, n, k)
    for config in (space.sample(random.Random(s)) for s in range(20)):
        blk = configured_blocking(config, mr, nr, m, n, k)
        assert 1 <= blk.kc <= k and blk.mc % mr == 0 and blk.nc % nr == 0


def test_a_fixed_k_block_is_not_a_knob():
    """A summation order fixes KC (ir/sum_order.py): tuning must not move it."""
    knobs = blocking_knobs(8, 48, 64, 80, 1024, kc=128)
    assert "kc" not in [k.name for k in knobs]
    config = KnobSpace(knobs).defaults()
    assert configured_blocking(config, 8, 48, 64, 80, 1024, kc=128).kc == 128


def test_mutation_and_sampling_stay_legal():
    space = KnobSpace(blocking_knobs(8, 48, 3136, 64, 576))
    rng = random.Random(0)
    config = space.defaults()
    for _ in range(200):
        config = space.mutate(config, rng)
        assert space.legal(config)
        assert space.legal(space.sample(rng))
    assert not space.legal({**config, "mc": 12345})
    assert not space.legal({k: v for k, v in config.items() if k != "mc"})
