"""A per-encoding history of the regression gate across commits.

``che-bench check --record HISTORY.jsonl`` appends one line per slice: the code identity
(git revision, or the package digest), the date, the baseline and current mean scores, the
band, the p-value and the slice's status. ``che-bench report HISTORY.jsonl --trend`` prints
each slice's score over the recorded commits and names the commit where it first
regressed; ``che-bench plot HISTORY.jsonl --kind trend`` draws the same.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from che_bench.errors import ConfigError
from che_bench.results.leaderboard import append_lines

KIND = "check-history"


@dataclass(frozen=True)
class Entry:
    """One slice of one recorded check."""

    revision: str
    date: str
    task: str
    encoding: str
    status: str
    baseline: float | None
    current: float | None
    band: float
    p: float | None
    seeds: int
    kind: str = KIND

    @property
    def slice(self) -> str:
        return f"{self.task} × {self.encoding}"


def record(path: Path, report, revision: str) -> list[Entry]:
    """Append ``report``'s slices (a :class:`~che_bench.results.check.CheckReport`)."""
    date = datetime.now(UTC).isoformat(timespec="seconds")
    entries = []
    for s in report.slices:
        before = sum(s.baseline) / len(s.baseline) if s.baseline else None
        now = before + s.delta if before is not None and s.delta is not None else None
        entries.append(
            Entry(
                revision,
                date,
                s.task,
                s.encoding,
                s.status,
                before,
                now,
                s.band,
                s.p,
                len(s.current),
            )  # fmt: skip
        )
    data = "".join(json.dumps(asdict(e)) + "\n" for e in entries)
    append_lines(path, data.encode())
    return entries


def is_history(path: Path) -> bool:
    """Whether ``path``'s first line is a check-history entry (else: a leaderboard)."""
    try:
        with path.open() as handle:
            first = handle.readline()
        return json.loads(first).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def read(path: Path) -> list[Entry]:
    """Every entry of a history file, in file order; ConfigError for a file that is not a
    history, and naming a bad line."""
    if path.is_file() and not is_history(path):
        raise ConfigError(f"{path} is not a history; write one with che-bench check --record")
    entries = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read history {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(Entry(**json.loads(line)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{number}: not a check-history entry ({exc})") from None
    if not entries:
        raise ConfigError(f"history {path} is empty; add to it with che-bench check --record")
    return entries


def series(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Per slice, its entries in recording order (one per recorded check)."""
    by_slice: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_slice[entry.slice].append(entry)
    return dict(sorted(by_slice.items()))


def first_regression(points: list[Entry]) -> Entry | None:
    """The entry where the slice first regressed after a check where it did not."""
    for previous, entry in zip([None, *points], points):
        if entry.status == "regressed" and (previous is None or previous.status != "regressed"):
            return entry
    return None


def short(revision: str) -> str:
    """``git:0123456789ab…+dirty`` → ``0123456+dirty``."""
    kind, _, rest = revision.partition(":")
    dirty = "+dirty" if rest.endswith("+dirty") else ""
    return (rest.removesuffix("+dirty")[:7] + dirty) if kind in ("git", "sha256") else revision


def render_trend(entries: list[Entry]) -> str:
    """Per slice: its score at each recorded commit, and where it first regressed."""
    lines = []
    for name, points in series(entries).items():
        scores = "  ".join(
            f"{short(e.revision)} {'–' if e.current is None else f'{100 * e.current:.1f}'}"
            + ("!" if e.status == "regressed" else "")
            for e in points
        )
        lines.append(f"{name}: {scores}")
        culprit = first_regression(points)
        if culprit is not None:
            lines.append(f"  first regressed at {culprit.revision} ({culprit.date})")
    return "\n".join(lines) + "\n"
