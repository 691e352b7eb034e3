"""Is encoding A better than encoding B on a task? Two-sample tests over seeds.

For one protocol group (:mod:`.stats`) and one task, each encoding is taken at its own
headline learning rate, the rule of ``report``: the lr with the highest mean over seeds.
Its scores over seeds are one sample, and the two samples are compared with

- Welch's t-test (Welch 1947), which does not assume equal variances; the verdict reads
  its p-value at level α (``p < α``);
- the two-sided Mann–Whitney U test (Mann & Whitney 1947), which does not assume
  normality (scipy's ``method="auto"``: exact for small samples without ties, the normal
  approximation with a tie correction otherwise; at 3 vs 3 seeds its p is never below 0.1);
- a percentile-bootstrap confidence interval (Efron 1979) of mean(A) − mean(B), each side
  resampled independently, from a seeded ``numpy.random.Generator``: the output is
  deterministic.

Edge cases: fewer than 2 seeds on a side gives no test, no interval and the verdict "not
distinguishable: need ≥ 2 seeds"; two constant samples with the same value give p = 1 for
both tests; two constant samples with different values leave Welch's t undefined (zero
standard error), so the verdict reads Mann–Whitney instead. Choosing each side's best lr
is optimistic, as in ``report``, and no test corrects for that choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.record import RunRecord
from che_bench.results.report import select
from che_bench.results.stats import Cell, Group, aggregate, standard_error
from che_bench.util import matches

RESAMPLES = 10_000
LEVEL = 0.95
LR_RULE = (
    "each encoding at its own headline lr, the one with the highest mean over seeds (as in "
    "`report`); the tests do not correct for that choice"
)


@dataclass(frozen=True)
class Comparison:
    """Encoding ``a`` against ``b`` on one task under one protocol; scores are fractions."""

    task: str
    protocol: str
    a: str
    b: str
    lr_a: float | None
    lr_b: float | None
    scores_a: tuple[float, ...]
    scores_b: tuple[float, ...]
    mean_a: float
    mean_b: float
    sem_a: float | None
    sem_b: float | None
    difference: float  # mean_a - mean_b
    ci_low: float | None
    ci_high: float | None
    welch_p: float | None
    mann_whitney_p: float | None
    alpha: float
    significant: bool
    verdict: str
    note: str = ""

    @property
    def n_a(self) -> int:
        return len(self.scores_a)

    @property
    def n_b(self) -> int:
        return len(self.scores_b)

    @property
    def beats(self) -> bool:
        """``a`` > ``b`` at level α."""
        return self.significant and self.difference > 0

    def record(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "n_a": self.n_a, "n_b": self.n_b}


def scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:
        raise CheBenchError("comparing needs scipy: pip install 'che-bench[stats]'") from None
    return stats


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap (Efron 1979) interval of mean(x) − mean(y), each sample
    resampled with replacement independently of the other."""
    mx = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    my = y[rng.integers(0, len(y), (resamples, len(y)))].mean(axis=1)
    low, high = np.quantile(mx - my, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def compare_scores(
    scores_a: Sequence[float], scores_b: Sequence[float], *, a: str = "A", b: str = "B",
    task: str = "", protocol: str = "", lr_a: float | None = None, lr_b: float | None = None,
    alpha: float = 0.05, seed: int = 0, resamples: int = RESAMPLES,
) -> Comparison:  # fmt: skip
    """The tests of the module docstring on two samples of scores (one per seed)."""
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    if not scores_a or not scores_b:
        raise ValueError("each side needs at least one score")
    x, y = np.sort(np.asarray(scores_a, float)), np.sort(np.asarray(scores_b, float))
    fields: dict[str, Any] = {
        "task": task, "protocol": protocol, "a": a, "b": b, "lr_a": lr_a, "lr_b": lr_b,
        "scores_a": tuple(x.tolist()), "scores_b": tuple(y.tolist()),
        "mean_a": float(x.mean()), "mean_b": float(y.mean()),
        "sem_a": standard_error(x.tolist()), "sem_b": standard_error(y.tolist()),
        "difference": float(x.mean() - y.mean()), "alpha": alpha,
    }  # fmt: skip
    if min(len(x), len(y)) < 2:
        return Comparison(
            **fields, ci_low=None, ci_high=None, welch_p=None, mann_whitney_p=None,
            significant=False,
            verdict="not distinguishable: need ≥ 2 seeds per encoding "
            f"(have {len(x)} vs {len(y)})",
        )  # fmt: skip
    stats = scipy_stats()
    low, high = bootstrap_ci(x, y, np.random.default_rng(seed), resamples)
    constant = np.ptp(x) == 0 and np.ptp(y) == 0
    note = ""
    if constant and x[0] == y[0]:
        welch = mann_whitney = 1.0
        note = "identical constant samples: p = 1"
    else:
        mann_whitney = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
        welch = None if constant else float(stats.ttest_ind(x, y, equal_var=False).pvalue)
        if constant:
            note = "Welch's t is undefined (both samples constant); the verdict reads Mann–Whitney"
    p, test = (welch, "Welch") if welch is not None else (mann_whitney, "Mann–Whitney")
    significant = p < alpha and fields["difference"] != 0
    why = f"{test} p = {p:.2g}, {len(x)} vs {len(y)} seeds"
    if significant:
        verdict = f"{a} {'>' if fields['difference'] > 0 else '<'} {b} ({why})"
    else:
        verdict = f"not distinguishable ({why})"
    return Comparison(
        **fields, ci_low=low, ci_high=high, welch_p=welch, mann_whitney_p=mann_whitney,
        significant=significant, verdict=verdict, note=note,
    )  # fmt: skip


def compare_cells(
    protocol: str, a: Cell, b: Cell, *, alpha: float = 0.05, seed: int = 0
) -> Comparison:
    """Cell ``a`` against cell ``b`` (same task and protocol), each at its headline lr."""
    head_a, head_b = a.headline, b.headline
    if head_a is None or head_b is None:
        raise ValueError(f"{a.task}: {a.encoding} or {b.encoding} has no ok runs")
    return compare_scores(
        head_a.scores, head_b.scores, a=a.encoding, b=b.encoding, task=a.task,
        protocol=protocol, lr_a=head_a.lr, lr_b=head_b.lr, alpha=alpha, seed=seed,
    )  # fmt: skip


def ok_cells(groups: Sequence[Group]) -> list[tuple[str, dict[tuple[str, str], Cell]]]:
    """Per protocol: (task, encoding) → the cells with ok runs."""
    return [(g.protocol, {(c.task, c.encoding): c for c in g.cells if c.headline}) for g in groups]


def require(groups: Sequence[Group], names: Iterable[str], tasks: Sequence[str]) -> None:
    """Fail naming the first of ``names`` without ok runs, and the encodings that have some."""
    have = sorted({encoding for _, cells in ok_cells(groups) for _, encoding in cells})
    where = f"task {', '.join(tasks)}" if tasks else "any task"
    for name in names:
        if name not in have:
            raise ConfigError(
                f"no ok runs of {name!r} for {where}; encodings with ok runs there: "
                f"{', '.join(have) or 'none'}"
            )


def compare(
    rows: Iterable[RunRecord], task_patterns: Sequence[str], a: str, b: str,
    alpha: float = 0.05, seed: int = 0,
) -> list[Comparison]:  # fmt: skip
    """``a`` against ``b`` on every task (matching the globs) × protocol where both have
    ok runs; encodings are named by their ``report`` labels."""
    if a == b:
        raise ConfigError(f"compare two different encodings, not {a!r} with itself")
    groups = aggregate(select(rows, task_patterns))
    require(groups, (a, b), task_patterns)
    out = [
        compare_cells(protocol, cells[task, a], cells[task, b], alpha=alpha, seed=seed)
        for protocol, cells in ok_cells(groups)
        for task in sorted({task for task, _ in cells})
        if (task, a) in cells and (task, b) in cells
    ]
    if not out:
        raise ConfigError(f"{a} and {b} never have ok runs on the same task and protocol")
    return sorted(out, key=lambda c: (c.task, c.protocol))


def compare_all(
    rows: Iterable[RunRecord], task_patterns: Sequence[str], baseline: str,
    encodings: Sequence[str] = (), alpha: float = 0.05, seed: int = 0,
) -> list[Comparison]:  # fmt: skip
    """Every other encoding (matching the ``encodings`` globs, if any) against ``baseline``
    on each task × protocol where both have ok runs; ``a`` is the other, ``b`` the baseline."""
    groups = aggregate(select(rows, task_patterns))
    require(groups, (baseline,), task_patterns)
    out = [
        compare_cells(protocol, cell, cells[task, baseline], alpha=alpha, seed=seed)
        for protocol, cells in ok_cells(groups)
        for (task, encoding), cell in sorted(cells.items())
        if encoding != baseline and (task, baseline) in cells and matches(encoding, encodings)
    ]
    if not out:
        raise ConfigError(f"no other encoding shares a task and protocol with {baseline}")
    return sorted(out, key=lambda c: (c.protocol, c.task, c.a))
