"""che-bench: length generalization of positional encodings on the Chomsky-hierarchy tasks.

Public API::

    get_task, list_tasks            the 15 CHE generators (and plugin tasks)
    get_encoding, list_encodings    every PE, every DAPE variant (and plugin encodings)
    build_encoding, Encoder         the reference encoder with a chosen encoding
    resolve, run                    resolve a RunConfig and run it into a leaderboard
    RunRecord                       what a run returns: one leaderboard row, typed
"""

__version__ = "0.1.0"

from che_bench.config import RunConfig, resolve  # noqa: E402
from che_bench.encodings import build_encoding, get_encoding, list_encodings  # noqa: E402
from che_bench.generators import Batch, Task, get_task, list_tasks  # noqa: E402
from che_bench.model import Encoder, ModelConfig  # noqa: E402
from che_bench.results.record import RunRecord  # noqa: E402
from che_bench.running.runner import run  # noqa: E402

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
    "resolve",
    "run",
]
