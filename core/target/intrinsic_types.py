"""Do an intrinsic's LLVM operand types fit its dtypes and tile?

An operand carries one tensor's tile: `B[i, k]` with tile {i: 16, k: 4} is 64
values, so a contiguous operand of int8 B is <64 x i8>, and a broadcast one holds
the tile a whole number of times. Checked when the file is read, so a wrong type
is an error naming the field, not LLVM's verifier failing in the middle of a
compile (issue 15). What LLVM itself accepts is checked per target
(llvm_check.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..ir.dtypes import DType
from .notation import Access, Statement

# Float dtypes have exactly one LLVM element type. Integer (and byte-stored narrow)
# dtypes may also be packed into wider integers: LLVM's older signatures of
# vpdpbusd take the 64 bytes of A as <16 x i32>.
_FLOAT_ELEMENT = {"float32": "float", "float16": "half", "bfloat16": "bfloat",
                  "float64": "double"}
_ELEMENT_BITS = {"float": 32, "half": 16, "bfloat": 16, "double": 64}
_TYPE = re.compile(r"<(vscale x )?(\d+) x (\w+)>")


@dataclass(frozen=True)
class LlvmType:
    lanes: int  # 1 for a scalar; the minimum for a scalable vector
    element: str  # i8, float, ...
    scalable: bool = False

    @property
    def element_bits(self) -> int:
        return _ELEMENT_BITS.get(self.element) or int(self.element[1:])


def parse_llvm_type(text: str) -> LlvmType:
    """The schema's LLVM_TYPE pattern has been checked: a vector or a scalar."""
    m = _TYPE.fullmatch(text.strip())
    if m is None:
        return LlvmType(1, text.strip())
    return LlvmType(int(m.group(2)), m.group(3), bool(m.group(1)))


def tile_values(access: Access, tile: dict[str, int]) -> int:
    """How many values of the tensor one call covers: the extents of its indices."""
    return math.prod(tile[n] for n in access.index_names())


def tensor_accesses(compute: Statement) -> dict[str, Access]:
    """Each tensor's first access (the output first)."""
    accesses: dict[str, Access] = {}
    for a in (compute.output, *compute.inputs):
        accesses.setdefault(a.tensor, a)
    return accesses


def type_problem(text: str, dtype: str, values: int, layout: str) -> str | None:
    """None if LLVM type `text` holds `values` values of `dtype` (once if contiguous,
    a whole number of times if broadcast), else what is wrong and what would fit."""
    t = parse_llvm_type(text)
    storage = DType[dtype].itemsize * 8
    element = _FLOAT_ELEMENT.get(dtype)
    if element is not None and t.element != element:
        return f"its elements are {t.element}; {dtype} values are {element}"
    if element is None and not (t.element.startswith("i") and t.element_bits % storage == 0):
        return f"its elements are {t.element}; {dtype} values are i{storage} (or packed " \
               f"into a wider integer)"
    if t.scalable:
        return None  # its length is the machine's vector length, which the spec states
    held = t.lanes * t.element_bits // storage
    wanted = f"<{values} x {element or f'i{storage}'}>" if values > 1 else \
        element or f"i{storage}"
    if layout == "broadcast":
        if held % values:
            return f"it holds {held} {dtype} values, not a whole number of tiles of " \
                   f"{values}; expected a vector of a multiple of {values} values"
    elif held != values:
        return f"it holds {held} {dtype} values; the tile has {values}, as {wanted} holds"
    return None


def const_type_problem(text: str) -> str | None:
    t = parse_llvm_type(text)
    if t.lanes != 1 or t.scalable or not t.element.startswith("i"):
        return "an immediate is an integer; expected a scalar integer type such as i32"
    return None
