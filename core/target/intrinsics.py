"""Intrinsic sets: hardware instructions declared in YAML by their semantics.

An intrinsic pairs what it computes (index notation, tile extents, dtypes) with
how to emit it (an LLVM intrinsic, an LLVM IR template or an accelerator opcode),
as TVM's tensor_intrin does in Python (`dot_16x4_vnni`). The tensorizer matches
the semantics; a new instruction needs YAML, not Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .intrinsic_schema import INTRINSIC_SET_SCHEMA
from .intrinsic_types import const_type_problem, tensor_accesses, tile_values, type_problem
from .notation import NotationError, Statement, parse_statement
from .schema import validate
from .yamlfile import YamlDoc, dotted, load_yaml


@dataclass(frozen=True)
class Operand:
    tensor: str | None  # None for an immediate
    const: int | None = None
    type: str | None = None  # LLVM type, for llvm and ir emission
    layout: str = "contiguous"


@dataclass(frozen=True)
class Emit:
    kind: str  # "llvm", "ir" or "opcode"
    code: str  # the intrinsic name, the IR template or the opcode
    operands: tuple[Operand, ...]
    returns: str | None = None
    declare: tuple[str, ...] = ()
    accumulate: str = "operand"  # "add": the result is added to C, which is no operand


@dataclass(frozen=True)
class Intrinsic:
    name: str
    compute: Statement
    tile: dict[str, int]
    dtypes: dict[str, str]
    emit: Emit
    description: str = ""
    priority: int = 0  # among matching intrinsics, higher is preferred (before MACs)
    where: str = field(default="", compare=False)  # file:line of its emit, for messages


@dataclass(frozen=True)
class IntrinsicSet:
    name: str
    path: str
    intrinsics: tuple[Intrinsic, ...]
    requires: tuple[str, ...] = ()  # LLVM features
    description: str = ""
    digest: str = ""  # of the file's bytes: compile cache keys include it


def read_intrinsic_file(path: str) -> IntrinsicSet:
    doc = load_yaml(path, "intrinsic set")
    validate(doc, INTRINSIC_SET_SCHEMA, "intrinsic set")
    data: dict = doc.data  # type: ignore[assignment]
    intrinsics = tuple(_intrinsic(doc, name, fields)
                       for name, fields in data["intrinsics"].items())
    return IntrinsicSet(data["set"], path, intrinsics, tuple(data.get("requires", ())),
                        data.get("description", ""), doc.digest)


def _intrinsic(doc: YamlDoc, name: str, fields: dict) -> Intrinsic:
    here = ("intrinsics", name)
    try:
        compute = parse_statement(fields["compute"])
    except NotationError as e:
        raise doc.error((*here, "compute"), f"field '{dotted((*here, 'compute'))}': {e}; "
                        "expected index notation like C[i] += A[k] * B[i, k]") from None
    _check_indices(doc, here, compute, fields["tile"])
    _check_tensors(doc, here, compute, fields["dtypes"])
    emit = _emit(doc, (*here, "emit"), fields["emit"], fields["dtypes"], compute.output.tensor)
    _check_types(doc, (*here, "emit"), emit, compute, fields["tile"], fields["dtypes"])
    return Intrinsic(name, compute, dict(fields["tile"]), dict(fields["dtypes"]), emit,
                     fields.get("description", ""), fields.get("priority", 0),
                     doc.where((*here, "emit", emit.kind)))


def _check_indices(doc: YamlDoc, here: tuple, compute: Statement, tile: dict) -> None:
    undeclared = sorted(compute.index_names - set(tile))
    if undeclared:
        raise doc.error((*here, "tile"), f"field '{dotted((*here, 'tile'))}' lacks index "
                        f"{', '.join(undeclared)} used in '{compute.text}'; expected an "
                        "extent for every index")
    unused = sorted(set(tile) - compute.index_names)
    if unused:
        raise doc.error((*here, "tile", unused[0]), f"field '{dotted((*here, 'tile'))}' "
                        f"declares index {unused[0]}, which '{compute.text}' does not use")


def _check_tensors(doc: YamlDoc, here: tuple, compute: Statement, dtypes: dict) -> None:
    missing = [t for t in compute.tensors if t not in dtypes]
    if missing:
        raise doc.error((*here, "dtypes"), f"field '{dotted((*here, 'dtypes'))}' lacks "
                        f"tensor {missing[0]} used in '{compute.text}'; expected a dtype "
                        "for every tensor")
    extra = [t for t in dtypes if t not in compute.tensors]
    if extra:
        raise doc.error((*here, "dtypes", extra[0]), f"field '{dotted((*here, 'dtypes'))}' "
                        f"names tensor {extra[0]}, which '{compute.text}' does not use")


def _emit(doc: YamlDoc, here: tuple, fields: dict, dtypes: dict, output: str) -> Emit:
    kind = next(k for k in ("llvm", "ir", "opcode") if k in fields)
    operands = []
    for i, op in enumerate(fields.get("operands", ())):
        where = (*here, "operands", i)
        if "tensor" in op and op["tensor"] not in dtypes:
            raise doc.error((*where, "tensor"), f"field '{dotted((*where, 'tensor'))}' is "
                            f"{op['tensor']!r}; expected one of the tensors "
                            f"{', '.join(dtypes)}")
        if kind != "opcode" and "type" not in op:
            raise doc.error(where, f"field '{dotted(where)}' has no type; expected an LLVM "
                            f"type for every operand of {kind} emission")
        operands.append(Operand(op.get("tensor"), op.get("const"), op.get("type"),
                                op.get("layout", "contiguous")))
    if kind != "opcode" and "returns" not in fields:
        raise doc.error(here, f"field '{dotted(here)}' has no returns; expected the LLVM "
                        f"type of the {kind} result")
    accumulate = fields.get("accumulate", "operand")
    _check_accumulator(doc, here, accumulate, operands, output)
    return Emit(kind, fields[kind], tuple(operands), fields.get("returns"),
                tuple(fields.get("declare", ())), accumulate)


def _check_accumulator(doc: YamlDoc, here: tuple, accumulate: str, operands: list[Operand],
                       output: str) -> None:
    """With `accumulate: add` the output tensor is added to, so it is no operand."""
    if accumulate != "add":
        return
    for i, op in enumerate(operands):
        if op.tensor == output:
            where = (*here, "operands", i)
            raise doc.error(where, f"field '{dotted(where)}' is the output {output}, but "
                            "accumulate: add adds the result to it; expected only inputs")


def _check_types(doc: YamlDoc, here: tuple, emit: Emit, compute: Statement, tile: dict,
                 dtypes: dict) -> None:
    """Each typed operand, and the result, must hold its tensor's tile in its dtype."""
    accesses = tensor_accesses(compute)
    for i, op in enumerate(emit.operands):
        if op.type is None:
            continue  # an opcode's operand: the accelerator's buffers, no LLVM type
        if op.tensor is None:
            problem = const_type_problem(op.type)
        else:
            problem = type_problem(op.type, dtypes[op.tensor],
                                   tile_values(accesses[op.tensor], tile), op.layout)
        where = (*here, "operands", i, "type")
        _raise_type_problem(doc, where, op.type, op.tensor, problem)
    if emit.returns is not None:
        output = compute.output.tensor
        problem = type_problem(emit.returns, dtypes[output], tile_values(compute.output, tile),
                               "contiguous")
        _raise_type_problem(doc, (*here, "returns"), emit.returns, output, problem)


def _raise_type_problem(doc: YamlDoc, where: tuple, text: str, tensor: str | None,
                        problem: str | None) -> None:
    if problem is not None:
        what = f"tensor {tensor}" if tensor else "the immediate"
        raise doc.error(where, f"field '{dotted(where)}' is {text} for {what}, but {problem}")
