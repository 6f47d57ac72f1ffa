"""onnxruntime's IOBinding: inputs and outputs bound to memory before a run.

tinyc runs on host memory, so a binding is a set of numpy arrays: bound by
array, or by raw pointer (the caller keeps that memory alive and sized). An
output bound to a caller buffer is written there by the native code itself
(NativeModel.run_into), so a loop reuses the same buffers with no copy.
Device names other than "cpu" are refused: nothing would copy them.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .errors import InputError


def _element_dtype(element_type) -> np.dtype:
    """A numpy type, or an ONNX TensorProto element type number."""
    if isinstance(element_type, int) and not isinstance(element_type, bool):
        from .ir import DType

        return np.dtype(DType.from_onnx(element_type).numpy)
    return np.dtype(element_type)


def array_at(buffer_ptr: int, element_type, shape) -> np.ndarray:
    """A writeable numpy view of caller memory at `buffer_ptr`."""
    if not buffer_ptr:
        raise InputError("buffer_ptr is null")
    dtype = _element_dtype(element_type)
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise InputError(f"a bound buffer needs a concrete shape, not {list(shape)}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = (ctypes.c_char * max(nbytes, 1)).from_address(int(buffer_ptr))
    return np.frombuffer(raw, np.uint8, count=nbytes).view(dtype).reshape(shape)


def _check_device(device_type: str, name: str) -> None:
    if str(device_type).lower() != "cpu":
        raise InputError(f"'{name}' is bound to device '{device_type}'; tinyc binds host "
                         f"memory only (device_type='cpu')")


class IOBinding:
    """Made by InferenceSession.io_binding(); run with sess.run_with_iobinding."""

    def __init__(self, session):
        self._session = session
        self._inputs: dict[str, np.ndarray] = {}
        self._outputs: dict[str, np.ndarray | None] = {}  # None: the run allocates it
        self._results: list[np.ndarray] = []

    # ---- inputs

    def bind_cpu_input(self, name: str, arr_on_cpu) -> None:
        self._inputs[name] = np.asarray(arr_on_cpu)

    def bind_input(self, name: str, device_type: str, device_id: int, element_type, shape,
                   buffer_ptr: int) -> None:
        _check_device(device_type, name)
        self._inputs[name] = array_at(buffer_ptr, element_type, shape)

    def bind_ortvalue_input(self, name: str, value) -> None:
        """tinyc's values are numpy arrays: binds one, as bind_cpu_input."""
        self.bind_cpu_input(name, value)

    def bind_kv_cache(self, past_name: str, present_name: str, buffer: np.ndarray,
                      past_length: int, new_length: int) -> None:
        """Bind a KV cache pair to one buffer, as onnxruntime-genai's
        past_present_share_buffer: `buffer` is [..., capacity, head_dim] (the
        sequence on the second-to-last axis); the past is its first
        `past_length` rows, and the run writes only the `new_length` new rows
        after them (present is the first past_length + new_length rows). No row
        of the old cache is copied when the model shares the pair
        (CompileOptions.share_kv_cache); InputError when it would not fit."""
        if not isinstance(buffer, np.ndarray) or buffer.ndim < 2:
            raise InputError(f"bind_kv_cache('{past_name}') needs a numpy array "
                             f"[..., capacity, head_dim], not {type(buffer).__name__}")
        if not (buffer.flags.c_contiguous and buffer.flags.writeable):
            raise InputError(f"the KV cache buffer for '{present_name}' must be C-contiguous "
                             f"and writeable")
        capacity, past, new = buffer.shape[-2], int(past_length), int(new_length)
        if past < 0 or new < 0 or past + new > capacity:
            raise InputError(f"KV cache '{present_name}': {past} past + {new} new rows do not "
                             f"fit the buffer's capacity of {capacity} rows")
        self._inputs[past_name] = buffer[..., :past, :]
        self._outputs[present_name] = buffer[..., :past + new, :]

    # ---- outputs

    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0,
                    element_type=None, shape=None, buffer_ptr=None) -> None:
        """With buffer_ptr (a pointer, or a numpy array) the run writes the output
        there; without, the run allocates it and get_outputs returns it."""
        _check_device(device_type, name)
        if buffer_ptr is None:
            self._outputs[name] = None
        elif isinstance(buffer_ptr, np.ndarray):
            self._outputs[name] = buffer_ptr
        else:
            if element_type is None or shape is None:
                raise InputError(f"bind_output('{name}') with a buffer_ptr needs element_type "
                                 f"and shape")
            self._outputs[name] = array_at(buffer_ptr, element_type, shape)

    def bind_ortvalue_output(self, name: str, value: np.ndarray) -> None:
        self.bind_output(name, buffer_ptr=np.asarray(value))

    # ---- results and housekeeping

    def get_outputs(self) -> list[np.ndarray]:
        """The bound outputs of the last run, in bind order (the caller's own
        arrays where buffers were bound)."""
        return list(self._results)

    def copy_outputs_to_cpu(self) -> list[np.ndarray]:
        return [a.copy() for a in self._results]

    def get_outputs_as_numpy(self) -> list[np.ndarray]:
        return self.copy_outputs_to_cpu()

    def clear_binding_inputs(self) -> None:
        self._inputs.clear()

    def clear_binding_outputs(self) -> None:
        self._outputs.clear()
        self._results = []

    def synchronize_inputs(self) -> None:
        """Host memory: nothing to wait for."""

    def synchronize_outputs(self) -> None:
        """Host memory: the run has finished writing when it returns."""

    # ---- used by InferenceSession.run_with_iobinding

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        return dict(self._inputs)

    @property
    def outputs(self) -> dict[str, np.ndarray | None]:
        return dict(self._outputs)

    def set_results(self, results: list[np.ndarray]) -> None:
        self._results = list(results)
