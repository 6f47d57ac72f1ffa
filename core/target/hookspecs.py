"""The hooks a tinyc backend plugin may implement (pluggy project "tinyc").

Each hook receives a `register` callback so tinyc records which plugin
provided what. In-tree backends are plugins loaded the same way as any other.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("tinyc")
hookimpl = pluggy.HookimplMarker("tinyc")


@hookspec
def tinyc_register_backends(register: Callable[[object], None]) -> None:
    """Register the code generators this plugin provides.

    :param register: call with a `tinyc.target.Backend` instance; its `name` is
        what target specs refer to in their `backend:` field.
    """


@hookspec
def tinyc_register_target_specs(register: Callable[[str], None]) -> None:
    """Register YAML target spec files shipped with this plugin.

    :param register: call with the path of a spec file; the target is known by
        the spec's `name`.
    """
