"""Leaderboard storage: an append-only JSON-lines file holding one row per finished run.

Writers take an exclusive ``flock`` on the leaderboard file itself (no sidecar lock file), repair a
torn tail left by a crashed writer, and write each batch with one ``os.write`` on an O_APPEND fd
followed by ``fsync``. Readers take a shared lock, so they never see a half-written line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from che_bench.errors import LeaderboardError

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "diverged")
VERSION_KEYS = ("che_bench", "torch", "python")
_HEX32 = re.compile("[0-9a-f]{32}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in01(v: Any) -> bool:
    return _is_num(v) and 0 <= v <= 1


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


def _str(v: Any) -> bool:
    return isinstance(v, str)


# Every row field, in file order: (check, what the check wants).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "schema_version": (lambda v: v == SCHEMA_VERSION, f"the integer {SCHEMA_VERSION}"),
    "run_key": (_str, "a string"),
    "run_id": (lambda v: isinstance(v, str) and bool(_HEX32.fullmatch(v)), "32 hex digits"),
    "status": (lambda v: v in STATUSES, "one of " + ", ".join(STATUSES)),
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
    "chance": (_in01, "a number in [0, 1]"),
    "steps": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "final_loss": (lambda v: v is None or _is_num(v), "a number or null"),
    "wall_time_s": (lambda v: _is_num(v) and v >= 0, "a non-negative number"),
    "device": (_str, "a string"),
    "versions": (
        lambda v: (
            isinstance(v, dict)
            and set(v) == set(VERSION_KEYS)
            and all(x is None or isinstance(x, str) for x in v.values())
        ),
        "an object with string values for " + ", ".join(VERSION_KEYS),
    ),
    "timestamp": (_is_utc, "an ISO-8601 UTC timestamp"),
}
ROW_FIELDS = tuple(_CHECKS)


def row_problems(row: Any) -> list[str]:
    """Everything wrong with ``row`` (an empty list for a valid row), each naming the field."""
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
    if not problems and row["run_key"] != run_key(row["config_hash"], row["seed"]):
        got = row["run_key"]
        problems.append(f"field 'run_key' must be config_hash + '-s' + seed, got {got!r}")
    return problems


def run_key(config_hash: str, seed: int) -> str:
    """The key that identifies a run for resume/skip: ``<config_hash>-s<seed>``."""
    return f"{config_hash}-s{seed}"


def _clean(v: Any) -> Any:
    """JSON-ready copy: NaN/inf -> None, tuples -> lists, int keys -> str, 0-d arrays -> scalars."""
    if getattr(v, "shape", None) == () and callable(getattr(v, "item", None)):
        v = v.item()  # numpy / torch scalars, without importing either
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {(str(k) if _is_int(k) else k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def make_row(**fields: Any) -> dict[str, Any]:
    """A validated, JSON-ready row; fills schema_version, run_id, run_key, error and timestamp
    when absent. Raises LeaderboardError naming each missing, unexpected or malformed field."""
    fields.setdefault("schema_version", SCHEMA_VERSION)
    fields.setdefault("run_id", uuid.uuid4().hex)
    fields.setdefault("error", None)
    fields.setdefault("timestamp", datetime.now(UTC).isoformat(timespec="seconds"))
    if "config_hash" in fields and "seed" in fields:
        fields.setdefault("run_key", run_key(fields["config_hash"], fields["seed"]))
    row = json.loads(_line(fields))  # exactly what read_rows will give back
    return {k: row[k] for k in ROW_FIELDS}


def _line(row: dict[str, Any]) -> bytes:
    """The row as one validated JSON line (NaN/inf stored as null)."""
    row = _clean(row)
    problems = row_problems(row)
    if problems:
        raise LeaderboardError("invalid leaderboard row: " + "; ".join(problems))
    try:
        return (json.dumps(row, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError) as e:
        raise LeaderboardError(f"invalid leaderboard row: not JSON-serializable ({e})") from None


_HINTS: list[tuple[type[OSError] | tuple[type[OSError], ...], str]] = [
    (IsADirectoryError, "it is a directory; pass a .jsonl file path"),
    ((NotADirectoryError, FileExistsError), "a parent of it is not a directory; fix the path"),
    (
        PermissionError,
        "permission denied; make the file and its folder writable, or use another path",
    ),
]


def _unwritable(path: str, e: OSError) -> LeaderboardError:
    hint = next((h for t, h in _HINTS if isinstance(e, t)), None)
    hint = hint or f"{e.strerror or e}; check the path and the free disk space"
    return LeaderboardError(f"cannot write leaderboard {path}: {hint}")


def _open_locked(path: str) -> int:
    """An O_APPEND fd on ``path`` holding an exclusive lock on the file that is at ``path`` now."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd  # else the file was replaced while we waited: lock the new one
        except FileNotFoundError:
            pass
        os.close(fd)


def _repair_tail(fd: int, path: str) -> None:
    """Move bytes after the last newline (a crashed writer's partial line) to ``path.torn``."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    cut = os.pread(fd, size, 0).rfind(b"\n") + 1  # rare path: reading it all is fine
    tail = os.pread(fd, size - cut, cut)
    try:
        complete = not tail.strip() or isinstance(json.loads(tail), dict)
    except ValueError:
        complete = False
    if complete:  # only the newline is missing (hand edit or short write): keep the row
        os.write(fd, b"\n")
        return
    with open(path + ".torn", "ab") as f:
        f.write(tail + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.ftruncate(fd, cut)
    warnings.warn(
        f"{path}: moved a torn last line ({len(tail)} bytes, left by an interrupted "
        f"write) to {path}.torn",
        stacklevel=3,
    )


def append_rows(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Validate all ``rows``, then append them in one locked write (all or nothing)."""
    path = os.fspath(path)
    data = b"".join(_line(r) for r in rows)
    if not data:
        return
    parent = os.path.dirname(path) or "."
    try:
        os.makedirs(parent, exist_ok=True)
        created = not os.path.exists(path)
        fd = _open_locked(path)
    except OSError as e:
        raise _unwritable(path, e) from None
    start = -1
    try:
        _repair_tail(fd, path)
        start = os.fstat(fd).st_size
        done = os.write(fd, data)
        while done < len(data):  # a regular file takes it all at once unless the disk is full
            done += os.write(fd, data[done:])
        os.fsync(fd)
    except OSError as e:
        if start >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)  # never leave a partial line behind
        raise _unwritable(path, e) from None
    finally:
        os.close(fd)
    if created:  # make the new file's directory entry durable too (best effort)
        with contextlib.suppress(OSError):
            dir_fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def append_row(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Validate ``row`` and append it as one JSON line (locked, torn-tail safe, fsynced)."""
    append_rows(path, [row])


def _v0_to_v1(row: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (no schema_version) named the per-length accuracies ``accuracy``."""
    row = dict(row)
    if "accuracy" in row and "accuracy_by_length" not in row:
        row["accuracy_by_length"] = row.pop("accuracy")
    row["schema_version"] = 1
    return row


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


@dataclass
class ReadResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


def _scan(path: str, strict: bool) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line, upgraded row, "") per row, or (line, None, message) per unparseable line."""
    try:
        with open(path, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            data = f.read()
    except FileNotFoundError:
        if strict:
            raise LeaderboardError(f"no leaderboard at {path}; check the path") from None
        return
    except OSError as e:
        raise LeaderboardError(f"cannot read leaderboard {path}: {e.strerror or e}") from None
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            yield n, None, "not valid JSON (torn or corrupt line)"
            continue
        if not isinstance(row, dict):
            yield n, None, "not a JSON object"
            continue
        version = row.get("schema_version", 0)
        if _is_int(version) and version > SCHEMA_VERSION:
            raise LeaderboardError(
                f"{path}:{n}: row written by a newer che-bench (schema "
                f"{version}); upgrade che-bench"
            )
        while _is_int(version) and version in _UPGRADES:
            row = _UPGRADES[version](row)
            version = row["schema_version"]
        yield n, row, ""


def read_rows(path: str | os.PathLike[str], *, strict: bool = False) -> ReadResult:
    """Valid rows (upgraded to SCHEMA_VERSION) and (line, message) for each skipped line.

    Missing file: empty result. ``strict``: a missing file or any problem raises instead.
    """
    path, result = os.fspath(path), ReadResult()
    for n, row, message in _scan(path, strict):
        problems = [message] if row is None else row_problems(row)
        if problems:
            result.problems.append((n, "; ".join(problems)))
        else:
            result.rows.append(row)  # type: ignore[arg-type]
    if result.problems:
        (n, message), count = result.problems[0], len(result.problems)
        if strict:
            raise LeaderboardError(f"{path}:{n}: {message} ({count} bad line(s))")
        warnings.warn(
            f"{path}: skipped {count} bad line(s), first at line {n}: {message}; run "
            f"`che-bench leaderboard verify {path}`",
            stacklevel=2,
        )
    return result


def completed_keys(path: str | os.PathLike[str]) -> set[str]:
    """run_keys of the runs that finished with status "ok" (to skip them on resume)."""
    return {r["run_key"] for r in read_rows(path).rows if r["status"] == "ok"}


@dataclass
class VerifyReport:
    path: str
    n_rows: int = 0  # lines that hold a JSON object, valid or not
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # run_key -> ok lines
    corrupt: list[tuple[int, str]] = field(default_factory=list)
    schema: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.corrupt or self.schema)

    def format(self, limit: int = 10) -> str:
        """A short human summary: one headline, then at most ``limit`` problem lines."""
        items = [f"line {n}: corrupt: {m}" for n, m in self.corrupt]
        items += [f"line {n}: schema: {m}" for n, m in self.schema]
        items += [
            f"duplicate run_key {k} (status ok) on lines {', '.join(map(str, ns))}"
            for k, ns in self.duplicates.items()
        ]
        head = f"{self.path}: {self.n_rows} rows, " + (
            f"{len(items)} problem(s)" if items else "OK"
        )
        more = [f"... and {len(items) - limit} more"] if len(items) > limit else []
        return "\n".join([head] + ["  " + s for s in items[:limit]] + more)


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Check every line: corrupt lines, schema problems, run_keys with more than one ok row."""
    report = VerifyReport(os.fspath(path))
    ok_lines: dict[str, list[int]] = {}
    for n, row, message in _scan(report.path, strict=True):
        if row is None:
            report.corrupt.append((n, message))
            continue
        report.n_rows += 1
        problems = row_problems(row)
        if problems:
            report.schema.append((n, "; ".join(problems)))
        if row.get("status") == "ok" and isinstance(row.get("run_key"), str):
            ok_lines.setdefault(row["run_key"], []).append(n)
    report.duplicates = {k: ns for k, ns in ok_lines.items() if len(ns) > 1}
    return report
