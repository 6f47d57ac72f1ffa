"""Model folders for the generate tests, built once per session: the 2-layer
GPT-2 export (hidden 64, vocab 1000; cached on disk by llm_models.py) with a
trained tokenizer and a config.json or genai_config.json. The decoder is
compiled once, by the `gpt2_lm` fixture into a fresh cache folder, which the
CLI subprocesses then read (TINYC_CACHE_DIR)."""

from __future__ import annotations

import os

import pytest
from tests_support import need_modules


@pytest.fixture(scope="session")
def gpt2_dirs(tmp_path_factory) -> dict[str, str]:
    need_modules("torch", "transformers", "onnxscript", "onnxruntime", "tokenizers")
    from tinyc.testing.llm_folders import gpt2_folder

    root = tmp_path_factory.mktemp("llm_folders")
    return {"hf": gpt2_folder(root / "hf", "hf"),
            "genai": gpt2_folder(root / "genai", "genai"),
            "no_eos": gpt2_folder(root / "no_eos", "hf", eos=None)}


@pytest.fixture(scope="session")
def llm_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("llm_cache"))


@pytest.fixture(scope="session")
def gpt2_lm(gpt2_dirs, llm_cache):
    """The hf folder loaded: its decoder compiled once into llm_cache."""
    from tinyc.llm import load

    before = os.environ.get("TINYC_CACHE_DIR")
    os.environ["TINYC_CACHE_DIR"] = llm_cache
    try:
        return load(gpt2_dirs["hf"], target="x86")
    finally:
        if before is None:
            del os.environ["TINYC_CACHE_DIR"]
        else:
            os.environ["TINYC_CACHE_DIR"] = before
