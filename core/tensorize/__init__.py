"""Tensorization: map lowered contractions onto the intrinsics a target declares
in YAML (matching by semantics, not names), and build their micro-kernels."""
