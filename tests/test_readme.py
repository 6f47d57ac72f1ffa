"""The README's Python blocks run verbatim (in a scratch folder holding the
repository's models/), except those that stand for a user's own model file,
which say so when skipped."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
USER_FILES = ("model.onnx", "model_int8.onnx")  # placeholders for the reader's own model


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_block_runs(k, tmp_path, monkeypatch):
    code = BLOCKS[k]
    placeholder = next((f for f in USER_FILES if f'"{f}"' in code), None)
    if placeholder:
        pytest.skip(f"README block {k} stands for the reader's own {placeholder}")
    if "llm_" in code and importlib.util.find_spec("transformers") is None:
        pytest.skip(f"README block {k} builds GPT-2 with transformers, which is not installed")
    if "llm_folders" in code and importlib.util.find_spec("tokenizers") is None:
        pytest.skip(f"README block {k} trains a tokenizer with tokenizers, which is not "
                    f"installed")
    (tmp_path / "models").symlink_to(REPO / "models")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    exec(compile(code, f"README.md block {k}", "exec"), {"__name__": f"readme_{k}"})
    assert os.getcwd() == str(tmp_path)
