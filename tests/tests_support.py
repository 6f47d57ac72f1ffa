"""Helpers shared by the plugin, scaffold and docs tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper


def small_model(path) -> str:
    """Conv + Relu on a 1x3x8x8 input, seeded; saved to `path`."""
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    g = helper.make_graph(nodes, "small", [x], [y], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
              path)
    return str(path)


def rewrite_meta(folder, meta: dict) -> None:
    """Write an artifact's model.json and its checksum file, as a tinyc that
    wrote these fields would (tests of what the loader does with such fields)."""
    import json
    from pathlib import Path

    from tinyc.runtime.validate import SIDECAR, meta_digest_file

    data = json.dumps(meta).encode()
    (Path(folder) / "model.json").write_bytes(data)
    (Path(folder) / SIDECAR).write_bytes(meta_digest_file(data))


def need_modules(*modules: str) -> None:
    """Skip (with the reason) unless every module imports."""
    import importlib

    import pytest

    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as e:  # ImportError, or a broken install failing on import
            pytest.skip(f"{m} cannot be imported: {type(e).__name__}: {e}")


def run_checked(*args: object, ok: bool = True, cwd=None):
    """Run a command without this process's plugin settings; fail the test, showing
    the output's end, when it exits non-zero (unless ok=False)."""
    import os
    import subprocess

    import pytest

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYC_PLUGINS")}
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=600)
    if ok and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {r.returncode}:\n"
                    f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def build_flags() -> list[str]:
    """pip flags to build a local project: without isolation when `wheel` is here."""
    import importlib.util

    if importlib.util.find_spec("wheel") is not None:
        return ["--no-build-isolation"]
    print("no 'wheel' package: building with pip's isolation (needs the package index)")
    return []
