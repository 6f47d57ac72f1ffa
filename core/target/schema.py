"""Validating a YAML document against a JSON schema, as one clear message.

The schemas are data (spec_schema.py, intrinsic_schema.py). Each property carries
an `expected` text (ignored by jsonschema) that messages quote, so a wrong value
is answered with what would have been right.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import jsonschema

from ..errors import SpecError
from .yamlfile import YamlDoc, dotted


def validate(doc: YamlDoc, schema: dict, what: str) -> None:
    """Raise one SpecError for the first problem in file order (and count the rest)."""
    if not isinstance(doc.data, dict):
        raise SpecError(f"{doc.path}:1: a {what} must be a mapping of fields")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: _sort_key(doc, e))
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise SpecError(describe(doc, schema, errors[0]) + more)


def describe(doc: YamlDoc, schema: dict, e: jsonschema.ValidationError) -> str:
    e = _most_specific(e)
    path = tuple(e.absolute_path)
    if e.validator == "additionalProperties":
        return _unknown_field(doc, e, path)
    if e.validator == "required":
        missing = [k for k in e.validator_value if k not in e.instance][0]
        sub = e.schema.get("properties", {}).get(missing, {})
        hint = f" ({sub['expected']})" if "expected" in sub else ""
        return f"{doc.where(path)}: missing field '{dotted((*path, missing))}'{hint}"
    expected = expected_at(schema, e)
    got = f"{_kind(e.instance)} {e.instance!r}"
    close = _close_choices(e)
    return (f"{doc.where(path)}: field '{dotted(path) or '(top)'}' is {got}; "
            f"expected {expected}{close}")


def _most_specific(e: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For oneOf/anyOf: the problem inside the branch that fits the value's shape (a bad
    item of a list), when there is one; else the alternatives' own description."""
    deeper = [c for c in e.context or () if len(c.absolute_path) > len(e.absolute_path)]
    return _most_specific(deeper[0]) if deeper else e


def expected_at(schema: dict, e: jsonschema.ValidationError) -> str:
    """The `expected` text of the deepest schema on the error's way that has one."""
    found = schema.get("expected", "a valid value")
    node: object = schema
    for step in e.absolute_schema_path:
        try:
            node = node[step]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "expected" in node:
            found = node["expected"]
    return found


def _unknown_field(doc: YamlDoc, e: jsonschema.ValidationError, path: tuple) -> str:
    allowed = sorted(e.schema.get("properties", {}))
    extra = sorted(k for k in e.instance if k not in allowed)[0]
    where = doc.where((*path, extra))
    guess = difflib.get_close_matches(str(extra), allowed, n=1)
    hint = f" (did you mean '{guess[0]}'?)" if guess else ""
    return (f"{where}: unknown field '{dotted((*path, extra))}'{hint}; expected one of: "
            f"{', '.join(allowed)}")


def _close_choices(e: jsonschema.ValidationError) -> str:
    choices: Iterable[object] = e.validator_value if e.validator == "enum" else ()
    if not isinstance(e.instance, str):
        return ""
    guess = difflib.get_close_matches(e.instance, [str(c) for c in choices], n=1)
    return f" (did you mean '{guess[0]}'?)" if guess else ""


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "empty"}
    return names.get(type(value), type(value).__name__)


def _sort_key(doc: YamlDoc, e: jsonschema.ValidationError) -> tuple[int, int]:
    e = _most_specific(e)
    path = tuple(e.absolute_path)
    if e.validator == "additionalProperties":
        allowed = e.schema.get("properties", {})
        path = (*path, sorted(str(k) for k in e.instance if k not in allowed)[0])
    return (doc.line(path), len(path))


def field_paths(schema: dict, prefix: str = "") -> list[str]:
    """Every field a schema allows, as documented: caches.<level>.size, operands[].type."""
    paths = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        paths.append(path)
        paths += _nested_paths(sub, path)
    return paths


def _nested_paths(sub: dict, path: str) -> list[str]:
    if "properties" in sub:
        return field_paths(sub, path)
    if isinstance(sub.get("additionalProperties"), dict):
        return field_paths(sub["additionalProperties"], f"{path}.<{sub.get('key', 'name')}>")
    if isinstance(sub.get("items"), dict) and "properties" in sub["items"]:
        return field_paths(sub["items"], f"{path}[]")
    return []
