"""The ``--log``/``--log-dir`` flags that ``run`` and ``sweep`` share (see
:mod:`che_bench.running.loggers`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

from che_bench.config import LOGGERS

if TYPE_CHECKING:
    from che_bench.config import RunConfig

log_options = [
    click.option(
        "--log",
        type=click.Choice(list(LOGGERS)),
        help="Also send each run to TensorBoard or Weights & Biases: loss and accuracy per "
        "log_every, the evaluation curve and the config (extra che-bench[tensorboard] or "
        "che-bench[wandb]; not part of the run's hash).",
    ),
    click.option(
        "--log-dir",
        type=click.Path(file_okay=False),
        help="Where --log writes: TensorBoard in LOG_DIR/<run_key> (default "
        "RUN_DIR/<run_key>/tensorboard), W&B its files in LOG_DIR (default $WANDB_DIR or "
        "./wandb).",
    ),
]


def with_log_options(func):
    """Add ``--log`` and ``--log-dir`` to a command (it receives ``log`` and ``log_dir``)."""
    for option in reversed(log_options):
        func = option(func)
    return func


def require_loggers(configs: Iterable[RunConfig]) -> None:
    """One line naming the extra to install if a logger the configs ask for is missing."""
    from che_bench.running.loggers import require

    for backend in sorted({c.log for c in configs if c.log}):
        require(backend)
