"""``che-bench check``: re-run a baseline's grid and gate per-(task, encoding) regressions."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from che_bench.cli._common import Real, say
from che_bench.cli._grid import ExecutorChoice, plan_shape, run_configs, with_executor_options
from che_bench.errors import ConfigError
from che_bench.util import matches

BASELINE_FILE = "baseline-{}.jsonl"
GRID_FILE = "baseline-{}.yaml"


@click.command()
@click.option(
    "--baseline",
    default="ci",
    show_default=True,
    help="A baseline leaderboard file, or the name of a shipped one: ci (the informative "
    "gate) or smoke (a bit-identity tripwire, use with --strict).",
)
@click.option(
    "--leaderboard",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Compare the rows of this leaderboard instead of running the grid.",
)
@click.option("--task", "-t", "tasks", multiple=True, help="Only slices of tasks matching.")
@click.option("--pe", "encodings", multiple=True, help="Only slices of encodings matching.")
@click.option("--update-baseline", is_flag=True, help="Run the grid and rewrite the baseline.")
@click.option(
    "--grid",
    help="With --update-baseline: take the grid from this sweep file (or the name of a "
    "shipped one: ci, smoke) instead of the baseline's own rows.",
)
@click.option(
    "--min-drop",
    type=Real(0, 1),
    default=0.05,
    show_default=True,
    help="A slice regresses only if its mean score drops by more than this …",
)
@click.option(
    "--alpha",
    type=Real(0, 1, low_open=True),
    default=0.05,
    show_default=True,
    help="… and a one-sided Welch test gives p < alpha / number of slices.",
)
@click.option(
    "--min-loss-rise",
    type=Real(0, allow_inf=True),
    default=0.10,
    show_default=True,
    help="A slice also regresses if its mean final training loss rises by more than this "
    "(relative) at the same significance.",
)
@click.option(
    "--loss-rtol",
    type=Real(0, allow_inf=True),
    default=0.0,
    show_default=True,
    help="Relative change of the final training loss reported as drift (a warning).",
)
@click.option("--strict", is_flag=True, help="Fail on drift too (for bit-identical refactors).")
@click.option("--two-sided", is_flag=True, help="Fail on significant improvements too.")
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append each slice's result, with the git revision and date, to this history "
    "(see `che-bench report HISTORY --trend`).",
)
@with_executor_options
def check(
    baseline: str,
    leaderboard: Path | None,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    update_baseline: bool,
    grid: str | None,
    min_drop: float,
    alpha: float,
    min_loss_rise: float,
    loss_rtol: float,
    strict: bool,
    two_sided: bool,
    record: Path | None,
    executor: ExecutorChoice,
) -> None:
    """Re-run the grid a baseline describes and fail on per-slice score regressions.

    A slice (task × encoding) regresses when its mean score over seeds drops by more than
    --min-drop and a one-sided Welch t-test says the drop is significant at --alpha
    (Bonferroni over the slices). Changed losses or per-length accuracies with the score
    inside that band are drift: a warning, a failure only with --strict.

    \b
    Examples:
      che-bench check                               # the shipped ci baseline, all CPUs
      che-bench check --pe 'dape-kerple' --jobs 2   # gate one encoding in seconds
      che-bench check --baseline smoke --strict     # bit-identity tripwire
      che-bench check --record history.jsonl        # and keep a per-commit history
      che-bench check --update-baseline --grid ci   # after a deliberate change
    """
    from che_bench.presets import shipped
    from che_bench.results import check as lib
    from che_bench.results import history
    from che_bench.results.leaderboard import read_rows
    from che_bench.results.provenance import code_identity
    from che_bench.results.stats import usable

    if grid is not None and not update_baseline:
        raise ConfigError("--grid only applies with --update-baseline")
    path = shipped(baseline, "leaderboards", BASELINE_FILE)
    old = lib.load_baseline(path) if path.is_file() or not update_baseline else []
    old = [r for r in old if matches(r.task, tasks) and matches(r.encoding, encodings)]
    if (tasks or encodings) and not old and not update_baseline:
        raise ConfigError(f"no slice of {path} matches the --task/--pe filters")
    grid_file = shipped(grid, "sweeps", GRID_FILE) if grid else None
    if grid_file is not None:
        configs = lib.grid_configs(grid_file)
    else:
        configs = [lib.rebuild(r) for r in old if usable(r)]
    configs = [c for c in configs if matches(c.task, tasks) and matches(c.encoding, encodings)]
    if leaderboard is not None:
        if update_baseline:
            raise ConfigError("--update-baseline runs the grid; drop --leaderboard")
        if not leaderboard.is_file():
            raise ConfigError(f"no leaderboard at {leaderboard}")
        current = lib.rows_by_key(read_rows(leaderboard).rows)
    else:
        runner = executor.build("cpu", None)
        say(f"check: {len(configs)} runs ({plan_shape(configs)}) from {grid_file or path} "
            f"on {runner.describe()}")  # fmt: skip
        started = time.perf_counter()
        result = run_configs(configs, runner, None, quiet=True)
        say(f"ran {len(configs)} runs in {time.perf_counter() - started:.0f}s")
        current = lib.rows_by_key(result.rows)
    if update_baseline:
        write(lib, path, configs, current)
        return
    outcome = lib.compare(old, current, min_drop=min_drop, alpha=alpha, loss_rtol=loss_rtol,
                          min_loss_rise=min_loss_rise,
                          two_sided=two_sided, strict=strict)  # fmt: skip
    for slice_ in outcome.slices:
        if slice_.status != "same" or slice_.counts:
            say(slice_.line(), markup=False)
    missing = lib.uncovered(old)
    if missing and not (tasks or encodings) and baseline in ("ci", "smoke"):
        say(f"[yellow]note:[/] not in the baseline: {', '.join(missing)}; regenerate it with "
            f"--update-baseline --grid {baseline}")  # fmt: skip
    if record is not None:
        history.record(record, outcome, code_identity())
        say(f"recorded {len(outcome.slices)} slices in {record}")
    say(outcome.rule, style="dim", markup=False)
    if outcome.machines:
        say(outcome.machines, style="dim", markup=False)
    if any(s.status == "drifted" for s in outcome.slices) and not strict:
        say("drift is a warning (scores inside the band); --strict fails on it", style="dim")
    say(outcome.summary(), markup=False)
    if not outcome.ok:
        sys.exit(1)


def write(lib, path: Path, configs, current) -> None:
    """Rewrite the baseline at ``path`` with the ok rows of ``configs``' runs."""
    order = {c.run_key: i for i, c in enumerate(configs)}
    rows = [r for r in current.values() if r.run_key in order]
    good = sorted((r for r in rows if r.status == "ok"), key=lambda r: order[r.run_key])
    lib.write_baseline(path, good)
    say(f"wrote {len(good)} rows to {path} ({plan_shape(configs)})")
    if len(good) < len(configs):
        say(f"[red]{len(configs) - len(good)} runs failed and are not in the baseline[/]")
        sys.exit(1)
