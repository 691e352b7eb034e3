"""Regression check: re-run the grid a baseline leaderboard describes and compare per slice.

The baseline's rows define the grid: each row's stored config is rebuilt and run again (or
looked up in another leaderboard). Per (task, encoding) slice:

- **regressed**: the mean score over its runs dropped by more than the tolerance band,
  ``max(abs_floor, k × sem)`` with sem the baseline's standard error over seeds (ddof=1);
- **improved**: it rose by more than the band (printed; a failure only with ``two_sided``);
- **drifted**: a run's final training loss moved by more than ``loss_rtol`` (relative).
  CPU runs with the same config and seed are deterministic, so a drift means the code now
  computes something else, even when a smoke-budget score happens to stay within the band;
- **failed** / **missing**: a run no longer finishes, or the leaderboard lacks it.

Any of these except *improved* makes the check fail. An intended change is recorded with
``che-bench check --update-baseline``. Baseline rows that are not ok (failed, diverged:
possible in a hand-made baseline, never in one ``--update-baseline`` writes) are in no mean
or band and are not re-run; each slice's line counts them, and a slice with no ok baseline
run is **skipped**. Current runs that are not ok are counted too (and fail their slice).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from che_bench.config import RunConfig
from che_bench.errors import ConfigError
from che_bench.results.leaderboard import append_rows, read_rows
from che_bench.results.record import RunRecord
from che_bench.results.stats import (
    excluded_text,
    exclusion,
    latest_per_run,
    option_key,
    option_labels,
    standard_error,
    usable,
)

DEFAULT_BASELINE = Path("leaderboards/baseline-smoke.jsonl")
DEFAULT_GRID = Path("sweeps/baseline-smoke.yaml")
FAILING = ("regressed", "drifted", "failed", "missing")


@dataclass
class Slice:
    """The comparison of one (task, encoding) slice."""

    task: str
    encoding: str
    baseline: list[float] = field(default_factory=list)
    current: list[float] = field(default_factory=list)
    band: float = 0.0
    status: str = "same"
    notes: list[str] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)  # baseline rows not ok, by why
    excluded_now: Counter[str] = field(default_factory=Counter)  # current runs not ok

    @property
    def name(self) -> str:
        return f"{self.task} × {self.encoding}"

    @property
    def delta(self) -> float | None:
        if not self.current or len(self.current) != len(self.baseline):
            return None
        return (sum(self.current) - sum(self.baseline)) / len(self.baseline)

    @property
    def counts(self) -> list[str]:
        """How many rows on each side are in none of the slice's numbers."""
        return [
            f"excluded: {text}"
            for text in (
                excluded_text(self.excluded, "baseline run"),
                excluded_text(self.excluded_now, "current run"),
            )
            if text
        ]

    def line(self) -> str:
        if not self.baseline:
            return f"{self.status:<9} {self.name}: no ok baseline run; " + "; ".join(self.counts)
        before = sum(self.baseline) / len(self.baseline)
        text = f"{self.status:<9} {self.name}: {100 * before:.1f}"
        if self.delta is not None:
            text += (
                f" → {100 * (before + self.delta):.1f} ({100 * self.delta:+.1f}, "
                f"band ±{100 * self.band:.1f})"
            )
        return text + "".join(f"; {note}" for note in self.counts + self.notes)


@dataclass
class CheckReport:
    slices: list[Slice]
    two_sided: bool = False

    def failing(self) -> list[Slice]:
        bad = [s for s in self.slices if s.status in FAILING or any("drift" in n for n in s.notes)]
        if self.two_sided:
            bad += [s for s in self.slices if s.status == "improved" and s not in bad]
        return bad

    @property
    def ok(self) -> bool:
        return not self.failing()

    def summary(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for s in self.slices:
            counts[s.status] += 1
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        failing = self.failing()
        if not failing:
            return f"check passed: {len(self.slices)} slices ({parts})"
        names = ", ".join(s.name for s in failing)
        return f"check FAILED: {len(failing)} of {len(self.slices)} slices ({parts}): {names}"


def load_baseline(path: Path) -> list[RunRecord]:
    """The baseline's records, one per run, in file order (:func:`compare` leaves out and
    counts those that are not ok); at least one is ok."""
    if not path.is_file():
        raise ConfigError(
            f"no baseline at {path}; create it with `che-bench check --baseline {path} "
            f"--update-baseline --grid {DEFAULT_GRID}`"
        )
    rows = latest_per_run(read_rows(path).rows)
    if not any(map(usable, rows)):
        raise ConfigError(f"baseline {path} has no ok rows; regenerate it with --update-baseline")
    return rows


def rebuild(row: RunRecord) -> RunConfig:
    """The RunConfig a record was produced by (its stored config)."""
    try:
        return RunConfig.from_dict(row.config)
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"baseline row {row.run_key} has a config this che-bench cannot rebuild ({exc}); "
            "regenerate the baseline with --update-baseline"
        ) from None


def builtin_encodings(pattern: str = "*") -> list[str]:
    """Encodings that ship with che-bench (plugins are never part of a baseline)."""
    from che_bench.encodings import ENCODINGS

    return [n for n in ENCODINGS.list(pattern) if ENCODINGS.origin(n) == "che_bench"]


def grid_configs(path: Path) -> list[RunConfig]:
    """The grid of a sweep file, restricted to built-in encodings."""
    from che_bench.running.sweep import expand, load_sweep

    builtin = set(builtin_encodings())
    return [c for c in expand(load_sweep(path)) if c.encoding in builtin]


def uncovered(baseline: Iterable[RunRecord]) -> list[str]:
    """Built-in encodings no ok baseline run exercises."""
    seen = {r.encoding for r in baseline if usable(r)}
    return [name for name in builtin_encodings() if name not in seen]


def compare(
    baseline: Sequence[RunRecord],
    current: dict[str, RunRecord],
    *,
    abs_floor: float = 0.02,
    k: float = 3.0,
    loss_rtol: float = 0.01,
    two_sided: bool = False,
) -> CheckReport:
    """Compare baseline records with ``current`` ones keyed by the rebuilt configs' run_keys;
    baseline records that are not ok are only counted."""
    labels = option_labels(baseline)
    slices: dict[tuple[str, str], Slice] = {}
    pairs: dict[tuple[str, str], list[tuple[RunRecord, RunRecord | None]]] = defaultdict(list)
    for row in baseline:
        label = labels[option_key(row)]
        key = (row.task, label)
        slice_ = slices.setdefault(key, Slice(row.task, label))
        if usable(row):
            pairs[key].append((row, current.get(rebuild(row).run_key)))
        else:
            slice_.excluded[exclusion(row)] += 1
    for key, slice_ in slices.items():
        if pairs[key]:
            judge(slice_, pairs[key], abs_floor, k, loss_rtol)
        else:
            slice_.status = "skipped"
    return CheckReport(list(slices.values()), two_sided)


def judge(
    slice_: Slice,
    pairs: list[tuple[RunRecord, RunRecord | None]],
    abs_floor: float,
    k: float,
    loss_rtol: float,
) -> None:
    """Set the slice's status, band and notes from its (baseline, current) record pairs."""
    slice_.baseline = [b.score for b, _ in pairs]
    slice_.band = max(abs_floor, k * (standard_error(slice_.baseline) or 0.0))
    for base, now in pairs:
        seed = f"seed {base.seed}"
        if now is None:
            slice_.status = "missing"
            slice_.notes.append(f"{seed}: no run in the current results")
        elif not usable(now):
            slice_.status = "failed"
            slice_.excluded_now[exclusion(now)] += 1
            slice_.notes.append(f"{seed}: {now.status} ({now.error or 'no score'})")
        else:
            old, new = base.final_loss, now.final_loss
            if old is not None and new is not None and abs(new - old) > loss_rtol * abs(old):
                slice_.notes.append(f"{seed}: training loss drifted {old:.4f} → {new:.4f}")
    if slice_.status in ("missing", "failed"):
        return
    slice_.current = [now.score for _, now in pairs if now is not None]
    delta = slice_.delta or 0.0
    if delta < -slice_.band:
        slice_.status = "regressed"
    elif delta > slice_.band:
        slice_.status = "improved"
    elif slice_.notes:
        slice_.status = "drifted"


def rows_by_key(rows: Iterable[RunRecord]) -> dict[str, RunRecord]:
    return {r.run_key: r for r in latest_per_run(rows)}


def write_baseline(path: Path, rows: Sequence[RunRecord]) -> None:
    """Replace ``path`` atomically with ``rows`` (validated by the leaderboard writer)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        append_rows(tmp, rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
