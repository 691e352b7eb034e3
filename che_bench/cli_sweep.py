"""``che-bench sweep`` and the executor options it shares with ``check``.

Added to the main group at the end of ``che_bench/cli.py``. Helpers from ``che_bench.cli``
are imported inside the commands, so that ``cli.py`` can import this module at its end
without an import cycle (also under ``python -m che_bench.cli``).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
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

from che_bench.config import RunConfig
from che_bench.errors import ConfigError

DEFAULT_LEADERBOARD = Path("leaderboards/local.jsonl")
EXECUTOR_CHOICE = click.Choice(["local", "ray", "inline"])


class SweepView:
    """One overall bar on a terminal, and a result line per finished run (plain otherwise)."""

    def __init__(self, out: Console, total: int, *, quiet: bool = False) -> None:
        self.out, self.total, self.quiet, self.done = out, total, quiet, 0
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

    def on_row(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.progress.advance(self.bar)
        tenth = max(1, self.total // 10)
        if self.quiet and row["status"] == "ok" and self.done % tenth and self.done < self.total:
            return
        prefix = f"[{self.done:>{len(str(self.total))}}/{self.total}]"
        self.out.print(run_line(row, prefix), highlight=False, soft_wrap=True)


def say(*objects: Any, **options: Any) -> None:
    """Print on the CLI's console without wrapping or highlighting (logs stay greppable)."""
    from che_bench.cli import console

    console.print(*objects, **{"highlight": False, "soft_wrap": True, **options})


def run_line(row: dict[str, Any], prefix: str = "") -> str:
    """One rich-markup line for a finished run."""
    what = escape(f"{row['task']} × {row['encoding']}  seed {row['seed']}  lr {row['lr']:g}")
    prefix = escape(prefix)
    if row["status"] == "ok":
        return f"{prefix} ok       {what}  score {row['score']:.3f}  {row['wall_time_s']:.1f}s"
    error = escape(str(row.get("error")))
    return f"{prefix} [red]{row['status'].upper():<8}[/] {what}  {error}"


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor flags that ``sweep`` and ``check`` share (see ``executor_options``)."""

    name: str | None
    jobs: int | None
    address: str | None
    cpus_per_run: float
    gpus_per_run: float | None

    def build(
        self, device: str, run_dir: Path | None, *, name: str = "local", jobs: int | None = None
    ):
        """The executor; ``name`` and ``jobs`` are fallbacks (a sweep file's) for the flags."""
        from che_bench.executors import make_executor
        from che_bench.runner import resolve_device

        name = self.name or name
        if name != "ray":  # workers run here: settle "auto" and reject a missing GPU up front
            device = str(resolve_device(device))
        return make_executor(
            name,
            jobs=self.jobs or jobs,
            device=device,
            run_dir=run_dir,
            address=self.address,
            cpus_per_run=self.cpus_per_run,
            gpus_per_run=self.gpus_per_run,
        )


def run_configs(
    configs: Sequence[RunConfig], executor, leaderboard: Path | None, *, quiet: bool = False
):
    """Run with a progress view; on Ctrl-C say what is saved and exit 130."""
    from che_bench.cli import console
    from che_bench.sweep import run_sweep

    with SweepView(console, len(configs), quiet=quiet) as view:
        try:
            return run_sweep(configs, executor, leaderboard, on_row=view.on_row)
        except KeyboardInterrupt:
            saved = f"and are in {leaderboard}" if leaderboard else "(nothing was written)"
            view.progress.stop()
            say(
                f"interrupted: {view.done} of {len(configs)} runs finished {saved}; "
                "run the same command again to resume",
            )
            sys.exit(130)


executor_options = [
    click.option("--executor", type=EXECUTOR_CHOICE, help="local (default), ray or inline."),
    click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Parallel runs for the local executor (default: one per CPU).",
    ),
    click.option("--address", help="Ray cluster: auto or HOST:PORT (default: start one here)."),
    click.option(
        "--cpus-per-run",
        type=float,
        default=1.0,
        show_default=True,
        help="Ray: num_cpus requested per run (also its torch threads).",
    ),
    click.option("--gpus-per-run", type=float, help="Ray: num_gpus per run (default 1 on cuda)."),
]


def with_executor_options(func):
    """Add the executor flags to a command; it receives them as one ``ExecutorChoice``."""

    @functools.wraps(func)
    def command(**kwargs):
        flags = [kwargs.pop(k) for k in ("executor", "jobs", "address")]
        flags += [kwargs.pop("cpus_per_run"), kwargs.pop("gpus_per_run")]
        return func(executor=ExecutorChoice(*flags), **kwargs)

    for option in reversed(executor_options):
        command = option(command)
    return command


@click.command()
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", "-t", "tasks", multiple=True, help="Task name or glob, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Encoding name or glob, repeatable.")
@click.option("--seeds", help="Seeds: N, LO-HI or a comma list (default 0).")
@click.option("--lr", "lrs", multiple=True, type=float, help="Learning rate, repeatable.")
@click.option("--preset", help="Budget preset name or YAML file (default quick).")
@click.option(
    "--pe-opt",
    "pe_opts",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encoding option for the encodings that have it, repeatable.",
)
@click.option("--steps", type=int, help="Training steps (overrides the preset).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any setting, e.g. --set test_lengths=41-60.",
)
@click.option(
    "--leaderboard",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_LEADERBOARD,
    show_default=True,
)
@click.option("--device", help="auto (default), cpu or cuda.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Checkpoints of unfinished runs (resumed on re-run).",
)
@click.option("--dry-run", is_flag=True, help="Show the plan and exit.")
@with_executor_options
def sweep(
    sweep_file: Path | None,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    seeds: str | None,
    lrs: tuple[float, ...],
    preset: str | None,
    pe_opts: tuple[str, ...],
    steps: int | None,
    sets: tuple[str, ...],
    leaderboard: Path,
    device: str | None,
    run_dir: Path,
    dry_run: bool,
    executor: ExecutorChoice,
) -> None:
    """Run every task × encoding × lr × seed of a grid; skip runs already in the leaderboard.

    \b
    Examples:
      che-bench sweep sweeps/example.yaml
      che-bench sweep --task parity_check --pe 'dape*' --seeds 0-9 --preset quick --jobs 2
      che-bench sweep sweeps/example.yaml --executor ray --address auto

    Flags override the file's values. Ctrl-C stops cleanly; run it again to resume.
    """
    from che_bench.cli import check_writable, parse_pe_options
    from che_bench.sweep import SweepSpec, expand, load_sweep, parse_lrs, parse_seeds, pending

    spec = load_sweep(sweep_file) if sweep_file else SweepSpec()
    spec.tasks = list(tasks) or spec.tasks
    spec.encodings = list(encodings) or spec.encodings
    spec.seeds = parse_seeds(seeds, "--seeds") if seeds else spec.seeds
    spec.lrs = parse_lrs(lrs, "--lr") if lrs else spec.lrs
    spec.preset = preset or spec.preset
    spec.encoding_options.update(parse_pe_options(pe_opts))
    spec.overrides.update(parse_sets(sets))
    if steps is not None:
        spec.overrides["steps"] = steps
    configs = expand(spec)
    todo = pending(configs, leaderboard)
    runner = executor.build(
        device or spec.device or "auto", run_dir, name=spec.executor or "local", jobs=spec.jobs
    )
    say(
        f"sweep: {len(configs)} runs ({plan_shape(configs)}); {len(configs) - len(todo)} already "
        f"ok in {leaderboard}; {len(todo)} to run on {runner.describe()}",
    )
    if dry_run or not todo:
        return
    check_writable(leaderboard)
    started = time.perf_counter()
    result = run_configs(todo, runner, leaderboard)
    ok = len(result.rows) - len(result.failed)
    say(
        f"finished {len(result.rows)} runs in {time.perf_counter() - started:.0f}s: "
        f"{ok} ok, {len(result.failed)} failed → {leaderboard}",
    )
    for row in result.failed:
        say("  " + run_line(row).strip())
    if result.failed:
        sys.exit(1)


def plan_shape(configs: Sequence[RunConfig]) -> str:
    def count(attr: str) -> int:
        return len({getattr(c, attr) for c in configs})

    return (
        f"{count('task')} tasks × {count('encoding')} encodings × {count('lr')} lr × "
        f"{count('seed')} seeds"
    )


def parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` with the value read as YAML (numbers, lists, booleans)."""
    from che_bench.sweep import override_problem

    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. steps=100), got {pair!r}")
        problem = override_problem(key)
        if problem:
            raise ConfigError(f"--set {key}: {problem}")
        try:
            overrides[key] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot read value {raw!r}") from None
    return overrides
