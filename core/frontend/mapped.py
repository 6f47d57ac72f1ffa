"""Models whose weights stay in their external data files (model.onnx.data).

`load_mapped(path)` reads model.onnx and leaves its large external tensors
where they are: the ModelProto still points into the files, so it is small to
keep, copy and serialize, and the importer maps each tensor read-only from
its file (`MappedModel.array`) instead of copying it. The files are hashed
once, streamed, for the compile cache's key (`MappedModel.key_bytes`), and each
is checked not to have changed (device, inode, size, mtime) before it is
mapped for a compile. Locations are checked as `load.load_model` checks them:
inside the model's folder, symlinks resolved.

Two things still read the data through the ModelProto: ONNX shape inference's
data propagation (a shape computed from an initializer), and the rewrites of
onnxruntime-genai's LLM ops (llm_contrib.py, whose Emitter reads constants
with onnx.numpy_helper). So tensors under MAP_MIN_BYTES are read in at load
(shape tensors are tiny; mapping them saves nothing), and `inlined()` gives
the rewrites a copy with the data read in, from which `externalized` points
the tensors the rewrites kept back into their files. (Were the Emitter to read
constants through `MappedModel.array`, that transient copy would go too.)
"""

from __future__ import annotations

import hashlib
import mmap
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import uses_external_data

from ..errors import ModelError
from .load import check_location, load_model, parse_model

MAP_MIN_BYTES = 64 << 10  # smaller external tensors are read into the proto at load
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Extent:
    """Where a tensor's bytes are: a file of the model's folder, offset, length."""

    location: str
    offset: int
    length: int


@dataclass(frozen=True)
class _Stamp:
    """A file as it was hashed; a mapping of it must find it the same."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    sha256: str

    def same_file(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == \
            (self.device, self.inode, self.size, self.mtime_ns)


@dataclass
class MappedModel:
    """An ONNX model whose external tensors are read from their files on demand.

    `proto` lists them as external data (their locations checked); `folder` is
    where the locations point; `files` the stamps of the files, by location."""

    proto: onnx.ModelProto
    folder: str
    files: dict[str, _Stamp] = field(default_factory=dict)
    _maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def with_proto(self, proto: onnx.ModelProto) -> MappedModel:
        """The same files under another proto (session options applied, fed
        initializers made inputs)."""
        return MappedModel(proto, self.folder, self.files)

    def key_bytes(self) -> bytes:
        """What identifies the model's content: the proto as serialized (small:
        no external data in it) and each external file's sha256."""
        digests = "".join(f"\n{loc}\0{s.sha256}" for loc, s in sorted(self.files.items()))
        return self.proto.SerializeToString() + digests.encode()

    def array(self, t: TensorProto) -> np.ndarray:
        """The tensor's value: a read-only view of its file's mapping for an
        external tensor of a plain numpy type, else onnx's conversion (a copy)."""
        if not uses_external_data(t) or not self.folder:  # bytes or a proto: as onnx reads it
            return numpy_helper.to_array(t)
        extent = _extent(t)
        data = self._data(extent)
        dtype = _plain_dtype(t.data_type)
        if dtype is None:  # packed 4-bit, bfloat16, float8, strings: onnx unpacks them
            return numpy_helper.to_array(_inline_tensor(t, data))
        count = int(np.prod(t.dims, dtype=np.int64))
        if count * dtype.itemsize != extent.length:
            raise ModelError(f"tensor '{t.name}': its external data has {extent.length} bytes, "
                             f"its shape {list(t.dims)} of {dtype} needs "
                             f"{count * dtype.itemsize}")
        return data.view(dtype).reshape(tuple(t.dims))

    def inlined(self) -> onnx.ModelProto:
        """A copy of the proto with every external tensor's data read in."""
        out = onnx.ModelProto()
        out.CopyFrom(self.proto)
        if self.folder:
            for t in out.graph.initializer:
                if uses_external_data(t):
                    _read_in(t, self._data(_extent(t)))
        return out

    def externalized(self, proto: onnx.ModelProto) -> onnx.ModelProto:
        """A copy of `proto` whose initializers that are still this model's
        external tensors (same name, type and dims: the LLM rewrites add tensors
        under new names and never change one in place) point into their files
        again. A new message, not an edit of `proto`: protobuf frees a message's
        memory only with the whole message, and the one parsed at the end
        shares none with `proto`."""
        external = {t.name: t for t in self.proto.graph.initializer if uses_external_data(t)}
        out = _copy_fields(proto, onnx.ModelProto(), skip="graph")
        _copy_fields(proto.graph, out.graph, skip="initializer")
        for t in proto.graph.initializer:
            ref = external.get(t.name)
            same = ref is not None and t.data_type == ref.data_type and t.dims == ref.dims
            out.graph.initializer.add().CopyFrom(ref if same else t)
        return onnx.ModelProto.FromString(out.SerializeToString())

    def check(self, t: TensorProto, where: str) -> None:
        """The tensor's location is inside the folder and its extent inside its
        file (which is hashed the first time it is named)."""
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        check_location(location, self.folder, t.name, where)
        if location not in self.files:
            self.files[location] = _stamp(os.path.join(self.folder, location), where)
        _check_extent(t, info, self.files[location].size, where)

    def _data(self, extent: _Extent) -> np.ndarray:
        return self._mapping(extent.location)[extent.offset:extent.offset + extent.length]

    def _mapping(self, location: str) -> np.ndarray:
        """The whole file, mapped read-only (once per MappedModel), after
        checking it is the file that was hashed."""
        if location not in self._maps:
            path = os.path.join(self.folder, location)
            stamp = self.files.get(location)
            try:
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    if stamp is None or not stamp.same_file(st):
                        raise ModelError(f"{path} changed since the model was loaded; "
                                         f"load the model again")
                    self._maps[location] = np.frombuffer(
                        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8) \
                        if st.st_size else np.zeros(0, np.uint8)
            except OSError as e:
                raise ModelError(f"cannot map {path}: {e.strerror or e}") from None
        return self._maps[location]


def load_mapped(model) -> MappedModel:
    """A model (path, bytes, ModelProto or MappedModel) as a MappedModel. Only
    a path has a folder for external data; bytes and protos come as they are."""
    if isinstance(model, MappedModel):
        return model
    if not isinstance(model, str | os.PathLike):
        return MappedModel(load_model(model), "")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such model file")
    with open(path, "rb") as f:
        proto = parse_model(f.read(), path)
    folder = os.path.dirname(os.path.abspath(path))
    mapped = MappedModel(proto, folder)
    for t in proto.graph.initializer:
        if uses_external_data(t):
            mapped.check(t, path)
            if _extent(t).length < MAP_MIN_BYTES:  # in the proto, for shape inference
                _read_in(t, mapped._data(_extent(t)))
    for t in _nested_tensors(proto.graph):  # Constant nodes, subgraphs: read in
        if uses_external_data(t):
            mapped.check(t, path)
            _read_in(t, mapped._data(_extent(t)))
    mapped._maps.clear()  # the session keeps no mapping: a compile maps the files anew
    return mapped


def without_external(proto: onnx.ModelProto) -> onnx.ModelProto:
    """For onnx's checker, which looks for external data files beside the
    working folder when it is given a proto: a copy in which the external
    initializers are typed graph inputs (`proto` itself if there are none)."""
    if not any(uses_external_data(t) for t in proto.graph.initializer):
        return proto
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    external = [t for t in g.initializer if uses_external_data(t)]
    keep = [t for t in g.initializer if not uses_external_data(t)]
    del g.initializer[:]
    g.initializer.extend(keep)
    inputs = {i.name for i in g.input}
    g.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                   for t in external if t.name not in inputs)
    return m


def _nested_tensors(g: onnx.GraphProto):
    """Tensors in node attributes and in subgraphs (initializers included)."""
    for node in g.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from sub.initializer
                yield from _nested_tensors(sub)


def _check_extent(t: TensorProto, info: dict[str, str], size: int, where: str) -> None:
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", size))
    except ValueError:
        raise ModelError(f"{where}: tensor '{t.name}' has an external data offset or length "
                         f"that is not a number ({info})") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelError(f"{where}: tensor '{t.name}' has external data at bytes "
                         f"[{offset}, {offset + length}) of a {size}-byte file")
    if any(e.key == "length" for e in t.external_data):
        return
    entry = t.external_data.add()  # the tensor runs to the end of the file: say so
    entry.key, entry.value = "length", str(length)


def _stamp(path: str, where: str) -> _Stamp:
    """The file's identity and sha256, read in chunks through the page cache
    (the model's weights are not copied into this process to be hashed)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    except OSError as e:
        raise ModelError(f"{where}: cannot read external data {path}: "
                         f"{e.strerror or e}") from None
    return _Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, h.hexdigest())


def _extent(t: TensorProto) -> _Extent:
    info = {e.key: e.value for e in t.external_data}
    return _Extent(info["location"], int(info.get("offset", 0)), int(info["length"]))


def _copy_fields(src, dst, skip: str):
    """Copy every field of message `src` into `dst` but the one named `skip`."""
    for fd, value in src.ListFields():
        if fd.name == skip:
            continue
        if hasattr(value, "extend"):  # a repeated field
            getattr(dst, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(dst, fd.name).CopyFrom(value)
        else:
            setattr(dst, fd.name, value)
    return dst


def _read_in(t: TensorProto, data: np.ndarray) -> None:
    """Make `t` hold `data` (its bytes) as raw_data instead of a reference."""
    del t.external_data[:]
    t.data_location = TensorProto.DEFAULT
    t.raw_data = data.tobytes()


def _inline_tensor(t: TensorProto, data: np.ndarray) -> TensorProto:
    """A copy of `t` holding `data`."""
    out = TensorProto()
    out.CopyFrom(t)
    _read_in(out, data)
    return out


def _plain_dtype(data_type: int) -> np.dtype | None:
    """The numpy dtype whose little-endian bytes are the tensor's raw data, if any."""
    if sys.byteorder != "little" or data_type in _PACKED:
        return None
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(data_type))
    except (KeyError, TypeError, ValueError):
        return None
    return dtype if dtype.kind in "biuf" and dtype.itemsize in (1, 2, 4, 8) \
        and dtype.name != "bfloat16" else None


_PACKED = {TensorProto.STRING, TensorProto.INT4, TensorProto.UINT4, TensorProto.BFLOAT16,
           *(getattr(TensorProto, n) for n in ("FLOAT4E2M1", "INT2", "UINT2", "FLOAT8E4M3FN",
                                               "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
                                               "FLOAT8E8M0", "FLOAT6E2M3", "FLOAT6E3M2")
             if hasattr(TensorProto, n))}
