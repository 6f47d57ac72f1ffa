"""Index notation for intrinsic semantics: `C[i] += A[k] * B[i, k]`.

The same notation the core uses for lowered ops (DESIGN.md). Here it is only
parsed and checked; matching it against lowered programs is the tensorizer's job.

    statement := access ("=" | "+=") expr
    expr      := term (("+" | "-" | "*") term)*
    term      := access | NUMBER | "(" expr ")"
    access    := NAME "[" index ("," index)* "]"
    index     := affine expression of NAMEs and integers with + and *
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-z_]\w*)|(?P<op>\+=|[=+\-*\[\](),]))")


class NotationError(ValueError):
    """The statement does not parse; the message says where and what was expected."""


@dataclass(frozen=True)
class Access:
    tensor: str
    indices: tuple[str, ...]  # each an affine index expression, e.g. "y*2+ky"

    def index_names(self) -> set[str]:
        return {n for ix in self.indices for n in re.findall(r"[A-Za-z_]\w*", ix)}


@dataclass(frozen=True)
class Statement:
    text: str
    output: Access
    accumulate: bool  # "+=": a reduction over the indices absent from the output
    inputs: tuple[Access, ...]
    operators: tuple[str, ...]  # the arithmetic used on the right-hand side

    @property
    def tensors(self) -> tuple[str, ...]:
        names = [self.output.tensor] + [a.tensor for a in self.inputs]
        return tuple(dict.fromkeys(names))

    @property
    def index_names(self) -> set[str]:
        names = self.output.index_names()
        for a in self.inputs:
            names |= a.index_names()
        return names

    @property
    def reduction_indices(self) -> set[str]:
        return self.index_names - self.output.index_names()


def parse_statement(text: str) -> Statement:
    tokens = _tokenize(text)
    p = _Parser(text, tokens)
    output = p.access()
    assign = p.expect("=", "+=")
    inputs, ops = p.expr()
    p.end()
    return Statement(text.strip(), output, assign == "+=", tuple(inputs), tuple(sorted(ops)))


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = len(text) - len(text[pos:].lstrip())
            raise NotationError(f"unexpected character {text[bad]!r} at column {bad + 1}")
        kind = m.lastgroup or "op"
        tokens.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]]):
        self.text, self.tokens, self.i = text, tokens, 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", len(self.text) + 1)

    def fail(self, expected: str) -> NotationError:
        kind, value, col = self.peek()
        got = "the end" if kind == "end" else repr(value)
        return NotationError(f"expected {expected} at column {col}, got {got}")

    def expect(self, *values: str) -> str:
        if self.peek()[1] not in values or self.peek()[0] == "end":
            raise self.fail(" or ".join(repr(v) for v in values))
        self.i += 1
        return self.tokens[self.i - 1][1]

    def end(self) -> None:
        if self.peek()[0] != "end":
            raise self.fail("the end of the statement")

    def access(self) -> Access:
        kind, name, _ = self.peek()
        if kind != "name":
            raise self.fail("a tensor access like A[i, k]")
        self.i += 1
        self.expect("[")
        indices = [self.index()]
        while self.peek()[1] == ",":
            self.i += 1
            indices.append(self.index())
        self.expect("]")
        return Access(name, tuple(indices))

    def index(self) -> str:
        parts = [self.index_atom()]
        while self.peek()[1] in ("+", "*"):
            parts.append(self.expect("+", "*"))
            parts.append(self.index_atom())
        return "".join(parts)

    def index_atom(self) -> str:
        kind, value, _ = self.peek()
        if kind not in ("name", "num"):
            raise self.fail("an index name or integer")
        self.i += 1
        return value

    def expr(self) -> tuple[list[Access], set[str]]:
        inputs, ops = self.term()
        while self.peek()[1] in ("+", "-", "*"):
            ops.add(self.expect("+", "-", "*"))
            more, more_ops = self.term()
            inputs += more
            ops |= more_ops
        return inputs, ops

    def term(self) -> tuple[list[Access], set[str]]:
        kind, value, _ = self.peek()
        if kind == "num":
            self.i += 1
            return [], set()
        if value == "(":
            self.i += 1
            inner = self.expr()
            self.expect(")")
            return inner
        return [self.access()], set()
