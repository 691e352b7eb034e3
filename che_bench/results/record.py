"""The run record: everything one run leaves behind, and one line of a leaderboard file.

A :class:`RunRecord` is frozen and valid from the moment it exists: its constructor
normalises the values (NaN/inf → None, tuples → lists, int keys → str, 0-d arrays →
scalars) and raises :class:`InvalidRecord`, naming each bad field, for anything a
leaderboard would refuse. A run's record grows by replacement, never in place::

    record = RunRecord.begin(config, "cpu:x86_64")       # status "failed" until it trains
    record = record.with_training(result).with_scores(accuracy_by_length, score)

``to_dict``/``from_dict`` are the file format; this module imports no torch.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from che_bench.results._schema import (
    EVALUATION_KEYS,
    KINDS,
    ROW_FIELDS,
    SCHEMA_VERSION,
    STATUSES,
    VERSION_KEYS,
    InvalidRecord,
    checked,
    checked_stored,
    row_problems,
    run_key,
    upgrade,
)
from che_bench.results.provenance import code_identity

if TYPE_CHECKING:
    from che_bench.config import RunConfig
    from che_bench.training.train import TrainResult

__all__ = [
    "EVALUATION_KEYS",
    "KINDS",
    "ROW_FIELDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "VERSION_KEYS",
    "InvalidRecord",
    "RunRecord",
    "row_problems",
    "run_key",
    "upgrade",
]


def _now() -> str:
    """The UTC time now, to the second, as a row's ``timestamp``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _torch_version() -> str:
    """torch's version, without importing torch if nothing has yet."""
    torch = sys.modules.get("torch")
    return str(torch.__version__) if torch is not None else metadata.version("torch")


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run: its identity, its config, its scores and where it ran (one leaderboard row).

    Keyword construction fills ``schema_version``, ``run_id``, ``timestamp`` and ``run_key``
    (from ``config_hash`` and ``seed``) when they are not given, and the results of a run that
    has not trained yet. Fields are declared in file order.
    """

    schema_version: int = SCHEMA_VERSION
    run_key: str = None  # type: ignore[assignment]  # None: config_hash + "-s" + seed
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str
    rerun: bool = False  # True: forced re-run of a run_key that already had an ok row
    kind: str = "train"  # or "evaluation": a kept model scored again (`che-bench evaluate`)
    error: str | None = None
    task: str
    encoding: str
    encoding_options: dict[str, Any]
    seed: int
    lr: float
    preset: str
    config: dict[str, Any]
    config_hash: str
    train_lengths: list[int]
    test_lengths: list[int]
    accuracy_by_length: dict[str, float | None] = field(default_factory=dict)
    score: float | None = None
    train_accuracy_by_length: dict[str, float | None] = field(default_factory=dict)
    train_score: float | None = None
    chance: float
    steps: int = 0
    final_loss: float | None = None
    wall_time_s: float = 0.0
    device: str
    versions: dict[str, str | None]
    model: str | None = None  # the kept model's path, if the run kept one
    evaluation: dict[str, Any] | None = None  # kind "evaluation": see EVALUATION_KEYS
    timestamp: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.run_key is None and isinstance(self.config_hash, str):
            object.__setattr__(self, "run_key", run_key(self.config_hash, self.seed))
        row = self.to_dict()
        for name, value in row.items():  # the clean copies: nothing aliases the caller's
            object.__setattr__(self, name, value)

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def begin(cls, config: RunConfig, device: str) -> RunRecord:
        """The record of ``config`` before it runs on ``device`` (a name such as
        ``cpu:x86_64``): status ``failed``, no steps and no scores yet."""
        from che_bench.generators import get_task

        return cls(
            run_key=config.run_key,
            status="failed",
            task=config.task,
            encoding=config.encoding,
            encoding_options=dict(config.encoding_options),
            seed=config.seed,
            lr=config.lr,
            preset=config.preset,
            config=config.to_dict(),
            config_hash=config.config_hash,
            train_lengths=list(config.train_lengths),
            test_lengths=list(config.test_lengths),
            chance=get_task(config.task).chance,
            device=device,
            versions=cls.begin_versions(),
        )

    @staticmethod
    def begin_versions() -> dict[str, str | None]:
        """The versions a record made now names (see VERSION_KEYS)."""
        from che_bench import __version__

        return {
            "che_bench": __version__,
            "torch": _torch_version(),
            "python": platform.python_version(),
            "code": code_identity(),
        }

    @classmethod
    def failed(cls, config: RunConfig, error: str, device: str = "cpu") -> RunRecord:
        """The record of a run that produced none itself (its worker died, it could not
        start, or its own record was refused)."""
        return cls.begin(config, device).with_error(error)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> RunRecord:
        """A record from a stored row, upgraded from older schemas. Raises InvalidRecord
        naming each missing, unexpected or malformed field (LeaderboardError for a row
        of a newer schema)."""
        return cls(**checked_stored(row))

    @classmethod
    def from_stored(cls, row: dict[str, Any]) -> RunRecord:
        """:meth:`from_dict` for a row ``json.loads`` has just parsed from a leaderboard
        line: the same upgrade and checks, without the normalising copy (parsed JSON has
        nothing to normalise), so reading a large leaderboard costs little more than
        parsing it."""
        record = object.__new__(cls)
        record.__dict__.update(checked_stored(row))  # as unpickling sets a frozen record
        return record

    # -- updates (each returns a new record) -----------------------------------------------
    def with_training(self, result: TrainResult) -> RunRecord:
        """This record with a finished training's steps, final loss, status and error."""
        return dataclasses.replace(
            self,
            steps=result.steps,
            final_loss=result.final_loss,
            status=result.status,
            error=result.error,
        )

    def with_scores(
        self, accuracy_by_length: Mapping[int | str, float | None], score: float | None
    ) -> RunRecord:
        """This record with an evaluation's per-length accuracies and score."""
        curve = {str(k): v for k, v in accuracy_by_length.items()}
        return dataclasses.replace(self, accuracy_by_length=curve, score=score)

    def with_in_distribution(
        self, accuracy_by_length: Mapping[int | str, float | None], score: float | None
    ) -> RunRecord:
        """This record with the accuracies at the training lengths and their mean."""
        curve = {str(k): v for k, v in accuracy_by_length.items()}
        return dataclasses.replace(self, train_accuracy_by_length=curve, train_score=score)

    def with_error(self, error: str) -> RunRecord:
        """This record marked ``failed`` with ``error``."""
        return dataclasses.replace(self, status="failed", error=error)

    def as_rerun(self) -> RunRecord:
        """This record marked as a forced re-run (``run --force``) of a run_key that already
        has an ``ok`` row, so that ``leaderboard verify`` does not count it a duplicate."""
        return dataclasses.replace(self, rerun=True)

    def with_model(self, path: str) -> RunRecord:
        """This record with the path of the model it kept."""
        return dataclasses.replace(self, model=path)

    def evaluation_of(
        self,
        test_lengths: tuple[int, int],
        *,
        samples: int,
        stride: int,
        seed: int,
        device: str,
    ) -> RunRecord:
        """The ``evaluation`` row of this training row's kept model scored on ``test_lengths``
        (every ``stride``-th, ``samples`` per length, test set ``seed``) on ``device``: the
        same run_key and config, its own test lengths, id, versions and time, no scores yet
        (:meth:`with_scores` adds them)."""
        spec = {"of_run_id": self.run_id, "samples": samples, "stride": stride, "seed": seed}
        return dataclasses.replace(
            self,
            run_id=uuid.uuid4().hex,
            kind="evaluation",
            rerun=False,
            test_lengths=list(test_lengths),
            accuracy_by_length={},
            score=None,
            train_accuracy_by_length={},
            train_score=None,
            device=device,
            versions=RunRecord.begin_versions(),
            evaluation=spec,
            wall_time_s=0.0,
            timestamp=_now(),
        )

    def with_wall_time(self, seconds: float) -> RunRecord:
        """This record with its wall time (rounded to milliseconds)."""
        return dataclasses.replace(self, wall_time_s=round(seconds, 3))

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The row as a new JSON-ready dict, fields in file order (NaN/inf as None);
        re-validated, since the record's dicts can still be changed in place."""
        return checked({name: getattr(self, name) for name in ROW_FIELDS})

    def to_json(self) -> str:
        """The row as one JSON line, without its newline."""
        return json.dumps(self.to_dict(), allow_nan=False)


if tuple(f.name for f in dataclasses.fields(RunRecord)) != ROW_FIELDS:  # pragma: no cover
    raise AssertionError("RunRecord's fields and their checks disagree")
