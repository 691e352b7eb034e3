"""The gate every run passes, so that each run_key gets one row: a run with an ``ok`` row is
skipped (unless forced, and then its row is marked ``rerun``), a run that another process
has claimed is skipped, and a finished run's row is appended before its checkpoint is
removed and its claim released. ``che-bench run``, ``run --seeds`` and sweeps all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from che_bench.errors import CheBenchError
from che_bench.results.leaderboard import OkRows, append_row
from che_bench.running.claims import Claims, Holder

CHECKPOINT = "checkpoint.pt"  # a run's checkpoint in <run_dir>/<run_key>/, while it trains

if TYPE_CHECKING:
    from che_bench.config import RunConfig
    from che_bench.results.record import RunRecord


class RunClaimed(CheBenchError):
    """``run`` found its run claimed by another live process, which is running it now."""

    def __init__(self, skip: Skip, leaderboard: Path | None) -> None:
        super().__init__(skip.describe(leaderboard))
        self.skip = skip


class RunSkipped(UserWarning):
    """``run`` returned the existing ``ok`` row of its run_key instead of running it again."""


@dataclass(frozen=True)
class Skip:
    """A run this process leaves alone: it has an ``ok`` ``row`` (at ``line``), or
    ``holder`` is running it."""

    config: RunConfig
    row: RunRecord | None = None
    line: int = 0
    holder: Holder | None = None

    @property
    def why(self) -> str:
        if self.holder is not None:
            return f"claimed by {self.holder.describe()}"
        assert self.row is not None
        score = "-" if self.row.score is None else f"{self.row.score:.4f}"
        return f"already ok (line {self.line}, score {score}, {self.row.timestamp})"

    def describe(self, leaderboard: Path | None) -> str:
        """One line: which run, why it is skipped, where its row is or will be."""
        key = self.config.run_key
        if self.holder is not None:
            return f"run {key} is {self.why}, which is running it; its row will go to {leaderboard}"
        return f"run {key} is {self.why} in {leaderboard}"


class RunGate:
    """Who runs what in one leaderboard: :meth:`admit` just before a run, :meth:`settle`
    once it has its record, :meth:`release` if it will have none.

    A run is admitted when its claim is ours and the leaderboard holds no ``ok`` row for its
    run_key (or ``force``: then its row is marked ``rerun``). The rows are read again after
    claiming, so a run that another process finished meanwhile is not run twice. Without a
    leaderboard every run is admitted and nothing is claimed.
    """

    def __init__(
        self, leaderboard: Path | None, run_dir: Path | None, *, force: bool = False
    ) -> None:
        self.leaderboard, self.run_dir, self.force = leaderboard, run_dir, force
        self.claims = Claims(leaderboard) if leaderboard is not None else None
        self.ok = OkRows(leaderboard) if leaderboard is not None else None
        self.reruns: set[str] = set()

    def __enter__(self) -> RunGate:
        if self.claims is not None:
            self.claims.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.claims is not None:
            self.claims.__exit__(*exc)

    def admit(self, config: RunConfig) -> Skip | None:
        """None when this process may run ``config`` now (its claim is held), else why not."""
        if self.claims is None or self.ok is None:
            return None
        key = config.run_key
        done = self.ok.refresh().get(key)
        if done is None or self.force:
            holder = self.claims.claim(key)
            if holder is not None:
                return Skip(config, holder=holder)
            done = self.ok.refresh().get(key)
            if done is None:
                return None
            if self.force:
                self.reruns.add(key)
                return None
        self._tidy(done[1])
        return Skip(config, done[1], done[0])

    def settle(self, record: RunRecord) -> RunRecord:
        """Append ``record`` (marked ``rerun`` if it was forced over an ok row), then remove
        its checkpoint if it is ok, then release its claim. In this order a crash anywhere
        leaves at worst an ok row and a checkpoint, which the next :meth:`admit` of the
        run_key removes; never a second row."""
        from che_bench.running.runner import remove_checkpoint_if_ok

        if record.run_key in self.reruns:
            record = record.as_rerun()
        if self.leaderboard is not None:
            append_row(self.leaderboard, record)
        remove_checkpoint_if_ok(self.run_dir, record)
        self.release(record.run_key)
        return record

    def release(self, run_key: str) -> None:
        """Give up the claim of a run that will not be settled."""
        self.reruns.discard(run_key)
        if self.claims is not None:
            self.claims.release(run_key)

    def remove_leftovers(self, configs: Iterable[RunConfig]) -> None:
        """Remove the checkpoints that runs with an ok row left behind (their process died
        after appending the row): a sweep calls this for the cells it skips as done."""
        run_dir = self.run_dir
        found = [
            c
            for c in configs
            if run_dir is not None and (run_dir / c.run_key / CHECKPOINT).exists()
        ]
        rows = self.ok.refresh() if found and self.ok is not None else {}
        for config in found:
            if config.run_key in rows:
                self._tidy(rows[config.run_key][1])

    def _tidy(self, row: RunRecord) -> None:
        """Remove the checkpoint that an ok run left behind (its process died after
        appending the row), holding the claim: a forced re-run may be using it."""
        from che_bench.running.runner import remove_checkpoint_if_ok

        assert self.claims is not None
        leftover = self.run_dir is not None and (self.run_dir / row.run_key / CHECKPOINT).exists()
        if leftover and self.claims.claim(row.run_key) is None:
            remove_checkpoint_if_ok(self.run_dir, row)
        self.claims.release(row.run_key)
