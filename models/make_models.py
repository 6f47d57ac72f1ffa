"""Regenerate the bundled example model: squeezenet (the architecture shipped
inside the onnx wheel) with seeded random weights instead of its constant 0.02s.

    python models/make_models.py
"""

from __future__ import annotations

import os

import onnx

from tinyc.testing.models import light_model

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    onnx.save(light_model("squeezenet", seed=0), os.path.join(here, "squeezenet.onnx"))
