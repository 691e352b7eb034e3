"""Columns a report can add to its table: a two-encoding comparison (``report --compare``)
and the scores of evaluation rows (``report --evaluations``, from ``che-bench evaluate``).

A :class:`Column` holds, per (protocol, task, encoding) cell, the text a table shows and the
value CSV/JSON carry; a cell it says nothing of shows "" (table) or null.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from che_bench.results.record import RunRecord
from che_bench.results.stats import Group
from che_bench.util import fmt_range

CellKey = tuple[str, str, str]  # (protocol, task, encoding label)


@dataclass
class Column:
    """One extra column: its header, its JSON/CSV field name and its values per cell."""

    header: str
    field: str
    text: dict[CellKey, str] = field(default_factory=dict)
    value: dict[CellKey, Any] = field(default_factory=dict)


def comparison_columns(
    rows: Iterable[RunRecord], tasks: Sequence[str], a: str, b: str, alpha: float = 0.05
) -> list[Column]:
    """``compare``'s result for ``a`` against ``b`` on each task, in the columns of ``a``'s
    row: the difference in points with its bootstrap 95% CI, Welch's p and the verdict."""
    from che_bench.results.compare import compare

    diff = Column(f"{a} − {b}", "compare_difference")
    ci = Column("95% CI", "compare_ci")
    p = Column("p (Welch)", "compare_welch_p")
    verdict = Column("verdict", "compare_verdict")
    for c in compare(rows, tasks, a, b, alpha=alpha):
        key = (c.protocol, c.task, a)
        diff.text[key], diff.value[key] = f"{100 * c.difference:+.1f}", c.difference
        if c.ci_low is not None and c.ci_high is not None:
            ci.text[key] = f"[{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}]"
            ci.value[key] = [c.ci_low, c.ci_high]
        if c.welch_p is not None:
            p.text[key], p.value[key] = f"{c.welch_p:.2g}", c.welch_p
        short = "n.s." if not c.significant else (">" if c.difference > 0 else "<") + f" {b}"
        verdict.text[key], verdict.value[key] = short, c.verdict
    return [diff, ci, p, verdict]


def evaluation_columns(groups: Sequence[Group], evaluations: Iterable[RunRecord]) -> list[Column]:
    """One column per evaluated length range: per cell, the mean score of the evaluation
    rows of its headline runs (the latest per run and range), with their count when fewer
    runs than the cell's seeds were evaluated."""
    by_range: dict[str, dict[str, RunRecord]] = defaultdict(dict)
    for row in latest_evaluations(evaluations):
        by_range[range_label(row)][row.run_key] = row
    columns = []
    for label in sorted(by_range, key=lambda s: [int(x) for x in s.split()[0].split("-")]):
        found = by_range[label]
        column = Column(f"eval {label}", f"evaluation {label}")
        for group in groups:
            for cell in group.cells:
                head = cell.headline
                scores = [
                    found[r.run_key].score
                    for r in (head.rows if head else ())
                    if r.run_key in found and found[r.run_key].score is not None
                ]
                if not scores:
                    continue
                key = (group.protocol, cell.task, cell.encoding)
                mean = sum(scores) / len(scores)
                partial = f" ({len(scores)}/{head.n})" if head and len(scores) < head.n else ""
                column.text[key], column.value[key] = f"{100 * mean:.1f}{partial}", mean
        columns.append(column)
    return columns


def latest_evaluations(rows: Iterable[RunRecord]) -> list[RunRecord]:
    """The latest ``ok`` evaluation row per run_key and evaluated range."""
    latest: dict[tuple[str, str], RunRecord] = {}
    for row in rows:
        if row.kind == "evaluation" and row.status == "ok":
            latest[(row.run_key, range_label(row))] = row
    return list(latest.values())


def range_label(row: RunRecord) -> str:
    """``501-1000`` or ``501-1000 every 50`` (with its sample count when not the run's)."""
    spec = row.evaluation or {}
    stride = spec.get("stride", 1)
    text = fmt_range(row.test_lengths) + (f" every {stride}" if stride > 1 else "")
    samples = spec.get("samples")
    return text + (f" ×{samples}" if samples and samples != row.config.get("eval_samples") else "")
