"""A run's per-step training curve: ``RUN_DIR/<run_key>/curve.jsonl``, one JSON line per
logging step (``step``, ``loss``, ``accuracy``, ``steps_per_s``, ``elapsed_s``).

The lines are what the trainer's progress callback receives every ``log_every`` steps and at
the last step (:class:`che_bench.training.train.Progress`). Each is flushed as it is written,
so a crash loses at most the line being written. A run resumed from its checkpoint at step
S first drops the lines after S (and any torn last line), so no step appears twice and the
file reads as one uninterrupted run; ``elapsed_s`` goes on from the last line kept. The
leaderboard row stays the source of truth: the curve is an extra, read by
``che-bench plot --kind training``. This module imports no torch.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from che_bench.training.train import Progress

CURVE_FILE = "curve.jsonl"


def curve_path(run_dir: Path, run_key: str) -> Path:
    """Where the run ``run_key`` under ``run_dir`` writes its curve."""
    return run_dir / run_key / CURVE_FILE


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The curve's points in file order ([] for a missing file); lines that do not parse
    as a point (a line torn by a crash) are skipped."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return []
    points = []
    for line in text.splitlines():
        try:
            point = json.loads(line)
        except ValueError:
            continue
        if isinstance(point, dict) and isinstance(point.get("step"), int):
            points.append(point)
    return points


class CurveWriter:
    """Appends one line per logging step to ``path``, after keeping only the lines up to
    the step the run resumed from (:meth:`resumed`; 0, i.e. none, for a fresh start)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept_to = 0
        self.started = time.perf_counter()
        self.elapsed_before = 0.0
        self.file: IO[str] | None = None

    def resumed(self, step: int) -> None:
        """The run goes on from its checkpoint at ``step``: lines up to it are its own."""
        self.kept_to = step

    def write(self, progress: Progress) -> None:
        """One line for ``progress``, flushed."""
        if self.file is None:
            self.file = self._open()
        point = {
            "step": progress.step,
            "loss": _finite(progress.loss),
            "accuracy": _finite(progress.accuracy),
            "steps_per_s": round(progress.steps_per_s, 3),
            "elapsed_s": round(self.elapsed_before + time.perf_counter() - self.started, 3),
        }
        self.file.write(json.dumps(point) + "\n")
        self.file.flush()

    def settle(self) -> None:
        """Training is over: drop stale lines even if this process logged none (a run
        resumed at its last step)."""
        if self.file is None and self.path.exists():
            self._open().close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def _open(self) -> IO[str]:
        """The file, rewritten (atomically) to the lines up to ``kept_to``, open to append."""
        kept, last = [], 0
        for point in read_curve(self.path):
            if last < point["step"] <= self.kept_to:
                kept.append(point)
                last = point["step"]
        if kept:
            elapsed = kept[-1].get("elapsed_s")
            self.elapsed_before = elapsed if isinstance(elapsed, int | float) else 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        temporary.write_text("".join(json.dumps(p) + "\n" for p in kept))
        os.replace(temporary, self.path)
        return self.path.open("a")
