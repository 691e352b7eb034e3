"""Running a grid from the command line, shared by ``sweep`` and ``check``: the executor
flags, the live view, one result line per run, Ctrl-C handling."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from che_bench.cli._common import Real, console, say
from che_bench.config import RunConfig
from che_bench.errors import ConfigError
from che_bench.util import EXECUTORS

if TYPE_CHECKING:
    from che_bench.results.record import RunRecord
    from che_bench.running.gate import Skip

EXECUTOR_CHOICE = click.Choice(list(EXECUTORS))


class SweepView:
    """One overall bar on a terminal, and a result line per finished run (plain otherwise)."""

    def __init__(self, out: Console, total: int, *, quiet: bool = False) -> None:
        self.out, self.total, self.quiet, self.done, self.skipped = out, total, quiet, 0, 0
        self.progress = Progress(
            TextColumn("runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=out,
            disable=not out.is_terminal,
        )
        self.bar = self.progress.add_task("runs", total=total)

    def __enter__(self) -> SweepView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def on_row(self, record: RunRecord) -> None:
        self.done += 1
        self.progress.advance(self.bar)
        tenth = max(1, self.total // 10)
        seen = self.done + self.skipped
        if self.quiet and record.status == "ok" and seen % tenth and seen < self.total:
            return
        self.out.print(run_line(record, self._prefix()), highlight=False, soft_wrap=True)

    def on_skip(self, skip: Skip) -> None:
        """A cell this sweep leaves alone: one line saying why (never hidden by ``quiet``)."""
        self.skipped += 1
        self.progress.advance(self.bar)
        config = skip.config
        what = f"{config.task} × {config.encoding}  seed {config.seed}  lr {config.lr:g}"
        line = f"{self._prefix()} skipped  {what}  {skip.why}"
        self.out.print(escape(line), highlight=False, soft_wrap=True)

    def _prefix(self) -> str:
        return f"[{self.done + self.skipped:>{len(str(self.total))}}/{self.total}]"


def run_line(record: RunRecord, prefix: str = "") -> str:
    """One rich-markup line for a finished run."""
    what = escape(f"{record.task} × {record.encoding}  seed {record.seed}  lr {record.lr:g}")
    prefix = escape(prefix)
    if record.status == "ok":
        return f"{prefix} ok       {what}  score {record.score:.3f}  {record.wall_time_s:.1f}s"
    error = escape(str(record.error))
    return f"{prefix} [red]{record.status.upper():<8}[/] {what}  {error}"


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor flags that ``sweep`` and ``check`` share (see ``executor_options``)."""

    name: str | None
    jobs: int | None
    address: str | None
    cpus_per_run: float
    gpus_per_run: float | None
    slurm_partition: str | None = None
    slurm_time: str | None = None
    slurm_folder: Path | None = None

    def build(
        self, device: str, run_dir: Path | None, *, name: str = "local", jobs: int | None = None
    ):
        """The executor; ``name`` and ``jobs`` are fallbacks (a sweep file's) for the flags."""
        from che_bench.running.executors import make_executor
        from che_bench.running.runner import resolve_device

        name = self.name or name
        slurm = {"partition": self.slurm_partition, "time": self.slurm_time,
                 "folder": self.slurm_folder}  # fmt: skip
        given = [f"--slurm-{key}" for key, value in slurm.items() if value is not None]
        if given and name != "slurm":
            raise ConfigError(f"{given[0]} applies only to --executor slurm, not {name}")
        if name not in ("ray", "slurm"):  # runs here: settle "auto", reject a missing GPU now
            device = str(resolve_device(device))
        return make_executor(
            name,
            jobs=self.jobs or jobs,
            device=device,
            run_dir=run_dir,
            address=self.address,
            cpus_per_run=self.cpus_per_run,
            gpus_per_run=self.gpus_per_run,
            slurm_partition=self.slurm_partition,
            slurm_time=self.slurm_time,
            slurm_folder=self.slurm_folder,
        )


def run_configs(
    configs: Sequence[RunConfig], executor, leaderboard: Path | None, *, quiet: bool = False
):
    """Run with a progress view; on Ctrl-C say what is saved and exit 130."""
    from che_bench.running.sweep import run_sweep

    with SweepView(console, len(configs), quiet=quiet) as view:
        try:
            return run_sweep(
                configs, executor, leaderboard, on_row=view.on_row, on_skip=view.on_skip
            )
        except KeyboardInterrupt:
            saved = f"and are in {leaderboard}" if leaderboard else "(nothing was written)"
            view.progress.stop()
            say(
                f"interrupted: {view.done} of {len(configs)} runs finished {saved}; "
                "run the same command again to resume",
            )
            sys.exit(130)


executor_options = [
    click.option(
        "--executor", type=EXECUTOR_CHOICE, help="local (default), ray, slurm or inline."
    ),
    click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Parallel runs: local workers (default one per CPU), or Slurm jobs in flight "
        "(default 32).",
    ),
    click.option("--address", help="Ray cluster: auto or HOST:PORT (default: start one here)."),
    click.option(
        "--cpus-per-run",
        type=Real(0, low_open=True),
        default=1.0,
        show_default=True,
        help="Ray/Slurm: CPUs requested per run (also its torch threads).",
    ),
    click.option(
        "--gpus-per-run",
        type=Real(0),
        help="Ray/Slurm: GPUs per run (default 1 on cuda, else 0); on Slurm, --device auto "
        "is cuda when this is above 0.",
    ),
    click.option("--slurm-partition", help="Slurm: the partition the jobs go to (sbatch -p)."),
    click.option(
        "--slurm-time",
        metavar="TIME",
        help="Slurm: each job's time limit, minutes or H:MM:SS (default 60 minutes).",
    ),
    click.option(
        "--slurm-folder",
        type=click.Path(file_okay=False, path_type=Path),
        help="Slurm: submitit's job folder (pickles, logs), shared with the nodes "
        "(default RUN_DIR/slurm).",
    ),
]


def with_executor_options(func):
    """Add the executor flags to a command; it receives them as one ``ExecutorChoice``."""

    @functools.wraps(func)
    def command(**kwargs):
        flags = [kwargs.pop(k) for k in ("executor", "jobs", "address")]
        flags += [kwargs.pop("cpus_per_run"), kwargs.pop("gpus_per_run")]
        flags += [kwargs.pop(f"slurm_{k}") for k in ("partition", "time", "folder")]
        return func(executor=ExecutorChoice(*flags), **kwargs)

    for option in reversed(executor_options):
        command = option(command)
    return command


def plan_shape(configs: Sequence[RunConfig]) -> str:
    def count(attr: str) -> int:
        return len({getattr(c, attr) for c in configs})

    variants = len({(c.encoding, json.dumps(c.encoding_options, sort_keys=True)) for c in configs})
    extra = variants - count("encoding")
    encodings = f"{count('encoding')} encodings" + (f" (+{extra} option variants)" if extra else "")
    return f"{count('task')} tasks × {encodings} × {count('lr')} lr × {count('seed')} seeds"
