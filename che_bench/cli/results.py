"""``che-bench report``, ``plot`` and ``leaderboard verify``: read leaderboards."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from che_bench.cli._common import console, say
from che_bench.errors import ConfigError
from che_bench.util import DEFAULT_LEADERBOARD, matches

if TYPE_CHECKING:
    from che_bench.results.columns import Column
    from che_bench.results.record import RunRecord
    from che_bench.results.stats import Group


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
@click.option(
    "--trend",
    is_flag=True,
    help="LEADERBOARD is a history (`che-bench check --record`): print each slice's score "
    "per recorded commit and where it first regressed.",
)
@click.option(
    "--compare",
    "pair",
    metavar="A,B",
    help="Add columns comparing encoding A with B on each task, in A's row (as `compare`): "
    "the difference in points, its bootstrap 95% CI, Welch's p and the verdict.",
)
@click.option(
    "--evaluations",
    is_flag=True,
    help="Add a column per length range that `che-bench evaluate` re-scored kept models on.",
)
def report(
    leaderboard: Path,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    fmt: str,
    readme: Path | None,
    trend: bool,
    pair: str | None,
    evaluations: bool,
) -> None:
    """Per task and encoding: seeds, best score (max over seeds × lr), mean ± sem over seeds.

    \b
    Examples:
      che-bench report
      che-bench report leaderboards/baseline-smoke.jsonl --task parity_check --format markdown
      che-bench report --readme leaderboards/
      che-bench report history.jsonl --trend
      che-bench report leaderboards/cpu-repro.jsonl --task bucket_sort --compare rand-relative,nope
      che-bench report --evaluations      # with the scores of `che-bench evaluate` rows
    """
    from che_bench.results import history
    from che_bench.results import report as lib

    if trend or history.is_history(leaderboard):
        entries = [e for e in history.read(leaderboard)
                   if matches(e.task, tasks) and matches(e.encoding, encodings)]  # fmt: skip
        if not entries:
            raise ConfigError(f"no entries in {leaderboard} match the --task/--pe filters")
        click.echo(history.render_trend(entries), nl=False)
        return

    if readme is not None:
        target = readme / "README.md"
        target.write_text(lib.readme(readme), encoding="utf-8")
        say(f"wrote {target}")
        return
    kinds = ("train", "evaluation") if evaluations else ("train",)
    every = lib.load_rows(leaderboard, tasks, encodings, kinds)
    rows = [r for r in every if r.kind == "train"]
    if not rows:
        raise ConfigError(f"no rows in {leaderboard} match the --task/--pe filters")
    groups = lib.aggregate(rows)
    extras = extra_columns(leaderboard, groups, every, tasks, pair, evaluations)
    if fmt == "table":
        tables = lib.render_tables(groups, extras)
        for group, (protocol, table) in zip(groups, tables, strict=True):
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
    click.echo(render[fmt](groups, extras), nl=False)


def extra_columns(
    leaderboard: Path,
    groups: Sequence[Group],
    every: Sequence[RunRecord],
    tasks: Sequence[str],
    pair: str | None,
    evaluations: bool,
) -> list[Column]:
    """The columns ``--compare A,B`` and ``--evaluations`` add (see results.columns)."""
    from che_bench.results import columns

    extras = []
    if pair is not None:
        names = [n.strip() for n in re.split(r",(?![^\[]*\])", pair)]  # not inside [..]
        if len(names) != 2 or not all(names):
            raise ConfigError(f"--compare expects two encodings A,B, got {pair!r}")
        train = [r for r in every if r.kind == "train"]
        extras += columns.comparison_columns(train, tasks, names[0], names[1])
    if evaluations:
        found = columns.evaluation_columns(groups, [r for r in every if r.kind == "evaluation"])
        if not found:
            raise ConfigError(f"{leaderboard} has no evaluation rows (`che-bench evaluate`)")
        extras += found
    return extras


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
    "--kind",
    type=click.Choice(["curves", "heatmap", "trend"]),
    default="curves",
    show_default=True,
    help="trend: LEADERBOARD is a check history (`che-bench check --record`).",
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
      che-bench plot history.jsonl -o trend.png --kind trend
    """
    from che_bench.results import plots
    from che_bench.results.report import load_rows

    plots.pyplot()  # a missing extra fails before any work
    if kind == "trend":
        from che_bench.results import history

        plots.plot_trend(history.read(leaderboard), output)
        say(f"wrote {output}")
        return
    every = load_rows(leaderboard, tasks, encodings, ("train", "evaluation"))
    rows = [r for r in every if r.kind == "train"]
    if kind == "curves":  # extended by the evaluation rows of `che-bench evaluate`
        plots.plot_curves(rows, output, [r for r in every if r.kind == "evaluation"])
    else:
        plots.plot_heatmap(rows, output, stat)
    say(f"wrote {output}")


@click.group()
def leaderboard() -> None:
    """Inspect leaderboard files."""


@leaderboard.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def verify(file: Path) -> None:
    """Report duplicate runs, corrupt lines and schema problems in FILE (exit 1 if any).

    Forced re-runs (`run --force`) and evaluation rows (`che-bench evaluate`) share a
    run_key with a training row by design and are never counted as duplicates.

    \b
    Examples:
      che-bench leaderboard verify leaderboards/local.jsonl
      che-bench leaderboard verify leaderboards/cpu-repro.jsonl && echo clean
    """
    from che_bench.results.leaderboard import verify as verify_file

    if not file.is_file():
        raise ConfigError(f"leaderboard {file} does not exist")
    report = verify_file(file)
    console.print(report.format(), highlight=False)
    if not report.ok:
        sys.exit(1)
