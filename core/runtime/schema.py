"""The shape of model.json, checked by hand (the runtime-only install has numpy
and nothing else, so no jsonschema here).

A schema is plain data: a dict of field -> rule, where a rule is a type, a
tuple of allowed constants, a nested dict, or a list of one rule (every item
must follow it). Fields not named are allowed (a newer tinyc may add some);
every named field must follow its rule. Failures name the field's path.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArtifactError

# Element types an input or output may have: numpy creates these, and each is
# plain bytes to native code (an object dtype would hand it Python pointers).
DTYPES = ("float32", "float64", "float16", "bfloat16", "bool", "int8", "uint8", "int16",
          "uint16", "int32", "uint32", "int64", "uint64", "float8_e4m3fn", "float8_e4m3fnuz",
          "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "int4", "uint4", "int2",
          "uint2", "float4_e2m1fn")

# the largest dim or byte count believed: beyond it, arithmetic on sizes is nonsense
MAX_SIZE = 1 << 48


class Nat:
    """An int in [0, MAX_SIZE] (never a bool)."""


class Hex64:
    """A sha256 hex digest."""


class Dim:
    """A tensor dimension: a Nat, or a symbol / expression name."""


class Optional:
    def __init__(self, rule: Any):
        self.rule = rule


TENSOR = {"name": str, "dtype": DTYPES, "shape": [Dim]}
PLAN_TENSOR = list  # [dtype, dims (null for a symbolic dim)]: validate.check_plan

HOST = {
    "format": (1,),
    "entry": ("tinyc_run",),  # the symbol tinyc writes; no other may be called
    "target": str, "triple": str, "tinyc_version": str,
    "arena_bytes": Nat, "weights_bytes": Nat,
    "inputs": [TENSOR], "outputs": [TENSOR],
    "checksums": {"model.so": Hex64, "weights.bin": Hex64},
    "plan": {"arena_bytes": Nat, "inputs": [PLAN_TENSOR], "outputs": [PLAN_TENSOR]},
    "cpu": Optional(str), "features": Optional(str), "backend": Optional(str),
    "symbolic": Optional({"symbols": [str], "guards": [str], "arena_bytes": str,
                          "minima": Optional([Nat]), "maxima": Optional([Optional(Nat)]),
                          "unbacked": Optional([{"name": str, "bound": str}])}),
    "profile_nodes": Optional([[str]]),
}

SPLIT = {
    "format": (1,), "kind": ("split",), "target": str, "host": str,
    "arena_bytes": Nat, "weights_bytes": Nat,
    "inputs": [TENSOR], "outputs": [TENSOR], "tensors": dict, "regions": [dict],
    "checksums": {"model.so": Hex64, "weights.bin": Hex64},
}

# packaged (cross) artifacts run in an emulator's process: their fields are read
# by Python only, so the checks are about clear errors, not memory safety
PACKAGED = {
    "format": (1,), "target": str, "backend": Optional(str),
    "inputs": [TENSOR], "outputs": [TENSOR], "checksums": {"weights.bin": Optional(Hex64)},
    "weights_in": Optional(str),  # the file holding the weights, if not weights.bin
}


def check(value: Any, rule: Any, where: str, path: str = "") -> None:
    """Raise ArtifactError naming `where` and the field's path unless `value`
    follows `rule`."""
    problem = _problem(value, rule, path)
    if problem:
        raise ArtifactError(f"{where}: {problem}; the artifact is damaged or was edited "
                            f"(recompile it)")


def _problem(value: Any, rule: Any, path: str) -> str | None:
    if isinstance(rule, Optional):
        return None if value is None else _problem(value, rule.rule, path)
    if isinstance(rule, dict):
        return _dict_problem(value, rule, path)
    if isinstance(rule, list):
        if not isinstance(value, list):
            return f"'{path}' must be a list, not {_kind(value)}"
        for i, item in enumerate(value):
            p = _problem(item, rule[0], f"{path}[{i}]")
            if p:
                return p
        return None
    if isinstance(rule, tuple):
        ok = any(type(value) is type(c) and value == c for c in rule)
        return None if ok else f"'{path}' is {value!r:.60}; expected one of {list(rule)}"
    return _leaf_problem(value, rule, path)


def _dict_problem(value: Any, rule: dict, path: str) -> str | None:
    if not isinstance(value, dict):
        return f"'{path or 'model.json'}' must be an object, not {_kind(value)}"
    for key, sub in rule.items():
        name = f"{path}.{key}" if path else key
        if key not in value:
            if isinstance(sub, Optional):
                continue
            return f"field '{name}' is missing"
        p = _problem(value[key], sub, name)
        if p:
            return p
    return None


def _leaf_problem(value: Any, rule: Any, path: str) -> str | None:
    if rule is Nat:
        if type(value) is int and 0 <= value <= MAX_SIZE:
            return None
        return f"'{path}' is {value!r:.60}; expected a whole number from 0 to 2^48"
    if rule is Dim:
        if isinstance(value, str) and value:
            return None
        return _leaf_problem(value, Nat, path)
    if rule is Hex64:
        ok = isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef"
                                                                 for c in value)
        return None if ok else f"'{path}' is not a sha256 digest"
    if isinstance(rule, type) and not isinstance(value, rule) or isinstance(value, bool):
        return f"'{path}' must be {rule.__name__}, not {_kind(value)}"
    return None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
