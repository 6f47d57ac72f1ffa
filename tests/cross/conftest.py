from __future__ import annotations

import pytest

from .support import require
from .web_models import TARGET, WebModel, build, web_model_protos


@pytest.fixture(scope="session")
def web_models(tmp_path_factory) -> dict[str, WebModel]:
    """squeezenet and bert_tiny compiled for wasm32-simd into one folder each
    (siblings, so one server shows both), shared by the node and Chromium tests."""
    require(TARGET)
    root = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYC_CACHE_DIR", "off")  # the web files must come from this plugin
        return {name: build(name, model, feeds, str(root / name))
                for name, (model, feeds) in web_model_protos().items()}
