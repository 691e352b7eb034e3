"""Statistics of a leaderboard: per (task, encoding) cells, the numbers every reader shows.

Aggregation as the CHE papers report it (Ruoss et al., ACL 2023, §4: the best and the mean
over seeds), over the *usable* rows of one cell (status
``ok`` with a score, :func:`usable`); every other row (``failed``, ``diverged``) is excluded
from every aggregate and counted, per status, in :attr:`Cell.excluded`:

- **best**: the maximum score over all seeds × learning rates (the papers' convention);
- **mean ± sem** over seeds, per learning rate, with sem = std(ddof=1) / √n; the headline
  learning rate is the one with the highest mean (optimistic, like the max);
- **n_seeds**: the seeds behind the headline mean.

Rows are first split by *protocol* (everything in the config except task, encoding, seed
and lr: preset, steps, lengths, ...), so runs of different budgets are never pooled. When
one encoding appears with several option sets, its label names the options that differ
(``dapev2-kerple[kernel=5]``). ``report``, ``plot`` and ``check`` all draw on this module.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from che_bench.results.record import RunRecord
from che_bench.util import HASHED_IF_CHANGED

#: Config fields that vary inside one table, or say nothing of the numbers (everything else
#: defines the protocol).
CELL_FIELDS = {
    "task",
    "encoding",
    "encoding_options",
    "task_params",
    "seed",
    "lr",
    "log_every",
    "checkpoint_every",
    "keep_model",
}


def usable(row: RunRecord) -> bool:
    """Whether ``row`` enters the aggregates: status ``ok`` and a score."""
    return row.status == "ok" and row.score is not None


def exclusion(row: RunRecord) -> str:
    """Why a row that is not :func:`usable` is excluded: its status, or ``ok without a
    score``."""
    return row.status if row.status != "ok" else "ok without a score"


def excluded_text(counts: Mapping[str, int], what: str = "run") -> str:
    """``"3 runs (2 failed, 1 diverged)"`` for excluded ``counts`` per reason; ``""`` for
    none."""
    total = sum(counts.values())
    if not total:
        return ""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    parts = ", ".join(f"{n} {why}" for why, n in ranked)
    return f"{total} {what}{'s' if total > 1 else ''} ({parts})"


def standard_error(values: Sequence[float]) -> float | None:
    """Standard error of the mean with ddof=1 (one pass for the mean, one for the
    variance); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    var = sum((s - mean) ** 2 for s in values) / (n - 1)
    return math.sqrt(var) / math.sqrt(n)


@dataclass
class LrStats:
    """Scores of one cell at one learning rate (one per seed), and the rows behind them."""

    lr: float
    scores: list[float]
    rows: list[RunRecord] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores)

    @property
    def sem(self) -> float | None:
        """Standard error of the mean with ddof=1; None for a single seed."""
        return standard_error(self.scores)


@dataclass
class Cell:
    """One (task, encoding) cell of one protocol."""

    task: str
    encoding: str
    chance: float
    per_lr: list[LrStats] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)  # why -> rows not in any number
    rows: list[RunRecord] = field(default_factory=list)  # every row, excluded ones too

    @property
    def n_failed(self) -> int:
        """Runs excluded from the aggregates (failed, diverged, or ok without a score)."""
        return sum(self.excluded.values())

    @property
    def headline(self) -> LrStats | None:
        return max(self.per_lr, key=lambda s: s.mean, default=None)

    @property
    def best(self) -> float | None:
        return max((max(s.scores) for s in self.per_lr), default=None)

    @property
    def in_distribution(self) -> float | None:
        """Mean accuracy at the training lengths over the headline rows that have one: low
        means the model did not learn the task, high with a low score that it did not
        generalize. None when no row has it (rows written before it was measured)."""
        head = self.headline
        seen = [r.train_score for r in (head.rows if head else ()) if r.train_score is not None]
        return sum(seen) / len(seen) if seen else None

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
            "in_distribution": self.in_distribution,
            "per_lr": [{"lr": s.lr, "n": s.n, "mean": s.mean, "sem": s.sem} for s in self.per_lr],
        }


@dataclass
class Group:
    """The cells of one protocol, sorted by task then encoding."""

    protocol: str
    cells: list[Cell]

    @property
    def excluded(self) -> Counter[str]:
        return excluded_of(self.cells)


def excluded_of(cells: Iterable[Cell]) -> Counter[str]:
    """The runs excluded from ``cells``' numbers, per reason."""
    return sum((c.excluded for c in cells), Counter())


def latest_per_run(rows: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per run_key: its last ``ok`` one, else its last one (a re-run supersedes)."""
    chosen: dict[str, RunRecord] = {}
    for row in rows:
        old = chosen.get(row.run_key)
        if old is None or row.status == "ok" or old.status != "ok":
            chosen[row.run_key] = row
    return list(chosen.values())


def protocol_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` less the cell fields and the later-added fields at their defaults, so a
    row written before a field existed shares the protocol of one written after."""
    return {
        k: v
        for k, v in config.items()
        if k not in CELL_FIELDS and HASHED_IF_CHANGED.get(k, object()) != v
    }


def protocol_of(row: RunRecord) -> str:
    """A readable description of everything but task/encoding/seed/lr, plus a short hash.
    Strided test lengths and reduced sample counts are named, so such rows are never read
    as the full protocol (they are in another group: the hash differs)."""
    config = row.config
    rest = protocol_config(config)
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()
    train, test = config.get("train_lengths", row.train_lengths), row.test_lengths
    parts = [
        f"preset {row.preset}",
        f"{config.get('steps', row.steps)} steps",
        f"batch {config.get('batch_size', '?')}",
        f"train {train[0]}-{train[1]}",
        f"test {test[0]}-{test[1]}",
        f"{config.get('eval_samples', '?')} samples/length",
    ]
    stride = config.get("test_stride", 1)
    if stride != 1:
        parts[4] += f" every {stride}th length (strided)"
    if config.get("causal"):
        parts.append("causal")
    return ", ".join(parts) + f" [{digest[:8]}]"


class _Protocols:
    """:func:`protocol_of`, computed once per distinct (config less the cell fields, and
    the row fields it reads): the seeds of one configuration share it."""

    def __init__(self) -> None:
        self._seen: dict[str, list[tuple[tuple[Any, ...], str]]] = defaultdict(list)

    def __call__(self, row: RunRecord) -> str:
        rest = protocol_config(row.config)
        key = (rest, row.preset, row.steps, row.train_lengths, row.test_lengths)
        known = self._seen[row.config_hash]
        for seen, protocol in known:
            if seen == key:
                return protocol
        protocol = protocol_of(row)
        known.append((key, protocol))
        return protocol


def option_key(row: RunRecord) -> tuple[str, str]:
    """(encoding, options json): what :func:`option_labels` maps to a label."""
    options = row.encoding_options
    return row.encoding, json.dumps(options, sort_keys=True) if options else "{}"


def option_labels(rows: Iterable[RunRecord]) -> dict[tuple[str, str], str]:
    """(encoding, options json) → label; options are named only where an encoding varies."""
    variants: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        encoding, key = option_key(row)
        variants[encoding][key] = row.encoding_options
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


def aggregate(rows: Iterable[RunRecord]) -> list[Group]:
    """Split records by protocol, then into (task, encoding) cells with their statistics;
    rows that are not :func:`usable` are only counted."""
    rows = latest_per_run(rows)
    labels = option_labels(rows)
    protocol = _Protocols()
    groups: dict[str, dict[tuple[str, str], Cell]] = defaultdict(dict)
    for row in rows:
        label = labels[option_key(row)]
        cells = groups[protocol(row)]
        cell = cells.get((row.task, label))
        if cell is None:
            cell = cells[(row.task, label)] = Cell(row.task, label, row.chance)
        cell.rows.append(row)
        if not usable(row):
            cell.excluded[exclusion(row)] += 1
            continue
        stats = next((s for s in cell.per_lr if s.lr == row.lr), None)
        if stats is None:
            stats = LrStats(row.lr, [])
            cell.per_lr.append(stats)
        stats.scores.append(row.score)
        stats.rows.append(row)
    return [
        Group(protocol, [cells[k] for k in sorted(cells)])
        for protocol, cells in sorted(groups.items())
    ]
