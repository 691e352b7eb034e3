"""che-bench: length generalization of positional encodings on the Chomsky-hierarchy tasks.

Public API::

    get_task, list_tasks            the 15 CHE generators (and plugin tasks)
    get_encoding, list_encodings    every PE, every DAPE variant (and plugin encodings)
    build_encoding, Encoder         the reference encoder with a chosen encoding
    resolve, run                    resolve a RunConfig and run it into a leaderboard
    RunRecord                       what a run returns: one leaderboard row, typed
    read_leaderboard, read_curves   a leaderboard as pandas DataFrames (rows; per-length)

The names are imported on first use, so ``import che_bench`` (and ``che-bench --help``)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → the module that defines it
_LAZY = {
    "Batch": "che_bench.generators",
    "Encoder": "che_bench.model",
    "ModelConfig": "che_bench.model_config",
    "RunConfig": "che_bench.config",
    "RunRecord": "che_bench.results.record",
    "Task": "che_bench.generators",
    "build_encoding": "che_bench.encodings",
    "get_encoding": "che_bench.encodings",
    "get_task": "che_bench.generators",
    "list_encodings": "che_bench.encodings",
    "list_tasks": "che_bench.generators",
    "read_curves": "che_bench.results.frames",
    "read_leaderboard": "che_bench.results.frames",
    "resolve": "che_bench.config",
    "run": "che_bench.running.runner",
}

__all__ = [
    "Batch",
    "Encoder",
    "ModelConfig",
    "RunConfig",
    "RunRecord",
    "Task",
    "__version__",
    "build_encoding",
    "get_encoding",
    "get_task",
    "list_encodings",
    "list_tasks",
    "read_curves",
    "read_leaderboard",
    "resolve",
    "run",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'che_bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from che_bench.config import RunConfig, resolve
    from che_bench.encodings import build_encoding, get_encoding, list_encodings
    from che_bench.generators import Batch, Task, get_task, list_tasks
    from che_bench.model import Encoder
    from che_bench.model_config import ModelConfig
    from che_bench.results.frames import read_curves, read_leaderboard
    from che_bench.results.record import RunRecord
    from che_bench.running.runner import run
