"""Reports: per (task, encoding) statistics, tables in four formats, the leaderboard README.

Aggregation (spec ``model-and-protocol.md`` §4), over the ``ok`` rows of one cell:

- **best**: the maximum score over all seeds × learning rates (the papers' convention);
- **mean ± sem** over seeds, per learning rate, with sem = std(ddof=1) / √n; the headline
  learning rate is the one with the highest mean (optimistic, like the max);
- **n_seeds**: the seeds behind the headline mean; failed/diverged runs are counted apart.

Rows are first split by *protocol* (everything in the config except task, encoding, seed
and lr: preset, steps, lengths, ...), so runs of different budgets are never pooled; each
protocol gets its own table. When one encoding appears with several option sets, its label
names the options that differ (``dapev2-kerple[kernel=5]``). Plots are in :mod:`.plots`.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError
from che_bench.leaderboard import read_rows

#: Config fields that vary inside one table (everything else defines the protocol).
CELL_FIELDS = {
    "task",
    "encoding",
    "encoding_options",
    "task_params",
    "seed",
    "lr",
    "log_every",
    "checkpoint_every",
}
FORMATS = ("table", "markdown", "csv", "json")


@dataclass
class LrStats:
    """Scores of one cell at one learning rate (one per seed)."""

    lr: float
    scores: list[float]

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores)

    @property
    def sem(self) -> float | None:
        """Standard error of the mean with ddof=1; None for a single seed."""
        n = len(self.scores)
        if n < 2:
            return None
        var = sum((s - self.mean) ** 2 for s in self.scores) / (n - 1)
        return math.sqrt(var) / math.sqrt(n)


@dataclass
class Cell:
    """One (task, encoding) cell of one protocol."""

    task: str
    encoding: str
    chance: float
    per_lr: list[LrStats] = field(default_factory=list)
    n_failed: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headline(self) -> LrStats | None:
        return max(self.per_lr, key=lambda s: s.mean, default=None)

    @property
    def best(self) -> float | None:
        return max((max(s.scores) for s in self.per_lr), default=None)

    def record(self, protocol: str) -> dict[str, Any]:
        head = self.headline
        return {
            "protocol": protocol,
            "task": self.task,
            "encoding": self.encoding,
            "chance": self.chance,
            "n_seeds": head.n if head else 0,
            "n_runs": sum(s.n for s in self.per_lr),
            "n_failed": self.n_failed,
            "best": self.best,
            "mean": head.mean if head else None,
            "sem": head.sem if head else None,
            "lr": head.lr if head else None,
            "per_lr": [{"lr": s.lr, "n": s.n, "mean": s.mean, "sem": s.sem} for s in self.per_lr],
        }


@dataclass
class Group:
    """The cells of one protocol, sorted by task then encoding."""

    protocol: str
    cells: list[Cell]


def load_rows(
    path: Path, tasks: Sequence[str] = (), encodings: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Rows of a leaderboard (corrupt lines skipped with a warning), filtered by globs."""
    if not path.is_file():
        raise ConfigError(f"no leaderboard at {path}; run a sweep first or pass a file")
    return select(read_rows(path).rows, tasks, encodings)


def select(
    rows: Iterable[dict[str, Any]], tasks: Sequence[str] = (), encodings: Sequence[str] = ()
) -> list[dict[str, Any]]:
    def hit(name: str, patterns: Sequence[str]) -> bool:
        return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    return [r for r in rows if hit(r["task"], tasks) and hit(r["encoding"], encodings)]


def latest_per_run(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run_key: its last ``ok`` row, else its last row (a re-run supersedes)."""
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        old = chosen.get(row["run_key"])
        if old is None or row["status"] == "ok" or old["status"] != "ok":
            chosen[row["run_key"]] = row
    return list(chosen.values())


def protocol_of(row: dict[str, Any]) -> str:
    """A readable description of everything but task/encoding/seed/lr, plus a short hash."""
    config = row.get("config") or {}
    rest = {k: v for k, v in config.items() if k not in CELL_FIELDS}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()
    train, test = config.get("train_lengths", row["train_lengths"]), row["test_lengths"]
    parts = [
        f"preset {row['preset']}",
        f"{config.get('steps', row['steps'])} steps",
        f"batch {config.get('batch_size', '?')}",
        f"train {train[0]}-{train[1]}",
        f"test {test[0]}-{test[1]}",
        f"{config.get('eval_samples', '?')} samples/length",
    ]
    if config.get("causal"):
        parts.append("causal")
    return ", ".join(parts) + f" [{digest[:8]}]"


def option_labels(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(encoding, options json) → label; options are named only where an encoding varies."""
    variants: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        options = row.get("encoding_options") or {}
        variants[row["encoding"]][json.dumps(options, sort_keys=True)] = options
    labels = {}
    for encoding, by_key in variants.items():
        varying = {
            k
            for o in by_key.values()
            for k in o
            if len({json.dumps(p.get(k)) for p in by_key.values()}) > 1
        }
        for key, options in by_key.items():
            named = ",".join(f"{k}={options[k]}" for k in sorted(varying) if k in options)
            labels[(encoding, key)] = f"{encoding}[{named}]" if named else encoding
    return labels


def aggregate(rows: Iterable[dict[str, Any]]) -> list[Group]:
    """Split rows by protocol, then into (task, encoding) cells with their statistics."""
    rows = latest_per_run(rows)
    labels = option_labels(rows)
    groups: dict[str, dict[tuple[str, str], Cell]] = defaultdict(dict)
    for row in rows:
        label = labels[
            (row["encoding"], json.dumps(row.get("encoding_options") or {}, sort_keys=True))
        ]
        cells = groups[protocol_of(row)]
        cell = cells.setdefault((row["task"], label), Cell(row["task"], label, row["chance"]))
        cell.rows.append(row)
        if row["status"] != "ok" or row.get("score") is None:
            cell.n_failed += 1
            continue
        stats = next((s for s in cell.per_lr if s.lr == row["lr"]), None)
        if stats is None:
            stats = LrStats(row["lr"], [])
            cell.per_lr.append(stats)
        stats.scores.append(row["score"])
    return [
        Group(protocol, [cells[k] for k in sorted(cells)])
        for protocol, cells in sorted(groups.items())
    ]


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


HEADER = ("task", "chance", "encoding", "seeds", "best", "mean ± sem", "lr", "failed")


def columns(group: Group) -> list[str]:
    """The table header; the ``failed`` column only when some run failed."""
    failed = any(cell.n_failed for cell in group.cells)
    return list(HEADER if failed else HEADER[:-1])


def table_rows(group: Group, bold: tuple[str, str]) -> list[list[str]]:
    """Cells as strings; the best per task wrapped in ``bold`` (e.g. ``("**", "**")``)."""
    best_ids, mean_ids = winners(group.cells)
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
                cell.encoding,
                str(head.n if head else 0),
                best,
                mean,
                f"{head.lr:g}" if head else "–",
                str(cell.n_failed) if cell.n_failed else "",
            ][: len(columns(group))]
        )
    return out


def render_markdown(groups: Sequence[Group]) -> str:
    """One GitHub table per protocol; scores are accuracy % (chance shown per task)."""
    parts = []
    for group in groups:
        lines = [
            f"Protocol: {group.protocol}",
            "",
            "| " + " | ".join(columns(group)) + " |",
            "|" + "|".join(["---", "--:", ":--"] + ["--:"] * (len(columns(group)) - 3)) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in table_rows(group, ("**", "**"))]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render_tables(groups: Sequence[Group]) -> list[tuple[str, Any]]:
    """(protocol, rich Table) per protocol, best per task in bold."""
    from rich.table import Table

    tables = []
    for group in groups:
        table = Table(box=None, pad_edge=False)
        header = columns(group)
        for name in header:
            table.add_column(name, justify="left" if name in ("task", "encoding") else "right")
        for i, row in enumerate(table_rows(group, ("[bold green]", "[/]"))):
            if row[0] and i > 0:
                table.add_section()
            table.add_row(*row)
        tables.append((f"protocol: {group.protocol}", table))
    return tables


def records(groups: Sequence[Group]) -> list[dict[str, Any]]:
    return [cell.record(g.protocol) for g in groups for cell in g.cells]


def render_csv(groups: Sequence[Group]) -> str:
    buffer = io.StringIO()
    fields = [
        "protocol",
        "task",
        "chance",
        "encoding",
        "n_seeds",
        "n_runs",
        "n_failed",
        "best",
        "mean",
        "sem",
        "lr",
    ]
    writer = csv.DictWriter(buffer, fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records(groups))
    return buffer.getvalue()


def render_json(groups: Sequence[Group]) -> str:
    return json.dumps(records(groups), indent=2) + "\n"


# -- README ------------------------------------------------------------------------------
README_HEADER = """# Leaderboards

Generated by `che-bench report --readme leaderboards/`; do not edit by hand.
Scores are accuracy % averaged over the test lengths. **best**: max over seeds × learning
rates (the papers' convention); **mean ± sem**: over seeds at the learning rate with the
highest mean (sem with ddof=1). The best value per task is in bold.
"""


def readme(directory: Path) -> str:
    """The README text for every ``*.jsonl`` in ``directory`` (``local.jsonl`` excluded)."""
    files = sorted(p for p in directory.glob("*.jsonl") if p.name != "local.jsonl")
    if not files:
        raise ConfigError(f"no leaderboards (*.jsonl) in {directory}")
    parts = [README_HEADER]
    for path in files:
        rows = read_rows(path).rows
        ok = sum(r["status"] == "ok" for r in rows)
        parts.append(f"## {path.name}\n\n{len(rows)} rows ({ok} ok).\n")
        if rows:
            parts.append(render_markdown(aggregate(rows)))
    return "\n".join(parts)
