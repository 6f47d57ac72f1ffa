"""The fuzz corpus in CI (issue 15, item 9): every case ends in success or a
TinycError subclass; no other exception, crash, hang or wrong answer.

A fixed-seed subset (320 cases) runs by default; the full sweep (1,100 cases,
seeds beyond the subset's) runs with `-m fuzz_full` and prints its table.
"""

from __future__ import annotations

import pytest

from fuzz.report import is_failure, run_sweep, table

DEFAULT_PER_CATEGORY = 64
FULL_PER_CATEGORY = 220


def _check(results: list[dict]) -> None:
    print("\n" + table(results))
    bad = [f"{r['category']} seed {r['seed']}: {r['outcome']}\n{r['detail']}"
           for r in results if is_failure(r)]
    assert not bad, f"{len(bad)} failing cases:\n" + "\n".join(bad[:10])


def test_fuzz_subset():
    results = run_sweep(DEFAULT_PER_CATEGORY)
    assert len(results) >= 300
    _check(results)


@pytest.mark.fuzz_full
def test_fuzz_full_sweep():
    results = run_sweep(FULL_PER_CATEGORY, start=DEFAULT_PER_CATEGORY)
    assert len(results) >= 1000
    _check(results)
