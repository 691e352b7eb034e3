"""Reports: the statistics of :mod:`.stats` as tables in four formats, and the leaderboard
README.

One table per protocol (runs of different budgets are never pooled). Rows that are not ok
(``failed``, ``diverged``) are in no number; the ``failed`` column counts them per cell and
a footer line per table says how many there are of each (both only when there are any).
Plots are in :mod:`.plots`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError
from che_bench.results.columns import Column
from che_bench.results.leaderboard import read_rows
from che_bench.results.record import RunRecord
from che_bench.results.stats import (
    CELL_FIELDS,
    Cell,
    Group,
    LrStats,
    aggregate,
    excluded_text,
    latest_per_run,
    option_key,
    option_labels,
    protocol_of,
)
from che_bench.util import matches

__all__ = [  # the statistics are re-exported: ``report.aggregate`` is what readers call
    "CELL_FIELDS", "FORMATS", "Cell", "Group", "LrStats", "aggregate", "latest_per_run",
    "load_rows", "option_key", "option_labels", "protocol_of", "readme", "records",
    "render_csv", "render_json", "render_markdown", "render_tables", "select",
]  # fmt: skip
FORMATS = ("table", "markdown", "csv", "json")


def load_rows(
    path: Path,
    tasks: Sequence[str] = (),
    encodings: Sequence[str] = (),
    kinds: Sequence[str] = ("train",),
) -> list[RunRecord]:
    """Records of a leaderboard (corrupt lines skipped with a warning), filtered by globs;
    the training rows only unless ``kinds`` says (``evaluation``: `che-bench evaluate`)."""
    if not path.is_file():
        raise ConfigError(f"no leaderboard at {path}; run a sweep first or pass a file")
    return select(read_rows(path, kinds=kinds).rows, tasks, encodings)


def select(
    rows: Iterable[RunRecord], tasks: Sequence[str] = (), encodings: Sequence[str] = ()
) -> list[RunRecord]:
    return [r for r in rows if matches(r.task, tasks) and matches(r.encoding, encodings)]


# -- tables ------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def mean_sem(cell: Cell) -> str:
    head = cell.headline
    if head is None:
        return "–"
    return pct(head.mean) + ("" if head.sem is None else f" ± {100 * head.sem:.1f}")


def winners(cells: Sequence[Cell]) -> tuple[set[int], set[int]]:
    """Indices (into ``cells``) of the best ``best`` and the best mean within each task."""
    best_ids: set[int] = set()
    mean_ids: set[int] = set()
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, cell in enumerate(cells):
        by_task[cell.task].append(i)
    for ids in by_task.values():
        for chosen, value in (
            (best_ids, lambda c: c.best),
            (mean_ids, lambda c: c.headline.mean if c.headline else None),
        ):
            scored = [(value(cells[i]), i) for i in ids if value(cells[i]) is not None]
            if scored:
                top = max(v for v, _ in scored)
                chosen.update(i for v, i in scored if math.isclose(v, top, abs_tol=1e-12))
    return best_ids, mean_ids


HEADER = (
    "task", "chance", "encoding", "seeds", "best", "mean ± sem", "lr", "in-dist", "failed"
)  # fmt: skip


def columns(group: Group, extras: Sequence[Column] = ()) -> list[str]:
    """The table header; the ``failed`` column (runs excluded from the numbers: failed,
    diverged) only when there are any; then the headers of ``extras``."""
    failed = any(cell.n_failed for cell in group.cells)
    return list(HEADER if failed else HEADER[:-1]) + [c.header for c in extras]


def footer(group: Group) -> str:
    """The line under a table naming the runs its numbers exclude; ``""`` when none."""
    text = excluded_text(group.excluded)
    return text and f"excluded from best and mean ± sem (column 'failed'): {text}"


def table_rows(
    group: Group,
    bold: tuple[str, str],
    quote: Callable[[str], str] = str,
    extras: Sequence[Column] = (),
) -> list[list[str]]:
    """Cells as strings; the best per task wrapped in ``bold`` (e.g. ``("**", "**")``);
    encoding labels and extra columns passed through ``quote`` (rich's ``escape``:
    ``[lookup=…]`` is text)."""
    best_ids, mean_ids = winners(group.cells)
    width = len(columns(group))
    out, previous = [], None
    for i, cell in enumerate(group.cells):
        first = cell.task != previous
        previous = cell.task
        head = cell.headline
        best, mean = pct(cell.best), mean_sem(cell)
        if i in best_ids:
            best = f"{bold[0]}{best}{bold[1]}"
        if i in mean_ids:
            mean = f"{bold[0]}{mean}{bold[1]}"
        out.append(
            [
                cell.task if first else "",
                pct(cell.chance) if first else "",
                quote(cell.encoding),
                str(head.n if head else 0),
                best,
                mean,
                f"{head.lr:g}" if head else "–",
                pct(cell.in_distribution),
                str(cell.n_failed) if cell.n_failed else "",
            ][:width]
            + [quote(c.text.get((group.protocol, cell.task, cell.encoding), "")) for c in extras]
        )
    return out


def render_markdown(groups: Sequence[Group], extras: Sequence[Column] = ()) -> str:
    """One GitHub table per protocol; scores are accuracy % (chance shown per task)."""
    parts = []
    for group in groups:
        header = columns(group, extras)
        lines = [
            f"Protocol: {group.protocol}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---", "--:", ":--"] + ["--:"] * (len(header) - 3)) + "|",
        ]
        body = table_rows(group, ("**", "**"), extras=extras)
        lines += ["| " + " | ".join(r) + " |" for r in body]
        if footer(group):  # after a blank line, or GitHub reads it as one more row
            lines += ["", footer(group)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render_tables(groups: Sequence[Group], extras: Sequence[Column] = ()) -> list[tuple[str, Any]]:
    """(protocol, rich Table) per protocol, best per task in bold; print each one's
    :func:`footer` under it."""
    from rich.markup import escape
    from rich.table import Table

    tables = []
    for group in groups:
        table = Table(box=None, pad_edge=False)
        header = columns(group, extras)
        for name in header:
            table.add_column(name, justify="left" if name in ("task", "encoding") else "right")
        for i, row in enumerate(table_rows(group, ("[bold green]", "[/]"), escape, extras)):
            if row[0] and i > 0:
                table.add_section()
            table.add_row(*row)
        tables.append((f"protocol: {group.protocol}", table))
    return tables


def records(groups: Sequence[Group], extras: Sequence[Column] = ()) -> list[dict[str, Any]]:
    return [
        cell.record(g.protocol)
        | {c.field: c.value.get((g.protocol, cell.task, cell.encoding)) for c in extras}
        for g in groups
        for cell in g.cells
    ]


def render_csv(groups: Sequence[Group], extras: Sequence[Column] = ()) -> str:
    buffer = io.StringIO()
    fields = ["protocol", "task", "chance", "encoding", "n_seeds", "n_runs", "n_failed",
              "best", "mean", "sem", "lr", "in_distribution"]  # fmt: skip
    fields += [c.field for c in extras]
    writer = csv.DictWriter(buffer, fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records(groups, extras))
    return buffer.getvalue()


def render_json(groups: Sequence[Group], extras: Sequence[Column] = ()) -> str:
    return json.dumps(records(groups, extras), indent=2) + "\n"


# -- README ------------------------------------------------------------------------------
README_HEADER = """# Leaderboards

Generated by `che-bench report --readme leaderboards/`; do not edit by hand.
Scores are accuracy % averaged over the test lengths. **best**: max over seeds × learning
rates (the papers' convention); **mean ± sem**: over seeds at the learning rate with the
highest mean (sem with ddof=1). The best value per task is in bold. **in-dist**: mean
accuracy at the training lengths over the same seeds (low: the model did not learn the
task; high with a low score: it learned but did not generalize; – for rows written before
it was measured).
"""


def leaderboard_files(directory: Path) -> list[Path]:
    """The committed leaderboards of ``directory``: every ``*.jsonl`` but ``local.jsonl``."""
    return sorted(p for p in directory.glob("*.jsonl") if p.name != "local.jsonl")


def readme(directory: Path) -> str:
    """The README text for every leaderboard of ``directory`` (:func:`leaderboard_files`)."""
    files = leaderboard_files(directory)
    if not files:
        raise ConfigError(f"no leaderboards (*.jsonl) in {directory}")
    parts = [README_HEADER]
    for path in files:
        rows = read_rows(path).rows
        ok = sum(r.status == "ok" for r in rows)
        parts.append(f"## {path.name}\n\n{len(rows)} rows ({ok} ok).\n")
        if rows:
            parts.append(render_markdown(aggregate(rows)))
    return "\n".join(parts)
