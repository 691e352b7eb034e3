"""``che-bench report`` and ``leaderboard verify``: read leaderboards."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from che_bench.cli._common import console, say
from che_bench.errors import ConfigError
from che_bench.util import default_leaderboard, matches

if TYPE_CHECKING:
    from che_bench.results.columns import Column
    from che_bench.results.record import RunRecord
    from che_bench.results.site import Site
    from che_bench.results.stats import Group


@click.command()
@click.argument(
    "leaderboard",
    required=False,
    default=default_leaderboard,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--task", "-t", "tasks", multiple=True, help="Only tasks matching, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Only encodings matching, repeatable.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "csv", "json", "html"]),
    default="table",
    show_default=True,
    help="html: a static site (sortable tables, curve figures, a page per run) into -o DIR.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="With --format html: the site's directory (required). With markdown, csv or json: "
    "the file to write instead of standard output.",
)
@click.option(
    "--readme",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write DIR/README.md with the table of every leaderboard in DIR, and exit "
    "(with --format html: the site of every leaderboard in DIR, into -o).",
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
@click.option(
    "--curves",
    is_flag=True,
    help="Print the per-length accuracies instead, one line per run, split (train|test) and "
    "length (with --format csv or json; with --evaluations, evaluation rows too).",
)
def report(
    leaderboard: Path,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    fmt: str,
    output: Path | None,
    readme: Path | None,
    trend: bool,
    pair: str | None,
    evaluations: bool,
    curves: bool,
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
      che-bench report leaderboards/cpu-repro.jsonl --format csv --curves > curves.csv
      che-bench report leaderboards/cpu-repro.jsonl --format html -o site/
      che-bench report --readme leaderboards/ --format html -o site/   # every leaderboard
    """
    from che_bench.results import history
    from che_bench.results import report as lib

    if curves and (fmt not in ("csv", "json") or trend):
        raise ConfigError("--curves prints a leaderboard's per-length table; add --format csv|json")
    is_history = trend or history.is_history(leaderboard)
    if is_history and (fmt == "html" or output is not None):
        raise ConfigError("a check history (--trend) prints to the terminal, with no -o and no "
                          "--format html; `che-bench plot --kind trend` draws it")  # fmt: skip
    if fmt == "html" and output is None:
        raise ConfigError("--format html writes a site: pass -o DIR (e.g. -o site/)")
    if output is not None and fmt == "table":
        raise ConfigError("-o writes --format markdown, csv, json or html; the table is for "
                          "the terminal")  # fmt: skip

    def emit(text: str) -> None:
        if output is None:
            click.echo(text, nl=False)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
        say(f"wrote {output}", markup=False)

    if is_history:
        entries = [e for e in history.read(leaderboard)
                   if matches(e.task, tasks) and matches(e.encoding, encodings)]  # fmt: skip
        if not entries:
            raise ConfigError(f"no entries in {leaderboard} match the --task/--pe filters")
        click.echo(history.render_trend(entries), nl=False)
        return

    if readme is not None and fmt == "html":
        from che_bench.results import site

        boards = site.leaderboards_in(readme, tasks, encodings)
        written_site(site.write_site(boards, output))
        return
    if readme is not None:
        if output is not None:
            raise ConfigError("--readme writes DIR/README.md; -o goes with --format html")
        target = readme / "README.md"
        target.write_text(lib.readme(readme), encoding="utf-8")
        say(f"wrote {target}")
        return
    kinds = ("train", "evaluation") if evaluations else ("train",)
    every = lib.load_rows(leaderboard, tasks, encodings, kinds)
    if curves:
        from che_bench.results import frames

        if not every:
            raise ConfigError(f"no rows in {leaderboard} match the --task/--pe filters")
        emit((frames.curves_csv if fmt == "csv" else frames.curves_json)(every))
        return
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
    if fmt == "html":
        from che_bench.results import site

        written_site(site.write_site([(leaderboard.name, rows)], output, extras))
        return
    render = {"markdown": lib.render_markdown, "csv": lib.render_csv, "json": lib.render_json}
    emit(render[fmt](groups, extras))


def written_site(site: Site) -> None:
    """The lines saying what ``report --format html`` wrote (a ``results.site.Site``)."""
    figures = f"{len(site.figures)} figure{'' if len(site.figures) == 1 else 's'}"
    say(f"wrote {site.index} ({len(site.pages)} run pages, {figures})", markup=False)
    if site.note:
        say(site.note, style="yellow", markup=False)


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
