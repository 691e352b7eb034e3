"""The schema of a stored run record (a leaderboard row): the checks of each field, the
normalisation to JSON-ready values, and the upgrades from older schema versions.

Private to :mod:`che_bench.results.record`, which re-exports the public names; kept apart
only so that each module stays short. Imports nothing heavy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from che_bench.errors import LeaderboardError

SCHEMA_VERSION = 4
STATUSES = ("ok", "failed", "diverged")
#: ``train``: a training run and its evaluation. ``evaluation``: a kept model of a training
#: run scored again on other lengths (``che-bench evaluate``); same run_key, own test lengths.
KINDS = ("train", "evaluation")
#: ``code``: ``git:<revision>`` (``+dirty`` with uncommitted changes) when che-bench runs
#: from a checkout, else ``sha256:<digest>`` of the installed package's source files.
VERSION_KEYS = ("che_bench", "torch", "python", "code")
_HEX32 = re.compile("[0-9a-f]{32}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in01(v: Any) -> bool:
    return _is_num(v) and 0 <= v <= 1


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _is_span(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)) and 1 <= v[0] <= v[1]


def _is_acc(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and k.isascii() and k.isdigit() and (a is None or _in01(a))
        for k, a in v.items()
    )


def _is_utc(v: Any) -> bool:
    try:
        t = datetime.fromisoformat(v)
    except (TypeError, ValueError):
        return False
    return t.utcoffset() == timedelta(0)


def _is_versions(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and set(v) == set(VERSION_KEYS)
        and all(x is None or isinstance(x, str) for x in v.values())
    )


#: What an ``evaluation`` row records of its own evaluation: the training row it re-scores
#: (``of_run_id``), and the samples per length, stride and test-set seed it used.
EVALUATION_KEYS = ("of_run_id", "samples", "stride", "seed")


def _is_evaluation(v: Any) -> bool:
    return v is None or (
        isinstance(v, dict)
        and set(v) == set(EVALUATION_KEYS)
        and isinstance(v["of_run_id"], str)
        and all(_is_int(v[k]) and v[k] >= 0 for k in EVALUATION_KEYS[1:])
    )


# Every field, in file order: (check, what the check wants).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "schema_version": (lambda v: v == SCHEMA_VERSION, f"the integer {SCHEMA_VERSION}"),
    "run_key": (_str, "a string"),
    "run_id": (lambda v: isinstance(v, str) and bool(_HEX32.fullmatch(v)), "32 hex digits"),
    "status": (lambda v: v in STATUSES, "one of " + ", ".join(STATUSES)),
    "rerun": (lambda v: isinstance(v, bool), "true or false"),
    "kind": (lambda v: v in KINDS, "one of " + ", ".join(KINDS)),
    "error": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "task": (_str, "a string"),
    "encoding": (_str, "a string"),
    "encoding_options": (lambda v: isinstance(v, dict), "an object"),
    "seed": (_is_int, "an integer"),
    "lr": (lambda v: _is_num(v) and v > 0, "a positive number"),
    "preset": (_str, "a string"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "config_hash": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "train_lengths": (_is_span, "[lo, hi] with 1 <= lo <= hi"),
    "test_lengths": (_is_span, "[lo, hi] with 1 <= lo <= hi"),
    "accuracy_by_length": (_is_acc, "an object mapping length strings to accuracies in [0, 1]"),
    "score": (lambda v: v is None or _in01(v), "a number in [0, 1] or null"),
    "train_accuracy_by_length": (_is_acc, "an object mapping length strings to accuracies"),
    "train_score": (lambda v: v is None or _in01(v), "a number in [0, 1] or null"),
    "chance": (_in01, "a number in [0, 1]"),
    "steps": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "final_loss": (lambda v: v is None or _is_num(v), "a number or null"),
    "wall_time_s": (lambda v: _is_num(v) and v >= 0, "a non-negative number"),
    "device": (_str, "a string"),
    "versions": (_is_versions, "an object with string values for " + ", ".join(VERSION_KEYS)),
    "model": (lambda v: v is None or isinstance(v, str), "a path string or null"),
    "evaluation": (_is_evaluation, "null or an object with " + ", ".join(EVALUATION_KEYS)),
    "timestamp": (_is_utc, "an ISO-8601 UTC timestamp"),
}
ROW_FIELDS = tuple(_CHECKS)


class InvalidRecord(LeaderboardError):
    """A row a leaderboard would refuse; ``problems`` names each bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid leaderboard row: " + "; ".join(problems))
        self.problems = problems

    def __reduce__(self) -> tuple[type[InvalidRecord], tuple[list[str]]]:
        return type(self), (self.problems,)  # so it survives a trip to a worker and back


def row_problems(row: Any) -> list[str]:
    """Everything wrong with the dict ``row`` (an empty list for a valid row), each naming
    the field."""
    if not isinstance(row, dict):
        return [f"row must be an object, got {type(row).__name__}"]
    problems = []
    for what, names in (
        ("missing", [k for k in ROW_FIELDS if k not in row]),
        ("unexpected", [k for k in row if k not in ROW_FIELDS]),
    ):
        if names:
            plural = "s" if len(names) > 1 else ""
            problems.append(f"{what} field{plural} " + ", ".join(f"'{k}'" for k in names))
    for name, (ok, expected) in _CHECKS.items():
        if name in row and not ok(row[name]):
            problems.append(f"field '{name}' must be {expected}, got {row[name]!r:.60}")
    if not problems and (row["kind"] == "evaluation") != (row["evaluation"] is not None):
        problems.append("field 'evaluation' must be an object exactly on rows of kind evaluation")
    if not problems and row["run_key"] != run_key(row["config_hash"], row["seed"]):
        got = row["run_key"]
        problems.append(f"field 'run_key' must be config_hash + '-s' + seed, got {got!r}")
    return problems


def run_key(config_hash: str, seed: int) -> str:
    """The key that identifies a run for resume/skip: ``<config_hash>-s<seed>``."""
    return f"{config_hash}-s{seed}"


def _clean(v: Any) -> Any:
    """JSON-ready copy: NaN/inf -> None, tuples -> lists, int keys -> str, 0-d arrays ->
    scalars. Raises TypeError for what JSON cannot hold."""
    kind = type(v)
    if kind is str or kind is int or kind is bool or v is None:  # the common cases, fast
        return v
    if kind is float:
        return v if math.isfinite(v) else None
    if kind is dict:
        return {_key(k): _clean(x) for k, x in v.items()}
    if kind is list or kind is tuple:
        return [_clean(x) for x in v]
    if getattr(v, "shape", None) == () and callable(getattr(v, "item", None)):
        return _clean(v.item())  # numpy / torch scalars, without importing either
    for base in (int, float, str):  # subclasses (IntEnum, TorchVersion): as json writes them
        if isinstance(v, base):
            return _clean(base.__str__(v) if base is str else base(v))
    if isinstance(v, Mapping):
        return _clean(dict(v))
    if isinstance(v, (list, tuple)):
        return _clean(list(v))
    raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")


def _key(k: Any) -> str:
    if isinstance(k, str) or _is_int(k):
        return str.__str__(k) if isinstance(k, str) else str(int(k))
    raise TypeError(f"keys must be str or int, not {type(k).__name__}")


def checked(row: dict[str, Any]) -> dict[str, Any]:
    """A clean copy of ``row``; InvalidRecord naming each problem if it is not a valid row."""
    try:
        row = _clean(row)
    except TypeError as e:
        raise InvalidRecord([f"not JSON-serializable ({e})"]) from None
    problems = row_problems(row)
    if problems:
        raise InvalidRecord(problems)
    return row


def _v0_to_v1(row: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (no schema_version) named the per-length accuracies ``accuracy``."""
    row = dict(row)
    if "accuracy" in row and "accuracy_by_length" not in row:
        row["accuracy_by_length"] = row.pop("accuracy")
    row["schema_version"] = 1
    return row


def _v1_to_v2(row: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added ``rerun``: true on the row of a run forced to run again although the
    leaderboard already held an ``ok`` row for its run_key. No version-1 row was one."""
    row = dict(row)
    row.setdefault("rerun", False)
    row["schema_version"] = 2
    return row


def _v2_to_v3(row: dict[str, Any]) -> dict[str, Any]:
    """Version 3 added the in-distribution accuracies (``train_accuracy_by_length``, their
    mean ``train_score``) and ``versions.code``; version-2 rows had neither (empty, null)."""
    row = dict(row)
    row.setdefault("train_accuracy_by_length", {})
    row.setdefault("train_score", None)
    if isinstance(row.get("versions"), dict):
        row["versions"] = {**row["versions"], "code": row["versions"].get("code")}
    row["schema_version"] = 3
    return row


def _v3_to_v4(row: dict[str, Any]) -> dict[str, Any]:
    """Version 4 added ``kind`` (every earlier row is a training row), ``model`` (the kept
    model's path; earlier runs kept none) and ``evaluation`` (null on training rows)."""
    row = dict(row)
    row.setdefault("kind", "train")
    row.setdefault("model", None)
    row.setdefault("evaluation", None)
    row["schema_version"] = 4
    return row


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _v0_to_v1,
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}


def upgrade(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` in the current schema (a row without ``schema_version`` is version 0).
    Raises LeaderboardError for a row written by a newer che-bench; leaves malformed
    versions for validation to report."""
    version = row.get("schema_version", 0)
    if _is_int(version) and version > SCHEMA_VERSION:
        raise LeaderboardError(
            f"row written by a newer che-bench (schema {version}); upgrade che-bench"
        )
    while _is_int(version) and version in _UPGRADES:
        row = _UPGRADES[version](row)
        version = row["schema_version"]
    return row


def checked_stored(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row upgraded to the current schema, its values checked as they are (as
    ``verify`` judges them); InvalidRecord naming each problem."""
    if not isinstance(row, Mapping):
        raise InvalidRecord([f"row must be an object, got {type(row).__name__}"])
    data = upgrade(dict(row))
    problems = row_problems(data)
    if problems:
        raise InvalidRecord(problems)
    return data
