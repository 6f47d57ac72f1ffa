"""model.json's checks (runtime/schema.py, validate.check_plan) are total: any
JSON at any field gives acceptance or an ArtifactError, never another
exception (hypothesis; pure Python, no native code runs)."""

from __future__ import annotations

import copy

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tinyc.errors import ArtifactError  # noqa: E402
from tinyc.link.artifact import artifact_meta  # noqa: E402
from tinyc.runtime import schema, validate  # noqa: E402

_IO = [{"name": "x", "dtype": "float32", "shape": [2, 8]}]
META = artifact_meta("x86", "x86_64-unknown-linux-gnu", 256, _IO, _IO, "0.1.0", b"so", b"w")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=10)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


PATHS = list(_paths(META))[1:]


def _check(meta) -> None:
    schema.check(meta, schema.HOST, "model.json")
    validate.check_plan(meta, "model.json")


def test_the_written_meta_passes():
    _check(META)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATHS), json_values, st.booleans())
def test_any_value_anywhere_is_accepted_or_an_artifact_error(path, value, delete):
    meta = copy.deepcopy(META)
    parent = meta
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        _check(meta)
    except ArtifactError:
        pass
