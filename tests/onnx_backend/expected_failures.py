"""Node-suite cases tinyc does not pass yet, each with the reason.

Every entry is a regular expression matched (re.fullmatch) against a case
name; the first match gives the reason. An entry that stops failing shows up
as XPASS(strict), a failure: delete it then.
"""

from __future__ import annotations

import re

EXPECTED_FAILURES: list[tuple[str, str]] = [
]

_COMPILED = [(re.compile(p), r) for p, r in EXPECTED_FAILURES]


def failure_reason(name: str) -> str | None:
    for pattern, reason in _COMPILED:
        if pattern.fullmatch(name):
            return reason
    return None
