"""--json on targets, compile, run and explain: stdout is one JSON document."""

from __future__ import annotations

import json

from tests_support import small_model

from tinyc.cli import main


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_targets_json(capsys):
    assert main(["targets", "--json"]) == 0
    listing = _json(capsys)
    assert "x86" in [t["target"] for t in listing["targets"]]
    assert listing["plugins"]


def test_compile_run_explain_json(tmp_path, capsys):
    model = small_model(tmp_path / "m.onnx")
    assert main(["compile", model, "-o", str(tmp_path / "a"), "--json", "--shape",
                 "x=1,3,8,8"]) == 0
    compiled = _json(capsys)
    assert compiled["output"] == str(tmp_path / "a") and compiled["code_bytes"] > 0
    assert main(["run", str(tmp_path / "a"), "--json"]) == 0
    ran = _json(capsys)
    assert ran["outputs"][0]["name"] == "y" and ran["outputs"][0]["shape"] == [1, 4, 8, 8]
    assert main(["run", model, "--json", "--check", "--profile"]) == 0
    checked = _json(capsys)
    assert checked["check"]["pass"] and checked["profile"]["nodes"]
    assert main(["explain", model, "--json"]) == 0
    assert isinstance(_json(capsys), (dict, list))
