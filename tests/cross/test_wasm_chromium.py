"""The web package in headless Chromium: squeezenet and BERT-tiny run through
model.js in a page served from localhost and match onnxruntime (1e-5 of the
output range) and, bit for bit, the same module under wasmtime. One browser
launch makes every check (web/check.mjs posts the results back); the package's
example index.html runs too. Behind the web_latency marker: the latency
benchmark against onnxruntime-web, end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyc.testing.browser import (
    PageFailed,
    chromium_missing_reason,
    chromium_version,
    run_page,
    serve,
)

from .web_models import WebModel, check_outputs

PAGE = Path(__file__).with_name("web")
REPEAT = 3  # runs timed after a warm-up: the times are printed, not checked


@pytest.fixture(scope="module")
def chromium(web_models: dict[str, WebModel]) -> dict[str, bytes]:
    """Every report of one run of web/check.mjs over the web models' folders."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    root = Path(next(iter(web_models.values())).folder).parent
    for name in ("check.html", "check.mjs"):
        shutil.copy(PAGE / name, root / name)
    cases = [{"name": w.name, "folder": Path(w.folder).name, "feeds": w.feed_files,
              "repeat": REPEAT} for w in web_models.values()]
    (root / "cases.json").write_text(json.dumps({"cases": cases, "example": "squeezenet"}))
    with serve(str(root)) as (url, reports):
        got = run_page(f"{url}/check.html", reports, timeout=240)
    print(f"{chromium_version()}: {got['done'].decode()}")
    return got


def outputs_of(reports: dict[str, bytes], web: WebModel) -> tuple[dict[str, np.ndarray], dict]:
    summary = json.loads(reports[web.name])
    shapes = {name: a.shape for name, a in web.onnxruntime.items()}
    outs = {name: np.frombuffer(reports[f"{web.name}.{i}"], dtype).reshape(shapes[name])
            for i, (name, dtype) in enumerate(summary["outputs"])}
    return outs, summary


@pytest.mark.parametrize("name", ["squeezenet", "bert_tiny"])
def test_model_runs_in_chromium(name, web_models, chromium):
    web = web_models[name]
    got, summary = outputs_of(chromium, web)
    check_outputs("chromium", got, web)
    first = next(iter(web.feeds))
    assert summary["refused"].startswith(f"TypeError: input '{first}' must be a "), summary
    print(f"{name} in chromium: {summary['ms']:.2f} ms per run")


def test_the_example_page_runs_in_chromium(web_models, chromium):
    example = json.loads(chromium["example"])
    assert example["ok"], example
    web = web_models["squeezenet"]
    lines = example["text"].splitlines()
    for line, (name, want) in zip(lines, web.onnxruntime.items(), strict=False):
        assert line == f"{name}: float32[{', '.join(map(str, want.shape))}] ({want.size} values)"
    assert lines[-1].startswith("ran in ") and lines[-1].endswith(" ms")


@pytest.mark.web_latency
def test_latency_against_onnxruntime_web():
    """bench/web_latency.py end to end with few runs: a row per model and thread
    count, onnxruntime-web threaded only on the isolated page, and both engines'
    outputs within 1e-5 of onnxruntime-web's range."""
    bench = Path(__file__).parents[2] / "bench" / "web_latency.py"
    done = subprocess.run([sys.executable, str(bench), "--runs", "5"], capture_output=True,
                          text=True, timeout=900)
    if done.returncode == 2 and done.stderr.startswith("cannot run"):
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("squeezenet", "1", "False"), ("mobilenet_v2", "1", "False"),
        ("squeezenet", "2", "True"), ("mobilenet_v2", "2", "True")]
    for row in rows:
        assert float(row[-1]) <= 1e-5, row


def test_a_page_that_fails_is_reported_with_its_error(tmp_path):
    """The harness can fail: check.mjs without its cases.json posts the error."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    for name in ("check.html", "check.mjs"):
        shutil.copy(PAGE / name, tmp_path / name)
    with serve(str(tmp_path)) as (url, reports), pytest.raises(PageFailed, match="JSON"):
        run_page(f"{url}/check.html", reports, timeout=60)
