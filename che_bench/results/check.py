"""Regression check: re-run the grid a baseline leaderboard describes and compare per slice.

The baseline's rows define the grid: each row's stored config is rebuilt and run again (or
looked up in another leaderboard). Per (task, encoding) slice, with m slices judged:

- **regressed**: the mean score dropped by more than ``min_drop`` *and* a one-sided Welch
  t-test (Welch 1947) of "the current seeds score lower than the baseline's" gives
  p < ``alpha`` / m (Bonferroni: the chance that a check of unchanged code fails anywhere
  stays below ``alpha``). A slice with a single seed on a side has no test; its drop alone
  decides. The band printed is the drop that would be significant at that level. The same
  rule on the in-distribution accuracy (rows that have it) also makes a slice regress, and
  so does a final training loss up by more than ``min_loss_rise`` (relative) at the same
  significance: seeds' losses spread far less than their scores.
- **improved**: the same test the other way (printed; a failure only with ``two_sided``);
- **drifted**: the score stayed inside the band but a run's final training loss moved by
  more than ``loss_rtol`` (relative) or a per-length accuracy changed. A warning, since a
  harmless change (a float reduction order) does that; a failure with ``strict`` (for
  refactors that must be bit-identical);
- **failed** / **missing**: a run no longer finishes, or the leaderboard lacks it.

Baseline rows that are not ok (failed, diverged: possible in a hand-made baseline, never in
one ``--update-baseline`` writes) are in no mean or test and are not re-run; each slice's
line counts them, and a slice with no ok baseline run is **skipped**. Current runs that are
not ok are counted too (and fail their slice).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from che_bench.config import RunConfig
from che_bench.errors import ConfigError
from che_bench.results.gate_rules import (
    drift,
    in_distribution_drop,
    loss_rise,
    p_text,
    significant,
    significant_drop,
)
from che_bench.results.leaderboard import append_rows, read_rows
from che_bench.results.record import RunRecord
from che_bench.results.stats import (
    excluded_text,
    exclusion,
    latest_per_run,
    option_key,
    option_labels,
    usable,
)
from che_bench.results.welch import p_lower

FAILING = ("regressed", "failed", "missing")


@dataclass
class Slice:
    """The comparison of one (task, encoding) slice."""

    task: str
    encoding: str
    baseline: list[float] = field(default_factory=list)
    current: list[float] = field(default_factory=list)
    band: float = 0.0
    p: float | None = None  # one-sided Welch p of the drop (of the rise, if improved)
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
                f"band ±{100 * self.band:.1f}{p_text(self.p)}, {len(self.baseline)} seeds)"
            )
        return text + "".join(f"; {note}" for note in self.counts + self.notes)


@dataclass
class CheckReport:
    slices: list[Slice]
    two_sided: bool = False
    strict: bool = False
    rule: str = ""  # the gate's rule in words, for the output
    machines: str | None = None  # set when the baseline ran on other devices than now

    def failing(self) -> list[Slice]:
        fails = set(FAILING)
        if self.two_sided:
            fails.add("improved")
        if self.strict:
            fails.add("drifted")
        return [s for s in self.slices if s.status in fails]

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
            "--update-baseline --grid GRID` (GRID: a sweep file, or ci / smoke)"
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
    """The grid of a sweep file: built-in encodings, and plugin encodings the file names
    explicitly (a plugin's own CI slice; a glob such as ``*`` never pulls plugins in)."""
    from che_bench.running.sweep import expand, load_sweep

    spec = load_sweep(path)
    chosen = set(builtin_encodings()) | set(spec.encodings)
    return [c for c in expand(spec) if c.encoding in chosen]


def uncovered(baseline: Iterable[RunRecord]) -> list[str]:
    """Built-in encodings no ok baseline run exercises."""
    seen = {r.encoding for r in baseline if usable(r)}
    return [name for name in builtin_encodings() if name not in seen]


def compare(
    baseline: Sequence[RunRecord],
    current: dict[str, RunRecord],
    *,
    min_drop: float = 0.05,
    alpha: float = 0.05,
    loss_rtol: float = 0.0,
    min_loss_rise: float = 0.10,
    two_sided: bool = False,
    strict: bool = False,
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
    judged = max(1, sum(1 for key in slices if pairs[key]))
    level = alpha / judged
    for key, slice_ in slices.items():
        if pairs[key]:
            judge(slice_, pairs[key], min_drop, level, loss_rtol, min_loss_rise)
        else:
            slice_.status = "skipped"
    rule = (
        f"gate: a slice regresses when its mean score drops by more than {100 * min_drop:g} "
        f"points and one-sided Welch p < {alpha:g}/{judged} (Bonferroni)"
    )
    return CheckReport(list(slices.values()), two_sided, strict, rule,
                       machines_note(baseline, current.values()))  # fmt: skip


def machines_note(baseline: Iterable[RunRecord], current: Iterable[RunRecord]) -> str | None:
    """A line naming the devices when the baseline's and the current runs' differ: another
    CPU model or thread count rounds differently, so every slice may drift (not fail)."""
    before = sorted({r.device for r in baseline if usable(r)})
    now = sorted({r.device for r in current})
    if not now or before == now:
        return None
    return (f"the baseline ran on {', '.join(before)}, these runs on {', '.join(now)}: "
            "float rounding differs, so expect drift; the score gate still holds")  # fmt: skip


def judge(
    slice_: Slice,
    pairs: list[tuple[RunRecord, RunRecord | None]],
    min_drop: float,
    level: float,
    loss_rtol: float,
    min_loss_rise: float = 0.10,
) -> None:
    """Set the slice's status, band, p and notes from its (baseline, current) record pairs."""
    slice_.baseline = [b.score for b, _ in pairs]
    slice_.band = significant_drop(slice_.baseline, level, min_drop)
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
            slice_.notes.extend(drift(base, now, loss_rtol))
    if slice_.status in ("missing", "failed"):
        return
    slice_.current = [now.score for _, now in pairs if now is not None]
    delta = slice_.delta or 0.0
    down = p_lower(slice_.baseline, slice_.current)
    up = p_lower(slice_.current, slice_.baseline)
    if significant(-delta, down, min_drop, level):
        slice_.status, slice_.p = "regressed", down
        return
    slice_.p = down if delta <= 0 else up
    # judged whatever the test score did: an encoding scoring below chance on the test
    # lengths "improves" there when it loses its positions, and shows it only here
    dropped = in_distribution_drop(pairs, min_drop, level) or loss_rise(
        pairs, min_loss_rise, level
    )
    if dropped:
        slice_.status = "regressed"
        slice_.notes.append(dropped)
    elif significant(delta, up, min_drop, level):
        slice_.status, slice_.p = "improved", up
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
