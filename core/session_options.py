"""onnxruntime's SessionOptions and RunOptions, as tinyc reads them.

Only what changes a compile or a run is interpreted (threads, optimization
level, profiling, where to save the artifact, free dimensions, initializers
given at session creation); the logging fields are accepted and kept so
onnxruntime scripts that set them run unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from .errors import TinycError


class GraphOptimizationLevel(enum.IntEnum):
    ORT_DISABLE_ALL = 0  # tinyc: no elementwise fusion
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1  # tinyc runs nodes in order either way; kernels use the threads


class ConfigKeyError(TinycError, KeyError):
    """A config entry asked for was never set."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass
class _ConfigEntries:
    entries: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: str) -> None:
        self.entries[str(key)] = str(value)

    def get(self, key: str, what: str) -> str:
        if key not in self.entries:
            raise ConfigKeyError(f"{what} does not have configuration with key: {key}")
        return self.entries[key]


@dataclass
class SessionOptions:
    intra_op_num_threads: int = 0  # 0: every core (or TINYC_NUM_THREADS)
    inter_op_num_threads: int = 0
    graph_optimization_level: GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL
    execution_mode: ExecutionMode = ExecutionMode.ORT_SEQUENTIAL
    enable_profiling: bool = False
    profile_file_prefix: str = "tinyc_profile"
    optimized_model_filepath: str = ""  # tinyc writes the compiled artifact folder there
    log_severity_level: int = 2
    log_verbosity_level: int = 0
    logid: str = ""
    # symbol -> size: those dims are pinned at compile time (like `tinyc compile --shape`)
    free_dimension_overrides: dict[str, int] = field(default_factory=dict)
    # name -> array replacing a model initializer for this session
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    _config: _ConfigEntries = field(default_factory=_ConfigEntries, repr=False)

    def add_session_config_entry(self, key: str, value: str) -> None:
        self._config.add(key, value)

    def get_session_config_entry(self, key: str) -> str:
        return self._config.get(key, "SessionOptions")

    def add_free_dimension_override_by_name(self, name: str, value: int) -> None:
        self.free_dimension_overrides[name] = int(value)

    def add_initializer(self, name: str, value) -> None:
        self.initializers[name] = np.asarray(value)


@dataclass
class RunOptions:
    logid: str = ""
    log_severity_level: int = 2
    log_verbosity_level: int = 0
    terminate: bool = False
    _config: _ConfigEntries = field(default_factory=_ConfigEntries, repr=False)

    def add_run_config_entry(self, key: str, value: str) -> None:
        self._config.add(key, value)

    def get_run_config_entry(self, key: str) -> str:
        return self._config.get(key, "RunOptions")
