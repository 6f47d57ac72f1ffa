"""Reading YAML files with the line of every field, for error messages.

`yaml.safe_load` builds the data; `yaml.compose` (which constructs nothing) gives
the node tree with positions. Errors name `file:line` and the field's path.
"""

from __future__ import annotations

import hashlib
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
    digest: str = ""  # of the file's bytes, for cache keys

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


# Limits on what a spec or intrinsic file may be. Real ones are a few KiB, a few
# hundred nodes and a few levels deep; the limits stop a hostile file (a 1 KiB
# "billion laughs" of nested aliases expands to 10^9 nodes) before anything walks it.
MAX_BYTES = 1 << 20
MAX_NODES = 100_000  # after alias expansion
MAX_DEPTH = 40

# Byte-order marks, UTF-32 before UTF-16 (whose little-endian BOM starts UTF-32LE's).
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def load_yaml(path: str, what: str) -> YamlDoc:
    raw = read_capped(path, what)
    text = decode_yaml(path, raw, what)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            check_size(path, root)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise SpecError(f"{path}{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    except RecursionError:  # the composer recurses per level, before check_size can look
        raise SpecError(f"{path}: {what} is nested too deeply (at most {MAX_DEPTH} "
                        "levels)") from None
    doc = YamlDoc(path, data, digest=hashlib.sha256(raw).hexdigest()[:16])
    if root is not None:
        _record_lines(doc, root, ())
    return doc


def read_capped(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecError(f"{path}: cannot read {what}: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise SpecError(f"{path}: {what} is larger than {MAX_BYTES} bytes")
    return raw


def decode_yaml(path: str, raw: bytes, what: str) -> str:
    """Text of a YAML file in UTF-8, -16 or -32: by its byte-order mark, else (as
    YAML does) by the zero bytes around a first ASCII character, else UTF-8."""
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), None)
    start = raw[:4]
    if encoding is None and len(start) == 4:
        zeros = tuple(c == 0 for c in start)
        encoding = {(True, True, True, False): "utf-32-be", (False, True, True, True): "utf-32-le",
                    (True, False, True, False): "utf-16-be",
                    (False, True, False, True): "utf-16-le"}.get(zeros)
    encoding = encoding or "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: {what} is not valid {encoding.upper()} (byte {e.start}); "
                        "save it as UTF-8") from None
    return text.lstrip("\ufeff")


def check_size(path: str, root: yaml.Node) -> None:
    """The document after alias expansion: at most MAX_NODES nodes and MAX_DEPTH
    levels, and no alias inside its own anchor. Aliases share nodes in the
    composed tree, so sizes are summed once per node, never expanded."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (nodes, levels) once expanded
    open_nodes: set[int] = set()  # the path from the root to the node being walked
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids = _children(node)
        if done:
            open_nodes.discard(id(node))
            nodes = 1 + sum(sizes[id(k)][0] for k in kids)
            levels = 1 + max((sizes[id(k)][1] for k in kids), default=0)
            if levels > MAX_DEPTH:
                raise SpecError(f"{path}:{node.start_mark.line + 1}: nested more than "
                                f"{MAX_DEPTH} levels deep (counting aliases)")
            sizes[id(node)] = (min(nodes, MAX_NODES + 1), levels)
        elif id(node) in open_nodes:
            raise SpecError(f"{path}:{node.start_mark.line + 1}: an alias refers to the "
                            "anchor it is inside (a recursive alias)")
        elif id(node) not in sizes:
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((k, False) for k in kids)
    if sizes[id(root)][0] > MAX_NODES:
        raise SpecError(f"{path}: expands to more than {MAX_NODES} YAML nodes (through "
                        "aliases); a spec is far smaller")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


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
