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
``che-bench check --update-baseline``.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from che_bench.config import RunConfig
from che_bench.errors import ConfigError
from che_bench.leaderboard import append_rows, read_rows
from che_bench.report import LrStats, latest_per_run, option_labels

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

    @property
    def name(self) -> str:
        return f"{self.task} × {self.encoding}"

    @property
    def delta(self) -> float | None:
        if not self.current or len(self.current) != len(self.baseline):
            return None
        return (sum(self.current) - sum(self.baseline)) / len(self.baseline)

    def line(self) -> str:
        before = sum(self.baseline) / len(self.baseline) if self.baseline else math.nan
        text = f"{self.status:<9} {self.name}: {100 * before:.1f}"
        if self.delta is not None:
            text += (
                f" → {100 * (before + self.delta):.1f} ({100 * self.delta:+.1f}, "
                f"band ±{100 * self.band:.1f})"
            )
        return text + "".join(f"; {note}" for note in self.notes)


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


def load_baseline(path: Path) -> list[dict[str, Any]]:
    """The baseline's ok rows, one per run, in file order."""
    if not path.is_file():
        raise ConfigError(
            f"no baseline at {path}; create it with `che-bench check --baseline {path} "
            f"--update-baseline --grid {DEFAULT_GRID}`"
        )
    rows = [r for r in latest_per_run(read_rows(path).rows) if r["status"] == "ok"]
    if not rows:
        raise ConfigError(f"baseline {path} has no ok rows; regenerate it with --update-baseline")
    return rows


def rebuild(row: dict[str, Any]) -> RunConfig:
    """The RunConfig a row was produced by (its stored config)."""
    try:
        return RunConfig.from_dict(row["config"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"baseline row {row['run_key']} has a config this che-bench cannot rebuild ({exc}); "
            "regenerate the baseline with --update-baseline"
        ) from None


def builtin_encodings(pattern: str = "*") -> list[str]:
    """Encodings that ship with che-bench (plugins are never part of a baseline)."""
    from che_bench.encodings import ENCODINGS

    return [n for n in ENCODINGS.list(pattern) if ENCODINGS.origin(n) == "che_bench"]


def grid_configs(path: Path) -> list[RunConfig]:
    """The grid of a sweep file, restricted to built-in encodings."""
    from che_bench.sweep import expand, load_sweep

    builtin = set(builtin_encodings())
    return [c for c in expand(load_sweep(path)) if c.encoding in builtin]


def uncovered(baseline: Iterable[dict[str, Any]]) -> list[str]:
    """Built-in encodings the baseline does not exercise."""
    seen = {r["encoding"] for r in baseline}
    return [name for name in builtin_encodings() if name not in seen]


def compare(
    baseline: Sequence[dict[str, Any]],
    current: dict[str, dict[str, Any]],
    *,
    abs_floor: float = 0.02,
    k: float = 3.0,
    loss_rtol: float = 0.01,
    two_sided: bool = False,
) -> CheckReport:
    """Compare baseline rows with ``current`` rows keyed by the rebuilt configs' run_keys."""
    labels = option_labels(baseline)
    slices: dict[tuple[str, str], Slice] = {}
    pairs: dict[tuple[str, str], list[tuple[dict, dict | None]]] = defaultdict(list)
    for row in baseline:
        label = labels[(row["encoding"], json.dumps(row["encoding_options"], sort_keys=True))]
        key = (row["task"], label)
        slices.setdefault(key, Slice(row["task"], label))
        pairs[key].append((row, current.get(rebuild(row).run_key)))
    for key, slice_ in slices.items():
        judge(slice_, pairs[key], abs_floor, k, loss_rtol)
    return CheckReport(list(slices.values()), two_sided)


def judge(
    slice_: Slice,
    pairs: list[tuple[dict, dict | None]],
    abs_floor: float,
    k: float,
    loss_rtol: float,
) -> None:
    """Set the slice's status, band and notes from its (baseline, current) row pairs."""
    slice_.baseline = [b["score"] for b, _ in pairs]
    slice_.band = max(abs_floor, k * (LrStats(0.0, slice_.baseline).sem or 0.0))
    for base, now in pairs:
        seed = f"seed {base['seed']}"
        if now is None:
            slice_.status = "missing"
            slice_.notes.append(f"{seed}: no run in the current results")
        elif now["status"] != "ok" or now.get("score") is None:
            slice_.status = "failed"
            slice_.notes.append(f"{seed}: {now['status']} ({now.get('error') or 'no score'})")
        else:
            old, new = base.get("final_loss"), now.get("final_loss")
            if old is not None and new is not None and abs(new - old) > loss_rtol * abs(old):
                slice_.notes.append(f"{seed}: training loss drifted {old:.4f} → {new:.4f}")
    if slice_.status in ("missing", "failed"):
        return
    slice_.current = [now["score"] for _, now in pairs if now is not None]
    delta = slice_.delta or 0.0
    if delta < -slice_.band:
        slice_.status = "regressed"
    elif delta > slice_.band:
        slice_.status = "improved"
    elif slice_.notes:
        slice_.status = "drifted"


def rows_by_key(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["run_key"]: r for r in latest_per_run(rows)}


def write_baseline(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Replace ``path`` atomically with ``rows`` (validated by the leaderboard writer)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        append_rows(tmp, rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
