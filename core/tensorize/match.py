"""Does an intrinsic compute (a tile of) the GEMM core? Matching by semantics.

An intrinsic matches when its statement is the GEMM core's restricted to a tile,
up to renaming of indices and tensors: `C[i] += A[k] * B[i, k]` (VNNI) is the
core with i -> n (16 lanes), k -> k (4 bytes) and m fixed by an outer loop;
`C[i, j] += A[i, k] * B[k, j]` (FMA) is it with i -> m (1 row), j -> n, k -> k.
The order of an operand's indices is the layout its tile has in a vector,
which the packers produce (B[i, k]: 16 lanes of 4 consecutive k each).

A tile may span several rows of C (i8mm's smmla, `C[i, j] += A[i, k] *
B[j, k]`, 2 x 2 x 8): A's operand is then its m rows of k, as packed, and
C's accumulator the m x n tile, both row-major. A tile of one lane
(`C[0] += A[k] * B[k]`: Helium's vmladav, the DSP's smlad) reduces into a
scalar; a constant index is a tile of one along it.

An index in all three tensors (the intrinsic is elementwise in it, as NEON's
`C[i] += A[i, k] * B[i, k]` for sdot) can play n when A's tile is replicated
along it: fed the same k elements in every lane, it is the GEMM's tile.

Dtypes must agree, except that an int8 operand may stand for a uint8 one and
back: flipping the sign bit (x ^ 0x80) adds or removes 128, which the zero
point absorbs exactly (tensorize/int_gemm.py); and an integer input may feed a
wider integer operand that holds all its values (uint8 and int8 data as int16
for vpmaddwd): the packers widen it, exactly.

An emit with `accumulate: add` returns the products only (vpmaddwd does not
accumulate); the micro-kernel adds them to C, whose type is then `returns`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..target.intrinsics import Intrinsic
from ..target.notation import Access

BITS = {"float32": 32, "float16": 16, "bfloat16": 16, "float64": 64, "int8": 8, "uint8": 8,
        "int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64}
_INT8 = {"int8", "uint8"}
INT_RANGE = {"int8": (-2**7, 2**7 - 1), "uint8": (0, 2**8 - 1), "int16": (-2**15, 2**15 - 1),
             "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
             "int64": (-2**63, 2**63 - 1)}


@dataclass(frozen=True)
class VecType:
    lanes: int  # a scalable vector's minimum
    elem: str  # LLVM element type: i8, i32, float, ...
    vscale: int = 0  # a scalable vector's multiple at the spec's vector length; 0: fixed

    @property
    def bits(self) -> int:
        return self.lanes * max(1, self.vscale) * elem_bits(self.elem)

    @property
    def text(self) -> str:
        if self.vscale:
            return f"<vscale x {self.lanes} x {self.elem}>"
        return f"<{self.lanes} x {self.elem}>" if self.lanes > 1 else self.elem


def elem_bits(elem: str) -> int:
    return {"float": 32, "double": 64, "half": 16, "bfloat": 16}.get(elem) or int(elem[1:])


def parse_type(text: str, vscale: int = 0) -> VecType:
    """vscale: the target's (0 where it has no scalable vectors)."""
    m = re.fullmatch(r"<vscale x (\d+) x (\w+)>", text)
    if m:
        if not vscale:
            raise Rejected(f"operand type {text}: the target has no scalable vectors")
        return VecType(int(m.group(1)), m.group(2), vscale)
    m = re.fullmatch(r"<(\d+) x (\w+)>", text)
    return VecType(int(m.group(1)), m.group(2)) if m else VecType(1, text)


@dataclass(frozen=True)
class OperandPlan:
    """One operand of the emitted call: what feeds it and how."""

    role: str  # "A", "B", "C" (the accumulator) or "const"
    type: VecType
    layout: str = "contiguous"  # "broadcast": the tile repeated across the vector
    const: int | None = None


@dataclass(frozen=True)
class Match:
    set_name: str
    intrinsic: Intrinsic
    tile: dict[str, int]  # GEMM extents per instruction: {"m": 1, "n": 16, "k": 4}
    b_order: tuple[str, ...]  # B's tile layout in a vector, e.g. ("n", "k"): n-major
    operands: tuple[OperandPlan, ...]
    returns: VecType
    flips: tuple[str, ...] = ()  # GEMM inputs whose int8 sign bit is flipped
    widens: tuple[str, ...] = ()  # GEMM inputs widened to the intrinsic's wider dtype
    priority: int = 0
    tensors: tuple[tuple[str, str], ...] = ()  # (GEMM role, the intrinsic's tensor)
    vscale: int = 0  # the target's, for scalable operand types (0: none)

    def dtype(self, role: str) -> str:
        """The intrinsic's dtype for GEMM tensor `role` (A, B or C)."""
        return self.intrinsic.dtypes[dict(self.tensors)[role]]

    @property
    def name(self) -> str:
        return f"{self.set_name}.{self.intrinsic.name}"

    @property
    def macs(self) -> int:
        return self.tile["m"] * self.tile["n"] * self.tile["k"]

    def operand(self, role: str) -> OperandPlan:
        return next(o for o in self.operands if o.role == role)

    @property
    def adds(self) -> bool:
        """The call returns products only; the micro-kernel adds them to C."""
        return self.intrinsic.emit.accumulate == "add"


class Rejected(ValueError):
    """The intrinsic does not fit; str() says why, for the compile report."""


def match_intrinsic(set_name: str, intr: Intrinsic, dtypes: dict[str, str],
                    vscale: int = 0) -> Match:
    """The intrinsic as a tile of the GEMM core with role dtypes `dtypes` (A, B, C);
    `vscale`: how many times its minimum a scalable vector holds on the target."""
    st = intr.compute
    if not st.accumulate or len(st.inputs) != 2 or st.operators != ("*",):
        raise Rejected(f"semantics differ: '{st.text}' is not C += X * Y")
    if intr.emit.kind != "llvm":
        what = "an accelerator opcode" if intr.emit.kind == "opcode" else "an IR template"
        raise Rejected(f"emitted as {what}; the CPU micro-kernel calls LLVM intrinsics")
    reasons = []
    for a_acc, b_acc in (st.inputs, st.inputs[::-1]):
        try:
            return _match_as(set_name, intr, a_acc, b_acc, dtypes, vscale)
        except Rejected as e:
            reasons.append(str(e))
    raise Rejected(min(reasons, key=_specificity))


def _specificity(reason: str) -> int:
    """Report the most telling reason of the tensor assignments tried."""
    return 0 if reason.startswith("dtype") else 1 if "operand" in reason else 2


def _match_as(set_name: str, intr: Intrinsic, a_acc: Access, b_acc: Access,
              dtypes: dict[str, str], vscale: int) -> Match:
    st = intr.compute
    names = {"A": a_acc.tensor, "B": b_acc.tensor, "C": st.output.tensor}
    roles = _index_roles(st.output, a_acc, b_acc)
    replicated = _replicated_in_a(roles, st.output, a_acc, b_acc)
    tile = {r: 1 for r in "mnk"}
    for ix, role in roles.items():
        tile[role] = intr.tile[ix]
    if tile["m"] > 1:
        _check_row_major(roles, st.output, a_acc)
    flips, widens = _check_dtypes(intr, names, dtypes)
    operands = tuple(_operand(op, names, tile, intr, replicated, vscale)
                     for op in intr.emit.operands)
    returns = parse_type(intr.emit.returns or "", vscale)
    _check_accumulator(intr, operands, returns, tile)
    b_order = tuple(roles[ix] for ix in b_acc.indices if ix in roles)
    return Match(set_name, intr, tile, b_order, operands, returns, flips, widens,
                 intr.priority, tuple(names.items()), vscale)


def _check_accumulator(intr: Intrinsic, operands: tuple[OperandPlan, ...], returns: VecType,
                       tile: dict[str, int]) -> None:
    acc = next((o.type for o in operands if o.role == "C"), None)
    if intr.emit.accumulate == "add":
        bits = BITS[intr.dtypes[intr.compute.output.tensor]] * _tile_size("C", tile)
        if returns.bits != bits:
            raise Rejected(f"emit: returns {returns.text} does not hold the "
                           f"{_tile_size('C', tile)}-element tile of C")
    elif acc is None:
        raise Rejected("emit: no accumulator operand (C); an instruction that does not "
                       "accumulate needs accumulate: add")
    elif returns != acc:
        raise Rejected("emit: returns differs from the accumulator operand's type")


def _index_roles(c: Access, a: Access, b: Access) -> dict[str, str]:
    """Intrinsic index -> GEMM role (m, n, k) by the tensors it appears in."""
    roles = {}
    for acc in (c, a, b):
        for ix in acc.indices:
            if not re.fullmatch(r"[A-Za-z_]\w*|\d+", ix):
                raise Rejected(f"semantics: affine index {ix} (a GEMM tile has plain indices)")
    cs, as_, bs = (set(_named(x)) for x in (c, a, b))
    for ix in cs | as_ | bs:
        where = (ix in cs, ix in as_, ix in bs)
        role = {(True, True, False): "m", (True, False, True): "n", (True, True, True): "n",
                (False, True, True): "k"}.get(where)
        if role is None:
            raise Rejected(f"semantics: index {ix} is not an m, n or k of C[m, n] += "
                           "A[m, k] * B[k, n]")
        roles[ix] = role
    for role in "mnk":
        if sum(r == role for r in roles.values()) > 1:
            raise Rejected(f"semantics: two indices play {role}")
    return roles


def _named(acc: Access) -> list[str]:
    """The access's index names (constant indices fix a position: no role)."""
    return [ix for ix in acc.indices if not ix.isdigit()]


def _check_row_major(roles: dict[str, str], c: Access, a: Access) -> None:
    """A tile of several rows: A's operand holds them as packed (each row's k
    elements in turn), the accumulator C's tile row by row."""
    for acc, order in ((a, ("m", "k")), (c, ("m", "n"))):
        have = tuple(roles[ix] for ix in _named(acc))
        if have not in (order, order[:1]):
            raise Rejected(f"semantics: {acc.tensor}[{', '.join(acc.indices)}] is not "
                           f"row-major in {', '.join(order)}, as a tile of several rows is fed")
    if roles.get(next(iter(_named(a)))) == "n":
        raise Rejected("semantics: a tile of several rows cannot be elementwise in n")


def _replicated_in_a(roles: dict[str, str], c: Access, a: Access, b: Access) -> bool:
    """Is n an index of A too (elementwise in the lanes)? Then A's tile must be
    n-major (lane by lane, each lane's k elements) so that replicating the k
    elements fills it."""
    shared = [ix for ix in _named(a) if roles[ix] == "n"]
    if not shared:
        return False
    if _named(a)[0] != shared[0]:
        raise Rejected(f"semantics: {a.tensor} is elementwise in n but not n-major; "
                       "replicating its k elements would not fill it")
    return True


def _check_dtypes(intr: Intrinsic, names: dict[str, str],
                  dtypes: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs sign-flipped, inputs widened) to feed the op's dtypes to the intrinsic."""
    flips, widens = [], []
    for role in ("A", "B", "C"):
        want, have = intr.dtypes[names[role]], dtypes[role]
        if want == have:
            continue
        if role != "C" and {want, have} == _INT8:
            flips.append(role)
            continue
        if role != "C" and _holds(want, have):
            widens.append(role)
            continue
        raise Rejected(f"dtype: op is {_sig(dtypes)}, intrinsic "
                       f"{_sig({r: intr.dtypes[t] for r, t in names.items()})}")
    return tuple(flips), tuple(widens)


def _holds(wide: str, narrow: str) -> bool:
    """Does integer dtype `wide` hold every value of `narrow`?"""
    if wide not in INT_RANGE or narrow not in INT_RANGE:
        return False
    (lo, hi), (nlo, nhi) = INT_RANGE[wide], INT_RANGE[narrow]
    return lo <= nlo and nhi <= hi


def _sig(d: dict[str, str]) -> str:
    return f"{d['A']} x {d['B']} -> {d['C']}"


def _operand(op, names: dict[str, str], tile: dict[str, int], intr: Intrinsic,
             replicated: bool, vscale: int) -> OperandPlan:
    if op.tensor is None:
        return OperandPlan("const", parse_type(op.type), const=op.const)
    role = next(r for r, t in names.items() if t == op.tensor)
    vt = parse_type(op.type, vscale)
    tile_bits = BITS[intr.dtypes[op.tensor]] * _tile_size(role, tile)
    if role == "A" and replicated:  # a contiguous n x k tile, fed replicated
        if vt.bits != tile_bits * tile["n"]:
            raise Rejected(f"operand type {vt.text} of {op.tensor} does not hold its "
                           f"{tile['n']} x {tile['k']} tile")
        return OperandPlan(role, vt, "broadcast")
    wanted = {"A": "broadcast" if tile["m"] == 1 else "contiguous", "B": "contiguous",
              "C": "contiguous"}[role]
    if role == "A" and vt.bits == tile_bits:  # exactly one tile: broadcast or not, the same
        return OperandPlan(role, vt, wanted)
    if op.layout != wanted:
        raise Rejected(f"operand layout: {role} ({op.tensor}) is {op.layout}; the "
                       f"micro-kernel feeds {role} {wanted}")
    fits = vt.bits % tile_bits == 0 if op.layout == "broadcast" else vt.bits == tile_bits
    if not fits:
        raise Rejected(f"operand type {vt.text} of {op.tensor} does not hold its "
                       f"{_tile_size(role, tile)}-element tile")
    return OperandPlan(role, vt, op.layout)


def _tile_size(role: str, tile: dict[str, int]) -> int:
    dims = {"A": "mk", "B": "kn", "C": "mn"}[role]
    size = 1
    for d in dims:
        size *= tile[d]
    return size
