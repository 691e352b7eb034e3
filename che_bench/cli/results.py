"""``che-bench report``, ``plot``, ``check`` and ``leaderboard verify``: read leaderboards,
and gate regressions."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from che_bench.cli._common import Real, console, say
from che_bench.cli._grid import ExecutorChoice, plan_shape, run_configs, with_executor_options
from che_bench.errors import ConfigError
from che_bench.util import DEFAULT_LEADERBOARD


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
    from che_bench.results import report as lib

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
        for group, (protocol, table) in zip(groups, lib.render_tables(groups), strict=True):
            say(protocol, style="bold", markup=False)
            console.print(table)
            if lib.footer(group):
                say(lib.footer(group), style="dim", markup=False)
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
    from che_bench.results import plots
    from che_bench.results.report import load_rows

    plots.pyplot()  # a missing extra fails before any work
    rows = load_rows(leaderboard, tasks, encodings)
    if kind == "curves":
        plots.plot_curves(rows, output)
    else:
        plots.plot_heatmap(rows, output, stat)
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
    type=Real(0, 1),
    default=0.02,
    show_default=True,
    help="Smallest tolerance band on a slice's mean score.",
)
@click.option(
    "-k",
    "k",
    type=Real(0),
    default=3.0,
    show_default=True,
    help="Band = max(abs-floor, k × baseline sem over seeds).",
)
@click.option(
    "--loss-rtol",
    type=Real(0, allow_inf=True),
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
    executor: ExecutorChoice,
) -> None:
    """Re-run the smoke grid a baseline describes and fail on per-slice regressions.

    \b
    Examples:
      che-bench check                          # leaderboards/baseline-smoke.jsonl, all CPUs
      che-bench check --leaderboard results.jsonl
      che-bench check --update-baseline --grid sweeps/baseline-smoke.yaml
    """
    from che_bench.results import check as lib
    from che_bench.results.leaderboard import read_rows
    from che_bench.results.stats import usable

    if grid is not None and not update_baseline:
        raise ConfigError("--grid only applies with --update-baseline")
    old = lib.load_baseline(baseline) if baseline.is_file() or not update_baseline else []
    configs = lib.grid_configs(grid) if grid else [lib.rebuild(r) for r in old if usable(r)]
    if leaderboard is not None:
        if update_baseline:
            raise ConfigError("--update-baseline runs the grid; drop --leaderboard")
        if not leaderboard.is_file():
            raise ConfigError(f"no leaderboard at {leaderboard}")
        current = lib.rows_by_key(read_rows(leaderboard).rows)
    else:
        runner = executor.build("cpu", None)
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
            if slice_.status != "same" or slice_.counts:
                say(slice_.line(), markup=False)
    if update_baseline:
        order = {c.run_key: i for i, c in enumerate(configs)}
        rows = sorted(
            (r for r in current.values() if r.run_key in order), key=lambda r: order[r.run_key]
        )
        good = [r for r in rows if r.status == "ok"]
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


@click.group()
def leaderboard() -> None:
    """Inspect leaderboard files."""


@leaderboard.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def verify(file: Path) -> None:
    """Report duplicate runs, corrupt lines and schema problems in FILE (exit 1 if any)."""
    from che_bench.results.leaderboard import verify as verify_file

    if not file.is_file():
        raise ConfigError(f"leaderboard {file} does not exist")
    report = verify_file(file)
    console.print(report.format(), highlight=False)
    if not report.ok:
        sys.exit(1)
