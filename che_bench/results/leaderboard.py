"""Leaderboard storage: an append-only JSON-lines file holding one RunRecord per finished run.

Writers take an exclusive ``flock`` on the leaderboard file itself (no sidecar lock file), repair a
torn tail left by a crashed writer, and write each batch with one ``os.write`` on an O_APPEND fd
followed by ``fsync``. Readers take a shared lock, so they never see a half-written line.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from che_bench.errors import LeaderboardError
from che_bench.results.record import InvalidRecord, RunRecord, row_problems, upgrade


def _line(record: RunRecord) -> bytes:
    """The record as one validated JSON line (NaN/inf stored as null)."""
    if not isinstance(record, RunRecord):
        raise TypeError(f"leaderboards store RunRecords, got {type(record).__name__}")
    return (record.to_json() + "\n").encode()


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


def append_rows(path: str | os.PathLike[str], records: Iterable[RunRecord]) -> None:
    """Validate all ``records``, then append them in one locked write (all or nothing)."""
    append_lines(path, b"".join(_line(r) for r in records))


def append_lines(path: str | os.PathLike[str], data: bytes) -> None:
    """Append complete ``\n``-terminated lines in one locked, fsynced write (all or nothing),
    repairing a torn tail first: the writer behind leaderboards and check histories."""
    path = os.fspath(path)
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


def append_row(path: str | os.PathLike[str], record: RunRecord) -> None:
    """Validate ``record`` and append it as one JSON line (locked, torn-tail safe, fsynced)."""
    append_rows(path, [record])


@dataclass
class ReadResult:
    rows: list[RunRecord] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: parsing a large leaderboard allocates
    millions of acyclic objects, and each collection would walk the growing heap again
    (a third of a 50 MB read went to it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(
    path: str, strict: bool, start: int = 0, inode: int | None = None
) -> tuple[bytes, int, int | None]:
    """``(data, start, inode)``: the bytes of the file at ``path`` from ``start`` on, read
    under a shared lock. ``start`` falls back to 0 when that file is not ``inode`` or is
    shorter than ``start`` (it was replaced or rewritten). A missing file is ``(b"", 0,
    None)``, or an error if ``strict``."""
    try:
        with open(path, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            stat = os.fstat(f.fileno())
            if stat.st_ino != inode or stat.st_size < start:
                start = 0
            f.seek(start)
            return f.read(), start, stat.st_ino
    except FileNotFoundError:
        if strict:
            raise LeaderboardError(f"no leaderboard at {path}; check the path") from None
        return b"", 0, None
    except OSError as e:
        raise LeaderboardError(f"cannot read leaderboard {path}: {e.strerror or e}") from None


def _scan(path: str, strict: bool) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line, upgraded row, "") per row, or (line, None, message) per unparseable line."""
    yield from _parse(path, _read(path, strict)[0])


def _parse(
    path: str, data: bytes, first_line: int = 1
) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """:func:`_scan` of ``data``, the lines of ``path`` from line ``first_line`` on."""
    for n, raw in enumerate(data.split(b"\n"), first_line):
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
        try:
            row = upgrade(row)
        except LeaderboardError as e:  # a newer schema: never skipped, even when not strict
            raise LeaderboardError(f"{path}:{n}: {e}") from None
        yield n, row, ""


def read_rows(
    path: str | os.PathLike[str], *, strict: bool = False, kinds: Collection[str] = ("train",)
) -> ReadResult:
    """The valid rows of the ``kinds`` asked for (by default the training rows, not the
    ``evaluation`` rows of ``che-bench evaluate``) as RunRecords upgraded to the current
    schema, and (line, message) for each skipped line.

    Missing file: empty result. ``strict``: a missing file or any problem raises instead.
    """
    path, result = os.fspath(path), ReadResult()
    with _gc_paused():
        for n, row, message in _scan(path, strict):
            if row is None:
                result.problems.append((n, message))
                continue
            try:
                record = RunRecord.from_stored(row)
            except InvalidRecord as e:
                result.problems.append((n, "; ".join(e.problems)))
                continue
            if record.kind in kinds:
                result.rows.append(record)
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
    """run_keys of the runs that finished with status "ok" (to skip them on resume); a
    forced re-run's ``ok`` row (``rerun`` true) counts like any other."""
    return {r.run_key for r in read_rows(path).rows if r.status == "ok"}


class OkRows:
    """The latest ``ok`` row of each run_key in a leaderboard, with its line number, kept
    current cheaply: each :meth:`refresh` parses only the lines appended since the last one
    (all of them again if the file was replaced or rewritten). Lines that are not valid
    rows are skipped without a warning (:func:`read_rows` reports them)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.rows: dict[str, tuple[int, RunRecord]] = {}
        self._offset, self._lines, self._inode = 0, 0, None

    def refresh(self) -> dict[str, tuple[int, RunRecord]]:
        """Read what was appended since the last call; ``run_key -> (line, record)``."""
        data, start, self._inode = _read(self.path, False, self._offset, self._inode)
        if start != self._offset:
            self.rows, self._lines = {}, 0
        data = data[: data.rfind(b"\n") + 1]  # a torn last line is read once it is whole
        with _gc_paused():
            for n, row, _ in _parse(self.path, data, self._lines + 1):
                if row is not None and row.get("status") == "ok" and row.get("kind") == "train":
                    with contextlib.suppress(InvalidRecord):
                        self.rows[row["run_key"]] = (n, RunRecord.from_stored(row))
        self._offset, self._lines = start + len(data), self._lines + data.count(b"\n")
        return self.rows


@dataclass
class VerifyReport:
    path: str
    n_rows: int = 0  # lines that hold a JSON object, valid or not
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # run_key -> ok lines
    reruns: int = 0  # ok rows marked ``rerun`` (forced re-runs: never duplicates)
    evaluations: int = 0  # rows of kind ``evaluation`` (re-scorings: never duplicates)
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
        notes = [f"{self.reruns} forced re-run(s)"] if self.reruns else []
        notes += [f"{self.evaluations} evaluation row(s)"] if self.evaluations else []
        reruns = f" ({', '.join(notes)})" if notes else ""
        head = f"{self.path}: {self.n_rows} rows{reruns}, " + (
            f"{len(items)} problem(s)" if items else "OK"
        )
        more = [f"... and {len(items) - limit} more"] if len(items) > limit else []
        return "\n".join([head] + ["  " + s for s in items[:limit]] + more)


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Check every line: corrupt lines, schema problems, run_keys with more than one ok row
    (a row marked ``rerun``, written by ``run --force``, is a deliberate second one and
    never a duplicate; nor is an ``evaluation`` row, written by ``che-bench evaluate``)."""
    report = VerifyReport(os.fspath(path))
    ok_lines: dict[str, list[int]] = {}
    with _gc_paused():
        for n, row, message in _scan(report.path, strict=True):
            if row is None:
                report.corrupt.append((n, message))
                continue
            report.n_rows += 1
            problems = row_problems(row)
            if problems:
                report.schema.append((n, "; ".join(problems)))
            if row.get("kind") == "evaluation":
                report.evaluations += 1
                continue
            if row.get("status") != "ok" or not isinstance(row.get("run_key"), str):
                continue
            if row.get("rerun") is True:
                report.reruns += 1
            else:
                ok_lines.setdefault(row["run_key"], []).append(n)
    report.duplicates = {k: ns for k, ns in ok_lines.items() if len(ns) > 1}
    return report
