"""The error channel of generated code: tinyc_run's status and the error record.

tinyc_run returns 0 on success. A check that fails (e.g. a run-time index out
of range) makes it return at once with a nonzero status, having filled one
record, a global of the model's library (every check uses the same format):

    struct tinyc_error {        // symbol "tinyc_error"
        int64_t code;           // the status tinyc_run returned (STATUS_*)
        int64_t node;           // the failing node's position in run order
        int64_t value;          // the offending value
        int64_t position;       // its flat position in the checked tensor
        int64_t low, high;      // the range it had to be in, both inclusive
        const char *site;       // "Gather node 'emb': input 'ids'", NUL-terminated
    };

The record is valid only after a nonzero status, until the next run. Calls
sharing a library must not overlap (they share the arena anyway).

This module is plain Python and ctypes, so that runtimes without llvmlite can
read the record; codegen/entry.py writes it.
"""

from __future__ import annotations

import ctypes

from ..errors import InputError, TinycError

ERROR_SYMBOL = "tinyc_error"
STATUS_OK = 0
STATUS_INDEX_RANGE = 1  # an index tensor holds a value outside [low, high]
STATUS_SHAPE_VALUE = 2  # a shape given as run-time data is not the one compiled (low)
STATUS_SLICE_LENGTH = 3  # run-time Slice parameters give another length than compiled (low)
STATUS_SIZE_RANGE = 4  # a size given as run-time data (TopK's k) is outside [low, high]
STATUS_DATA_SIZE = 5  # a size computed from data is one a later node cannot take (the site says)

# The i64 fields in order; `site` (a pointer) follows them.
INT_FIELDS = ("code", "node", "value", "position", "low", "high")
SITE_OFFSET = 8 * len(INT_FIELDS)


class ErrorRecord(ctypes.Structure):
    _fields_ = [*((f, ctypes.c_int64) for f in INT_FIELDS), ("site", ctypes.c_char_p)]


def status_error(lib: ctypes.CDLL, status: int, what: str = "the model") -> TinycError:
    """The exception for a nonzero status of an entry in `lib`."""
    try:
        rec = ErrorRecord.in_dll(lib, ERROR_SYMBOL)
    except ValueError:  # a library built before the record existed
        rec = None
    if rec is None or rec.code != status:
        return TinycError(f"{what}'s native code returned status {status}")
    return record_error(status, rec.value, rec.position, rec.low, rec.high,
                        (rec.site or b"?").decode("utf-8", errors="replace"))


def record_error(code: int, value: int, position: int, low: int, high: int,
                 site: str) -> TinycError:
    """The error one record describes (shared by the runners that read it)."""
    if code == STATUS_INDEX_RANGE:
        return InputError(f"{site}: index {value} (at flat position {position}) is out of "
                          f"range; valid indices are [{low}, {high}]")
    if code == STATUS_SHAPE_VALUE:
        return InputError(f"{site}: holds {value} at position {position}, but the model was "
                          f"compiled for {low} there (a shape given as run-time data must "
                          "be the one the model's shapes were inferred with)")
    if code == STATUS_SLICE_LENGTH:
        return InputError(f"{site}: they give {value} elements along axis {position}, but "
                          f"the model was compiled for {low} there (run-time slice "
                          "parameters must give the shape the model was inferred with)")
    if code == STATUS_SIZE_RANGE:
        return InputError(f"{site}: holds {value}, but it must lie in [{low}, {high}] (a "
                          "size given as run-time data)")
    if code == STATUS_DATA_SIZE:
        return InputError(site)
    return TinycError(f"{site}: check {code} failed on value {value} at flat position "
                      f"{position} (allowed [{low}, {high}])")
