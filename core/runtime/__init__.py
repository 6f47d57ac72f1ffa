"""The runtime: runs saved artifacts with numpy and the C library only."""

from .native import NativeModel, TensorInfo, load

__all__ = ["NativeModel", "TensorInfo", "load"]
