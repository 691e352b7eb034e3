"""Leaderboard storage: validation, round trip, concurrency, crash repair, upgrades, verify."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from che_bench.errors import LeaderboardError
from che_bench.results.leaderboard import (
    append_row,
    append_rows,
    completed_keys,
    read_rows,
    verify,
)
from che_bench.results.record import (
    ROW_FIELDS,
    SCHEMA_VERSION,
    InvalidRecord,
    RunRecord,
    row_problems,
)

REPO = Path(__file__).resolve().parents[1]


def fields(**over: Any) -> dict[str, Any]:
    """Keyword arguments for a valid RunRecord; ``n_lengths`` sets the accuracy count."""
    n = over.pop("n_lengths", 3)
    base: dict[str, Any] = dict(
        status="ok",
        task="parity_check",
        encoding="rope",
        encoding_options={"base": 10000},
        seed=0,
        lr=1e-4,
        preset="paper",
        config={"steps": 100, "batch": 128},
        config_hash="abc123",
        train_lengths=[1, 40],
        test_lengths=[41, 40 + n],
        accuracy_by_length={str(41 + i): 0.5 + i / (4 * n) for i in range(n)},
        score=0.6,
        chance=0.5,
        steps=100,
        final_loss=0.25,
        wall_time_s=12.5,
        device="cpu",
        versions={"che_bench": "0.1.0", "torch": "2.3.0", "python": "3.11.7", "code": None},
    )
    base.update(over)
    return base


def row(**over: Any) -> RunRecord:
    return RunRecord(**fields(**over))


def smuggled(record: RunRecord, **values: Any) -> RunRecord:
    """``record`` with ``values`` forced in past its checks (as code changing it in place
    would): what the writer must still refuse."""
    for name, value in values.items():
        object.__setattr__(record, name, value)
    return record


def lines_of(path: Path) -> list[bytes]:
    """Raw lines; asserts the file ends with a newline (no torn tail)."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-80:]
    return data.split(b"\n")[:-1]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "lb.jsonl"  # parents are created
    rows = [row(seed=s, score=s / 4) for s in range(3)]
    for r in rows:
        append_row(path, r)
    result = read_rows(path)
    assert result.problems == []
    assert result.rows == rows
    parsed = [json.loads(line) for line in lines_of(path)]
    assert parsed == [r.to_dict() for r in rows]
    assert all(list(p) == list(ROW_FIELDS) for p in parsed)


def test_record_fills_defaults() -> None:
    r = row(seed=7)
    assert r.schema_version == SCHEMA_VERSION
    assert r.run_key == "abc123-s7"
    assert re.fullmatch("[0-9a-f]{32}", r.run_id)
    assert r.error is None
    assert r.timestamp.endswith("+00:00")
    assert row().run_id != row().run_id


def test_nan_and_inf_stored_as_null(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    append_row(
        path,
        row(
            status="diverged",
            score=float("nan"),
            final_loss=float("inf"),
            accuracy_by_length={"41": float("nan")},
            schema_version=SCHEMA_VERSION,
            run_key="abc123-s0",
            run_id="0" * 32,
            error=None,
            timestamp="2024-01-01T00:00:00+00:00",
        ),
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back["score"] is None and back["final_loss"] is None
    assert back["accuracy_by_length"] == {"41": None}


def test_tuples_int_keys_and_scalar_objects_are_normalised() -> None:
    class Scalar:  # stands in for a 0-d numpy/torch value
        shape = ()

        def item(self) -> float:
            return 0.75

    r = row(train_lengths=(1, 40), accuracy_by_length={41: Scalar()}, score=Scalar())
    assert r.train_lengths == [1, 40]
    assert r.accuracy_by_length == {"41": 0.75} and r.score == 0.75


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"score": None, "drop": "score"}, "missing field 'score'"),
        ({"colour": "red"}, "unexpected field 'colour'"),
        ({"score": None, "drop": ("score", "chance")}, "missing fields 'score', 'chance'"),
        ({"status": "great"}, "field 'status'"),
        ({"score": 1.5}, "field 'score'"),
        ({"chance": -0.1}, "field 'chance'"),
        ({"seed": "1"}, "field 'seed'"),
        ({"seed": True}, "field 'seed'"),
        ({"lr": float("nan")}, "field 'lr'"),
        ({"train_lengths": [40, 1]}, "field 'train_lengths'"),
        ({"accuracy_by_length": {"x": 0.5}}, "field 'accuracy_by_length'"),
        ({"versions": {"che_bench": "0.1", "python": "3.11"}}, "field 'versions'"),
        ({"timestamp": "2024-01-01T00:00:00+02:00"}, "field 'timestamp'"),
        ({"run_id": "not-a-uuid"}, "field 'run_id'"),
        ({"run_key": "other-s0"}, "field 'run_key'"),
        ({"schema_version": 0}, "field 'schema_version'"),
    ],
)
def test_validation_names_the_field(tmp_path: Path, change: dict[str, Any], needle: str) -> None:
    bad, change = row().to_dict(), dict(change)
    drop = change.pop("drop", None)
    bad.update(change)
    for name in [drop] if isinstance(drop, str) else drop or ():
        del bad[name]
    path = tmp_path / "lb.jsonl"
    assert any(needle in p for p in row_problems(bad))
    if bad.get("schema_version") == 0:  # a stored version-0 row is upgraded, not refused
        assert RunRecord.from_dict(bad).schema_version == SCHEMA_VERSION
    else:
        with pytest.raises(InvalidRecord, match=re.escape(needle)):
            RunRecord.from_dict(bad)
    if set(bad) == set(ROW_FIELDS):  # caught when the record is built, before it is precious
        with pytest.raises(InvalidRecord, match=re.escape(needle)):
            RunRecord(**bad)
        with pytest.raises(InvalidRecord, match=re.escape(needle)):
            append_row(path, smuggled(row(), **change))
    else:  # no record has such fields; the writer takes nothing else
        with pytest.raises(TypeError, match="RunRecords"):
            append_row(path, bad)  # type: ignore[arg-type]
    assert not path.exists()


def test_unserialisable_value_is_refused(tmp_path: Path) -> None:
    bad = {**row().to_dict(), "config": {"path": Path("/x")}}
    with pytest.raises(LeaderboardError, match="not JSON-serializable"):
        append_row(tmp_path / "lb.jsonl", smuggled(row(), config={"path": Path("/x")}))
    assert not (tmp_path / "lb.jsonl").exists()
    with pytest.raises(LeaderboardError, match="not JSON-serializable"):
        RunRecord(**bad)  # caught when the record is built, before it is precious
    with pytest.raises(LeaderboardError, match="not JSON-serializable"):
        RunRecord.from_dict(bad)


def test_append_rows_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    good = [row(seed=s) for s in range(3)]
    with pytest.raises(LeaderboardError, match="field 'score'"):
        append_rows(path, [*good, smuggled(row(seed=9), score=2.0)])
    assert not path.exists()
    append_rows(path, good)
    append_rows(path, [])
    assert [json.loads(x) for x in lines_of(path)] == [r.to_dict() for r in good]


def test_a_batch_is_one_write_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import che_bench.results.leaderboard as lb

    writes: list[bytes] = []

    class CountingOs:  # the os module, as seen by che_bench.results.leaderboard only
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def write(self, fd: int, data: bytes) -> int:
            writes.append(bytes(data))
            return os.write(fd, data)

    monkeypatch.setattr(lb, "os", CountingOs())
    rows = [row(seed=s, n_lengths=460) for s in range(5)]  # ~60 KB: many pages, one call
    append_rows(tmp_path / "lb.jsonl", rows)
    assert len(writes) == 1
    assert [json.loads(x) for x in writes[0].splitlines()] == [r.to_dict() for r in rows]


# A writer process. It loads only che_bench.errors and che_bench.results.{leaderboard,record} (a
# bare package module skips che_bench/__init__.py, which imports torch): startup stays well under
# a second, and neither module may pull torch in.
WRITER = """
import os, sys, time, types
pkg = types.ModuleType("che_bench")
pkg.__path__ = [os.path.join(sys.argv[5], "che_bench")]
sys.modules["che_bench"] = pkg
from che_bench.results.leaderboard import append_row
from che_bench.results.record import RunRecord
assert "torch" not in sys.modules and "numpy" not in sys.modules, "storage imports torch"
path, start, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def row(i):
    n = 460 if i % 5 == 0 else 3 + i % 40  # some rows span several pages
    return RunRecord(status="ok", task="t", encoding="e", encoding_options={}, seed=i, lr=1e-3,
        preset="p", config={"writer": writer, "i": i}, config_hash=f"w{writer}",
        train_lengths=[1, 40], test_lengths=[41, 40 + n],
        accuracy_by_length={str(41 + k): 0.123456789 for k in range(n)}, score=0.5,
        chance=0.5, steps=1, final_loss=0.1, wall_time_s=1.0, device="cpu",
        versions={"che_bench": "0", "torch": "0", "python": "3", "code": "git:0"})
rows = [row(i) for i in range(count if count > 0 else 1000)]
open(f"{start}.ready{writer}", "w").close()
while not os.path.exists(start):
    time.sleep(0.001)
i = 0
while count <= 0 or i < count:
    append_row(path, rows[i % len(rows)])
    i += 1
"""


Procs = list[subprocess.Popen[bytes]]


@pytest.fixture
def spawn_writers() -> Iterator[Callable[[Path, Path, int, int], Procs]]:
    """spawn(path, start, n, count): ``n`` writer processes appending ``count`` rows each
    (forever if 0) once ``start`` exists; returns when all have built their rows."""
    procs: Procs = []

    def spawn(path: Path, start: Path, n: int, count: int) -> Procs:
        for w in range(n):
            args = [sys.executable, "-c", WRITER, str(path), str(start), str(w), str(count)]
            procs.append(subprocess.Popen([*args, str(REPO)], stderr=subprocess.PIPE))
        deadline = time.monotonic() + 60
        while not all(Path(f"{start}.ready{w}").exists() for w in range(n)):
            failed = [p for p in procs if p.poll() is not None]
            assert not failed, failed[0].communicate()[1].decode()
            assert time.monotonic() < deadline, "writers did not start"
            time.sleep(0.01)
        return procs

    yield spawn
    for p in procs:  # a failed test must not leave writers behind
        if p.poll() is None:
            p.kill()
        p.wait()
        if p.stderr:
            p.stderr.close()


def test_concurrent_writers_lose_and_tear_nothing(tmp_path: Path, spawn_writers: Any) -> None:
    path, start = tmp_path / "lb.jsonl", tmp_path / "go"
    n_writers, per_writer = 8, 200
    procs = spawn_writers(path, start, n_writers, per_writer)
    start.touch()  # release them at once
    reads = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reader must never see a partial line
        while any(p.poll() is None for p in procs):
            assert read_rows(path).problems == []
            reads += 1
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err.decode()
    parsed = [json.loads(line) for line in lines_of(path)]
    seen = [(r["config"]["writer"], r["config"]["i"]) for r in parsed]
    assert len(seen) == n_writers * per_writer
    assert set(seen) == {(w, i) for w in range(n_writers) for i in range(per_writer)}
    assert reads > 0
    assert verify(path).ok
    assert not Path(str(path) + ".torn").exists()


def test_torn_tail_is_reported_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    append_rows(path, [row(seed=0), row(seed=1)])
    half = row(seed=2).to_json().encode()[:150]
    with open(path, "ab") as f:
        f.write(half)
    with pytest.warns(UserWarning, match="1 bad line.*line 3"):
        result = read_rows(path)
    assert [r.seed for r in result.rows] == [0, 1]
    assert [n for n, _ in result.problems] == [3]
    assert "torn" in result.problems[0][1]
    assert [n for n, _ in verify(path).corrupt] == [3]

    new = row(seed=3)
    with pytest.warns(UserWarning, match="torn last line"):
        append_row(path, new)
    assert Path(str(path) + ".torn").read_bytes() == half + b"\n"
    parsed = [json.loads(line) for line in lines_of(path)]
    assert [r["seed"] for r in parsed] == [0, 1, 3] and parsed[-1] == new.to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_rows(path).problems == []


def test_complete_row_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    first = row(seed=0)
    path.write_text(first.to_json())  # e.g. a hand edit that dropped the final newline
    assert read_rows(path).rows == [first]
    append_row(path, row(seed=1))
    assert [json.loads(x)["seed"] for x in lines_of(path)] == [0, 1]
    assert not Path(str(path) + ".torn").exists()


def test_sigkill_while_appending_leaves_no_torn_line(tmp_path: Path, spawn_writers: Any) -> None:
    path, start = tmp_path / "lb.jsonl", tmp_path / "go"
    (proc,) = spawn_writers(path, start, 1, 0)  # appends forever
    start.touch()
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    *complete, tail = path.read_bytes().split(b"\n")
    assert len(complete) > 10
    for line in complete:
        json.loads(line)
    # Linux may cut a multi-page write short when SIGKILL lands between pages: at most a
    # tail without newline, which the next append moves aside (checked here when it happens).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        append_row(path, row(seed=12345))  # also proves the dead writer's lock was released
    assert bool(tail) == any("torn last line" in str(w.message) for w in caught)
    parsed = [json.loads(line) for line in lines_of(path)]
    assert len(parsed) == len(complete) + 1 and parsed[-1]["seed"] == 12345


def test_file_replaced_while_waiting_for_the_lock(tmp_path: Path) -> None:
    path, old_copy = tmp_path / "lb.jsonl", tmp_path / "old.jsonl"
    append_row(path, row(seed=0))
    os.link(path, old_copy)  # keeps the old inode visible
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        writer = threading.Thread(target=append_row, args=(path, row(seed=2)))
        writer.start()
        time.sleep(0.2)  # the writer now waits for the lock on the old inode
        replacement = tmp_path / "new.jsonl"
        replacement.write_text(row(seed=1).to_json() + "\n")
        os.replace(replacement, path)
    writer.join(10)
    assert [json.loads(x)["seed"] for x in lines_of(path)] == [1, 2]
    assert [json.loads(x)["seed"] for x in lines_of(old_copy)] == [0]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    append_row(path, row())
    with open(path, "a") as f:
        f.write(json.dumps({**row().to_dict(), "schema_version": SCHEMA_VERSION + 1}) + "\n")
    message = rf"lb.jsonl:2: .*newer che-bench \(schema {SCHEMA_VERSION + 1}\); upgrade che-bench"
    for call in (read_rows, completed_keys, verify):
        with pytest.raises(LeaderboardError, match=message):
            call(path)


def test_version_0_row_is_upgraded(tmp_path: Path) -> None:
    current = row(seed=4)
    skip = ("schema_version", "accuracy_by_length")
    old = {k: v for k, v in current.to_dict().items() if k not in skip}
    old["accuracy"] = current.accuracy_by_length
    path = tmp_path / "lb.jsonl"
    path.write_text(json.dumps(old) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = read_rows(path)
    assert result.problems == [] and result.rows == [current]
    assert completed_keys(path) == {"abc123-s4"}
    assert verify(path).ok


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    assert read_rows(path).rows == [] and read_rows(path).problems == []
    assert completed_keys(path) == set()
    with pytest.raises(LeaderboardError, match="no leaderboard at .*nope.jsonl"):
        read_rows(path, strict=True)
    with pytest.raises(LeaderboardError, match="no leaderboard"):
        verify(path)


def test_completed_keys_counts_only_ok_runs(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    append_rows(
        path,
        [
            row(seed=0),
            row(seed=1, status="failed", error="OOM", score=None),
            row(seed=2, status="diverged", score=None),
            row(seed=3),
        ],
    )
    assert completed_keys(path) == {"abc123-s0", "abc123-s3"}


def write_messy(path: Path) -> None:
    lines = [
        row(seed=0).to_json(),  # 1
        "",  # 2 blank: skipped, not a problem
        '{"run_key": "abc123-s5", "sta',  # 3 torn
        row(seed=1).to_json(),  # 4
        json.dumps({**row(seed=2).to_dict(), "score": 1.5}),  # 5 schema
        row(seed=0).to_json(),  # 6 duplicate ok run of line 1
        row(seed=1, status="failed").to_json(),  # 7 failed retry of line 4: no duplicate
        "[1, 2]",  # 8 not an object
    ]
    path.write_text("\n".join(lines) + "\n")


def test_verify_reports_problems_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    write_messy(path)
    report = verify(path)
    assert not report.ok
    assert report.n_rows == 5
    assert [n for n, _ in report.corrupt] == [3, 8]
    assert [n for n, _ in report.schema] == [5] and "field 'score'" in report.schema[0][1]
    assert report.duplicates == {"abc123-s0": [1, 6]}
    text = report.format()
    assert text.splitlines()[0].endswith("5 rows, 4 problem(s)")
    for needle in ("line 3: corrupt", "line 5: schema", "line 8: corrupt", "lines 1, 6"):
        assert needle in text
    assert len(report.format(limit=2).splitlines()) == 4  # headline, 2 items, "... and 2 more"


def test_verify_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    append_rows(path, [row(seed=s) for s in range(4)])
    report = verify(path)
    assert report.ok and report.n_rows == 4
    assert report.format() == f"{path}: 4 rows, OK"


def test_read_rows_skips_and_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "lb.jsonl"
    write_messy(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_rows(path)
    assert len(caught) == 1 and "3 bad line(s), first at line 3" in str(caught[0].message)
    assert [n for n, _ in result.problems] == [3, 5, 8]
    assert [r.seed for r in result.rows] == [0, 1, 0, 1]
    with pytest.raises(LeaderboardError, match=r"lb.jsonl:3: .*\(3 bad line\(s\)\)"):
        read_rows(path, strict=True)


def one_line_error(path: Path, needle: str) -> None:
    with pytest.raises(LeaderboardError) as info:
        append_row(path, row())
    message = str(info.value)
    assert "\n" not in message and str(path) in message and needle in message


def test_path_that_is_a_directory(tmp_path: Path) -> None:
    one_line_error(tmp_path, "is a directory")


def test_path_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    one_line_error(tmp_path / "file" / "lb.jsonl", "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        one_line_error(ro / "lb.jsonl", "permission denied")
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux /dev/full")
def test_full_disk_is_reported() -> None:
    one_line_error(Path("/dev/full"), "No space left on device")
