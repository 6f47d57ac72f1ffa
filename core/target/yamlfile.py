"""Reading YAML files with the line of every field, for error messages.

`yaml.safe_load` builds the data; `yaml.compose` (which constructs nothing) gives
the node tree with positions. Errors name `file:line` and the field's path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from ..errors import SpecError

Path = tuple[str, ...]  # a field's path; list items are their index as text


@dataclass(frozen=True)
class YamlDoc:
    path: str  # as the user gave it, so messages show what they typed
    data: object
    lines: dict[Path, int] = field(default_factory=dict)  # 1-based line of each field

    def line(self, path: tuple[object, ...]) -> int:
        """The line of `path`, or of its nearest enclosing field that has one."""
        key = tuple(str(p) for p in path)
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key, 1)

    def where(self, path: tuple[object, ...]) -> str:
        return f"{self.path}:{self.line(path)}"

    def error(self, path: tuple[object, ...], message: str) -> SpecError:
        return SpecError(f"{self.where(path)}: {message}")

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))


def dotted(path: tuple[object, ...]) -> str:
    """caches.l1d.size, features[2]: how a field is named in messages."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def load_yaml(path: str, what: str) -> YamlDoc:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SpecError(f"{path}: cannot read {what}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise SpecError(f"{path}{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    doc = YamlDoc(path, data)
    if root is not None:
        _record_lines(doc, root, ())
    return doc


def _record_lines(doc: YamlDoc, node: yaml.Node, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            sub = (*path, str(key.value))
            if key.value in seen:  # safe_load would silently keep the last one
                raise SpecError(f"{doc.path}:{key.start_mark.line + 1}: field '{dotted(sub)}' "
                                "is given twice")
            seen.add(key.value)
            doc.lines[sub] = key.start_mark.line + 1
            _record_lines(doc, value, sub)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, str(i))
            doc.lines[sub] = item.start_mark.line + 1
            _record_lines(doc, item, sub)
