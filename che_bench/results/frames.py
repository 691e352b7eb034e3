"""Leaderboards as flat tables, for notebooks and other tools.

:func:`read_leaderboard` gives one row per leaderboard row (its scalar fields);
:func:`read_curves` gives the per-length accuracies as a long ("tidy") table, one row per
(run, split, length), the shape pandas, seaborn and plotnine plot from. Both build on
:func:`che_bench.results.leaderboard.read_rows` and return pandas DataFrames (pandas is the
optional ``frame`` extra). The plain-dict builders :func:`flat_rows` and :func:`curve_rows`
need no pandas; ``che-bench report --format csv --curves`` prints :func:`curves_csv`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from che_bench.errors import CheBenchError
from che_bench.results.record import RunRecord
from che_bench.results.report import load_rows
from che_bench.results.stats import option_key
from che_bench.util import fmt_range

#: The columns of :func:`read_leaderboard`, in order.
ROW_COLUMNS = (
    "run_key", "run_id", "kind", "status", "rerun", "error", "task", "encoding",
    "encoding_options", "seed", "lr", "preset", "steps", "score", "train_score", "chance",
    "final_loss", "wall_time_s", "train_lengths", "test_lengths", "test_stride",
    "eval_samples", "device", "timestamp", "che_bench_version", "torch_version",
    "code_revision", "config_hash", "model",
)  # fmt: skip
#: The columns of :func:`read_curves`, in order; ``split`` is ``train`` (the training
#: lengths, ``train_accuracy_by_length``) or ``test`` (``accuracy_by_length``).
CURVE_COLUMNS = (
    "run_key", "run_id", "kind", "status", "task", "encoding", "encoding_options", "seed",
    "lr", "preset", "split", "length", "accuracy",
)  # fmt: skip


def flat_row(record: RunRecord) -> dict[str, Any]:
    """The scalar fields of one record (options as sorted JSON, lengths as ``LO-HI``)."""
    config, versions = record.config, record.versions
    return {
        "run_key": record.run_key,
        "run_id": record.run_id,
        "kind": record.kind,
        "status": record.status,
        "rerun": record.rerun,
        "error": record.error,
        "task": record.task,
        "encoding": record.encoding,
        "encoding_options": option_key(record)[1],
        "seed": record.seed,
        "lr": record.lr,
        "preset": record.preset,
        "steps": record.steps,
        "score": record.score,
        "train_score": record.train_score,
        "chance": record.chance,
        "final_loss": record.final_loss,
        "wall_time_s": record.wall_time_s,
        "train_lengths": fmt_range(record.train_lengths),
        "test_lengths": fmt_range(record.test_lengths),
        "test_stride": (record.evaluation or {}).get("stride", config.get("test_stride", 1)),
        "eval_samples": (record.evaluation or {}).get("samples", config.get("eval_samples")),
        "device": record.device,
        "timestamp": record.timestamp,
        "che_bench_version": versions.get("che_bench"),
        "torch_version": versions.get("torch"),
        "code_revision": versions.get("code"),
        "config_hash": record.config_hash,
        "model": record.model,
    }


def flat_rows(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """:func:`flat_row` of each record, in leaderboard order."""
    return [flat_row(r) for r in records]


def curve_rows(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """One dict per (record, split, length): the training lengths first, then the test
    lengths, each in increasing length; an unmeasured accuracy is None."""
    out = []
    for record in records:
        flat = flat_row(record)
        head = {name: flat[name] for name in CURVE_COLUMNS[:-3]}  # the run, before split etc.
        splits = (("train", record.train_accuracy_by_length), ("test", record.accuracy_by_length))
        for split, curve in splits:
            for length in sorted(curve, key=int):
                out.append({**head, "split": split, "length": int(length),
                            "accuracy": curve[length]})  # fmt: skip
    return out


def curves_csv(records: Iterable[RunRecord]) -> str:
    """:func:`curve_rows` as CSV with a header line (an unmeasured accuracy is empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(curve_rows(records))
    return buffer.getvalue()


def curves_json(records: Iterable[RunRecord]) -> str:
    """:func:`curve_rows` as a JSON list of objects (an unmeasured accuracy is null)."""
    return json.dumps(curve_rows(records), indent=1) + "\n"


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise CheBenchError(
            "data frames need pandas: install che-bench[frame] (pip install 'che-bench[frame]')"
        ) from None
    return pandas


def _records(path: str | os.PathLike[str], kinds: Collection[str]) -> list[RunRecord]:
    return load_rows(Path(path), kinds=tuple(kinds))


def read_leaderboard(path: str | os.PathLike[str], kinds: Collection[str] = ("train",)) -> Any:
    """A pandas DataFrame with one row per leaderboard row of the ``kinds`` asked for
    (``"train"``, ``"evaluation"``: the rows of ``che-bench evaluate``), columns
    :data:`ROW_COLUMNS`; ``timestamp`` is a UTC datetime. Corrupt lines are skipped with a
    warning, as ``che-bench report`` does."""
    pandas = _pandas()
    frame = pandas.DataFrame(flat_rows(_records(path, kinds)), columns=list(ROW_COLUMNS))
    frame["timestamp"] = pandas.to_datetime(frame["timestamp"], utc=True)
    return frame


def read_curves(path: str | os.PathLike[str], kinds: Collection[str] = ("train",)) -> Any:
    """A pandas DataFrame of per-length accuracies, one row per (row, split, length),
    columns :data:`CURVE_COLUMNS` (``split``: ``train`` or ``test``)."""
    pandas = _pandas()
    frame = pandas.DataFrame(curve_rows(_records(path, kinds)), columns=list(CURVE_COLUMNS))
    return frame.astype({"length": "int64", "accuracy": "float64"})
