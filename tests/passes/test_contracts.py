"""Shape contracts (passes/contracts.py, issue 15 items 2 and 8): parameter
shapes against attributes and each other are ModelErrors naming the node,
where they were ZeroDivisionErrors, garbage or crashes; an empty product
(MatMul with K=0) gives zeros, as onnxruntime does."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc
from tinyc.testing.bad_models import CONTRACT_CASES, EMPTY_PRODUCTS, FRONTEND_CASES


@pytest.mark.parametrize("name", list(CONTRACT_CASES))
def test_a_broken_contract_is_a_model_error_naming_the_node(name):
    model, message = CONTRACT_CASES[name]()
    with pytest.raises(tinyc.ModelError, match=message):
        tinyc.compile(model, target="x86")


@pytest.mark.parametrize("name", list(FRONTEND_CASES))
def test_unreadable_model_parts_are_model_errors(tmp_path, name):
    data, message = FRONTEND_CASES[name]()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    with pytest.raises(tinyc.ModelError, match=message):
        tinyc.compile(str(path), target="x86")


@pytest.mark.parametrize("name", list(EMPTY_PRODUCTS))
def test_a_product_over_k0_gives_zeros(tmp_path, name):
    model, feeds, shape = EMPTY_PRODUCTS[name]()
    (y,) = tinyc.compile(model, target="x86").load(tmp_path / "a").run(None, feeds)
    np.testing.assert_array_equal(y, np.zeros(shape, np.float32))


def test_a_well_formed_recurrent_model_passes_its_contract():
    from tinyc.testing.bad_models import lstm

    tinyc.compile(lstm(hidden=4, w_hidden=4), target="x86")
