"""Reading ONNX files safely: clear errors for malformed files, and external
weight files that must stay inside the model's folder."""

from __future__ import annotations

import os

import onnx
from google.protobuf.message import DecodeError

from ..errors import ModelError


def load_model(model: str | os.PathLike | bytes | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        _check_text(model.graph, "<model>")
        return model
    if isinstance(model, bytes):
        return parse_model(model, "<bytes>")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such model file")
    with open(path, "rb") as f:
        proto = parse_model(f.read(), path)
    _load_external_data(proto, os.path.dirname(os.path.abspath(path)), path)
    return proto


def parse_model(data: bytes, where: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelError(f"{where}: not a valid ONNX model (protobuf parse failed: {e})") from None
    if not proto.HasField("graph"):
        raise ModelError(f"{where}: not a valid ONNX model (no graph; truncated or not ONNX)")
    _check_text(proto.graph, where)
    return proto


def _check_text(g: onnx.GraphProto, where: str) -> None:
    """Names must be UTF-8: protobuf hands back bytes for a string field that is
    not, and they would fail far from here (in a dict, in model.json)."""
    named = [g, *g.input, *g.output, *g.value_info, *g.initializer, *g.node]
    for item in named:
        texts = [item.name]
        if isinstance(item, onnx.NodeProto):
            texts += [*item.input, *item.output, item.op_type, item.domain]
            texts += [a.name for a in item.attribute]
            for a in item.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    _check_text(a.g, where)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise ModelError(f"{where}: the name {bad!r} (in {type(item).__name__} "
                             f"{item.name!r}) is not valid UTF-8")


def _load_external_data(proto: onnx.ModelProto, base: str, where: str) -> None:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    tensors = [t for t in _get_all_tensors(proto) if uses_external_data(t)]
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        check_location(info.get("location", ""), base, t.name, where)
    if tensors:
        try:
            onnx.load_external_data_for_model(proto, base)
        except Exception as e:  # OSError, ValueError, onnx's ValidationError for a missing file
            raise ModelError(f"{where}: cannot read external data: {e}") from None


def check_location(location: str, base: str, tensor: str, where: str) -> None:
    """External data must live under the model's folder: no absolute paths, no
    '..', no symlink leading outside (a model file must not read arbitrary files)."""
    if "\0" in location:
        raise ModelError(f"{where}: tensor '{tensor}' has an external data location with a "
                         f"NUL character ({location!r}); refusing to read it")
    bad = (not location or os.path.isabs(location) or location.startswith(("/", "\\"))
           or ".." in location.replace("\\", "/").split("/"))
    real_base = os.path.realpath(base)
    target = os.path.realpath(os.path.join(base, location)) if location else ""
    if bad or os.path.commonpath([real_base, target]) != real_base:
        raise ModelError(
            f"{where}: tensor '{tensor}' has external data location '{location}' outside "
            f"the model's folder {base}; refusing to read it"
        )
