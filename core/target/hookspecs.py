"""The hooks a tinyc plugin may implement (pluggy project "tinyc").

Every hook receives a `register` callback, so tinyc records which plugin provided
what (for `tinyc targets` and for error messages). Hooks are grouped by the stage
of the pipeline that uses what they register. docs/writing-a-backend.md shows a
runnable example of each; a test checks that every hook is documented and tested.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .backend import Backend
    from .registrations import OpSupport, PassRegistration, RuntimeDevice

hookspec = pluggy.HookspecMarker("tinyc")
hookimpl = pluggy.HookimplMarker("tinyc")

PathLike = str | os.PathLike[str]

# ---- describing hardware


@hookspec
def tinyc_register_target_specs(register: Callable[[PathLike], None]) -> None:
    """Register YAML target spec files shipped with the plugin.

    :param register: call with the path of a spec file; the target is known by
        the spec's `name` and validated against the spec schema on load.
    """


@hookspec
def tinyc_register_intrinsics(register: Callable[[PathLike], None]) -> None:
    """Register YAML intrinsic set files: instructions declared by their semantics.

    :param register: call with the path of an intrinsic set file; target specs
        name the set (its `set:` field) under `intrinsics:`.
    """


# ---- partitioning


@hookspec
def tinyc_register_op_support(register: Callable[[OpSupport], None]) -> None:
    """Tell the partitioner which ops (dtypes, patterns) a backend runs.

    :param register: call with a `tinyc.target.OpSupport`. A backend that
        registers none is assumed to run every op tinyc can lower (a CPU).
    """


# ---- graph passes


@hookspec
def tinyc_register_passes(register: Callable[[PassRegistration], None]) -> None:
    """Add Graph -> Graph passes at a phase of the pipeline.

    :param register: call with a `tinyc.target.PassRegistration` whose `phase`
        is one of `tinyc.target.PASS_PHASES`, optionally limited to one backend.
    """


# ---- code generation


@hookspec
def tinyc_register_backends(register: Callable[[Backend], None]) -> None:
    """Register code generators: what turns a target spec into code.

    :param register: call with a `tinyc.target.Backend`; its `name` is what
        target specs refer to in their `backend:` field.
    """


# ---- running


@hookspec
def tinyc_register_runtime_devices(register: Callable[[RuntimeDevice], None]) -> None:
    """Register how artifacts of some backends are loaded and run.

    :param register: call with a `tinyc.target.RuntimeDevice` (in process, an
        emulator, a simulator, a board).
    """
