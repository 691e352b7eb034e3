"""``che-bench sweep``, ``report``, ``plot`` and ``check``: thin commands over the library.

Registered on the main group by :func:`register` (``che_bench/cli.py``). Helpers from
``che_bench.cli`` are imported inside the commands, so that ``cli.py`` can import this
module at its end without an import cycle (also under ``python -m che_bench.cli``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
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


def build_executor(
    name: str,
    jobs: int | None,
    device: str,
    run_dir: Path | None,
    address: str | None,
    cpus: float,
    gpus: float | None,
):
    from che_bench.executors import make_executor
    from che_bench.runner import resolve_device

    if name != "ray":  # workers run here: settle "auto" and reject a missing GPU up front
        device = str(resolve_device(device))
    return make_executor(
        name,
        jobs=jobs,
        device=device,
        run_dir=run_dir,
        address=address,
        cpus_per_run=cpus,
        gpus_per_run=gpus,
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
    for option in reversed(executor_options):
        func = option(func)
    return func


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
    executor: str | None,
    jobs: int | None,
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float | None,
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
    runner = build_executor(
        executor or spec.executor or "local",
        jobs or spec.jobs,
        device or spec.device or "auto",
        run_dir,
        address,
        cpus_per_run,
        gpus_per_run,
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


@click.command()
@click.argument(
    "leaderboard",
    required=False,
    default=str(DEFAULT_LEADERBOARD),
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--task", "-t", "tasks", multiple=True, help="Only tasks matching, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Only encodings matching, repeatable.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--readme",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write DIR/README.md with the table of every leaderboard in DIR, and exit.",
)
def report(
    leaderboard: Path,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    fmt: str,
    readme: Path | None,
) -> None:
    """Per task and encoding: seeds, best score (max over seeds × lr), mean ± sem over seeds.

    \b
    Examples:
      che-bench report
      che-bench report leaderboards/baseline-smoke.jsonl --task parity_check --format markdown
      che-bench report --readme leaderboards/
    """
    from che_bench import report as lib
    from che_bench.cli import console

    if readme is not None:
        target = readme / "README.md"
        target.write_text(lib.readme(readme), encoding="utf-8")
        say(f"wrote {target}")
        return
    rows = lib.load_rows(leaderboard, tasks, encodings)
    if not rows:
        raise ConfigError(f"no rows in {leaderboard} match the --task/--pe filters")
    groups = lib.aggregate(rows)
    if fmt == "table":
        for protocol, table in lib.render_tables(groups):
            say(protocol, style="bold", markup=False)
            console.print(table)
        say(
            "scores: accuracy % over the test lengths; best = max over seeds × lr; "
            "mean ± sem over seeds at the best lr; bold = best per task",
            style="dim",
        )
        return
    render = {"markdown": lib.render_markdown, "csv": lib.render_csv, "json": lib.render_json}
    click.echo(render[fmt](groups), nl=False)


@click.command()
@click.argument("leaderboard", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG (or any format matplotlib writes) to create.",
)
@click.option(
    "--kind", type=click.Choice(["curves", "heatmap"]), default="curves", show_default=True
)
@click.option("--task", "-t", "tasks", multiple=True, help="Only tasks matching, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Only encodings matching, repeatable.")
@click.option(
    "--stat",
    type=click.Choice(["best", "mean"]),
    default="best",
    show_default=True,
    help="Heatmap value: max over seeds × lr, or the mean at the best lr.",
)
def plot(
    leaderboard: Path,
    output: Path,
    kind: str,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    stat: str,
) -> None:
    """Plot accuracy vs length per encoding (curves) or a task × encoding heatmap.

    \b
    Examples:
      che-bench plot leaderboards/local.jsonl -o curves.png --task parity_check
      che-bench plot leaderboards/local.jsonl -o heatmap.png --kind heatmap
    """
    from che_bench import report as lib

    lib.pyplot()  # a missing extra fails before any work
    rows = lib.load_rows(leaderboard, tasks, encodings)
    if kind == "curves":
        lib.plot_curves(rows, output)
    else:
        lib.plot_heatmap(rows, output, stat)
    say(f"wrote {output}")


@click.command()
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    default="leaderboards/baseline-smoke.jsonl",
    show_default=True,
)
@click.option(
    "--leaderboard",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Compare the rows of this leaderboard instead of running the grid.",
)
@click.option("--update-baseline", is_flag=True, help="Run the grid and rewrite the baseline.")
@click.option(
    "--grid",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --update-baseline: take the grid from this sweep file (built-in "
    "encodings only) instead of the baseline's own rows.",
)
@click.option(
    "--abs-floor",
    type=float,
    default=0.02,
    show_default=True,
    help="Smallest tolerance band on a slice's mean score.",
)
@click.option(
    "-k",
    "k",
    type=float,
    default=3.0,
    show_default=True,
    help="Band = max(abs-floor, k × baseline sem over seeds).",
)
@click.option(
    "--loss-rtol",
    type=float,
    default=0.01,
    show_default=True,
    help="Relative drift of the final training loss that counts as a change "
    "(inf turns the determinism check off).",
)
@click.option("--two-sided", is_flag=True, help="Fail on improvements beyond the band too.")
@with_executor_options
def check(
    baseline: Path,
    leaderboard: Path | None,
    update_baseline: bool,
    grid: Path | None,
    abs_floor: float,
    k: float,
    loss_rtol: float,
    two_sided: bool,
    executor: str | None,
    jobs: int | None,
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float | None,
) -> None:
    """Re-run the smoke grid a baseline describes and fail on per-slice regressions.

    \b
    Examples:
      che-bench check                          # leaderboards/baseline-smoke.jsonl, all CPUs
      che-bench check --leaderboard results.jsonl
      che-bench check --update-baseline --grid sweeps/baseline-smoke.yaml
    """
    from che_bench import check as lib
    from che_bench.leaderboard import read_rows

    if grid is not None and not update_baseline:
        raise ConfigError("--grid only applies with --update-baseline")
    old = lib.load_baseline(baseline) if baseline.is_file() or not update_baseline else []
    configs = lib.grid_configs(grid) if grid else [lib.rebuild(r) for r in old]
    if leaderboard is not None:
        if update_baseline:
            raise ConfigError("--update-baseline runs the grid; drop --leaderboard")
        if not leaderboard.is_file():
            raise ConfigError(f"no leaderboard at {leaderboard}")
        current = lib.rows_by_key(read_rows(leaderboard).rows)
    else:
        runner = build_executor(
            executor or "local", jobs, "cpu", None, address, cpus_per_run, gpus_per_run
        )
        say(
            f"check: {len(configs)} runs ({plan_shape(configs)}) from "
            f"{grid or baseline} on {runner.describe()}",
        )
        started = time.perf_counter()
        result = run_configs(configs, runner, None, quiet=True)
        say(f"ran {len(configs)} runs in {time.perf_counter() - started:.0f}s")
        current = lib.rows_by_key(result.rows)
    outcome = (
        lib.compare(
            old, current, abs_floor=abs_floor, k=k, loss_rtol=loss_rtol, two_sided=two_sided
        )
        if old
        else None
    )
    if outcome is not None:
        for slice_ in outcome.slices:
            if slice_.status != "same":
                say(slice_.line(), markup=False)
    if update_baseline:
        order = {c.run_key: i for i, c in enumerate(configs)}
        rows = sorted(
            (r for r in current.values() if r["run_key"] in order),
            key=lambda r: order[r["run_key"]],
        )
        good = [r for r in rows if r["status"] == "ok"]
        lib.write_baseline(baseline, good)
        say(f"wrote {len(good)} rows to {baseline} ({plan_shape(configs)})")
        if len(good) < len(configs):
            say(
                f"[red]{len(configs) - len(good)} runs failed and are not in the baseline[/]",
            )
            sys.exit(1)
        return
    missing = lib.uncovered(old)
    if missing and baseline.resolve() == lib.DEFAULT_BASELINE.resolve():  # the all-PE baseline
        say(
            f"[yellow]note:[/] not in the baseline: {', '.join(missing)}; regenerate "
            f"it with --update-baseline --grid {lib.DEFAULT_GRID}",
        )
    assert outcome is not None
    say(outcome.summary(), markup=False)
    if not outcome.ok:
        sys.exit(1)


def register(main: click.Group) -> None:
    """Add the sweep, report, plot and check commands to ``main``."""
    for command in (sweep, report, plot, check):
        main.add_command(command)
