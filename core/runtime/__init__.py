"""The runtime: runs saved artifacts with numpy and the C library only.

`load` runs a host artifact in process; a cross artifact on the runtime device
(an emulator, a simulator) its backend plugin registers.
"""

from .devices import load
from .native import NativeModel, TensorInfo

__all__ = ["NativeModel", "TensorInfo", "load"]
