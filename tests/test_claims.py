"""Claims: a run is claimed before it runs, so overlapping sweeps into one leaderboard split
the grid (no cell twice, none lost), and a dead holder's claim is taken over."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from che_bench.results.leaderboard import read_rows, verify

ROOT = Path(__file__).resolve().parents[1]


def write_claim(folder: Path, key: str, age: float = 0.0, **holder) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": "2026-01-01T00:00:00+00:00", "token": "f" * 32, **holder}  # fmt: skip
    path = folder / key
    path.write_text(json.dumps(data) if holder.get("pid", 1) is not None else "")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- claim files ---------------------------------------------------------------------------
def test_claim_is_exclusive_says_who_and_is_released(tmp_path):
    from che_bench.running.claims import Claims

    board = tmp_path / "lb.jsonl"
    with Claims(board) as mine, Claims(board) as theirs:
        assert mine.claim("k-s0") is None and mine.claim("k-s0") is None  # ours: idempotent
        holder = theirs.claim("k-s0")
        assert holder is not None and holder.pid == os.getpid()
        assert re.fullmatch(rf"pid {os.getpid()} on host \S+ since 20\S+", holder.describe())
        stored = json.loads((tmp_path / "lb.jsonl.claims" / "k-s0").read_text())
        assert {"pid", "host", "started"} <= set(stored)
        mine.release("k-s0")
        assert not (tmp_path / "lb.jsonl.claims" / "k-s0").exists()
        assert theirs.claim("k-s0") is None
        mine.claim("other-s1")
    assert sorted(p.name for p in (tmp_path / "lb.jsonl.claims").iterdir()) == [".lock"]


@pytest.mark.parametrize(
    ("holder", "age", "stale"),
    [
        ({}, 0, False),  # this very process: alive
        ({"pid": "dead"}, 0, True),  # its pid has ended
        ({"pid_start": 1}, 0, True),  # its pid now belongs to another process
        ({"host": "elsewhere"}, 60, False),  # another host, refreshed a minute ago
        ({"host": "elsewhere"}, 11 * 60, True),  # ... not refreshed for 11 minutes
        ({"pid": None}, 1, False),  # empty: its writer is still writing it
        ({"pid": None}, 120, True),  # ... and is not, two minutes on
    ],
)
def test_stale_claims_are_taken_over(tmp_path, holder, age, stale):
    from che_bench.running.claims import Claims

    if holder.get("pid") == "dead":
        holder["pid"] = dead_pid()
    path = write_claim(tmp_path / "lb.jsonl.claims", "k-s0", age, **holder)
    with Claims(tmp_path / "lb.jsonl") as claims:
        got = claims.claim("k-s0")
        assert (got is None) == stale
        if stale:
            assert json.loads(path.read_text())["token"] == claims.me.token
        elif holder.get("pid", 1) is None:
            assert got.describe().startswith("a process starting since ")


def test_release_leaves_a_claim_someone_else_took_over(tmp_path):
    from che_bench.running.claims import Claims

    with Claims(tmp_path / "lb.jsonl") as claims:
        claims.claim("k-s0")
        path = write_claim(claims.folder, "k-s0", token="e" * 32)  # taken over meanwhile
        claims.release("k-s0")
        assert path.exists()


def test_heartbeat_refreshes_held_claims(tmp_path, monkeypatch):
    from che_bench.running import claims as mod

    monkeypatch.setattr(mod, "HEARTBEAT_S", 0.05)
    with mod.Claims(tmp_path / "lb.jsonl") as claims:
        claims.claim("k-s0")
        path = claims.folder / "k-s0"
        os.utime(path, (0, 0))
        deadline = time.monotonic() + 10
        while path.stat().st_mtime == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert time.time() - path.stat().st_mtime < 10


def _race(board: str, key: str, start, results) -> None:
    from che_bench.running.claims import Claims

    claims = Claims(Path(board))
    start.wait()
    results.put((os.getpid(), claims.claim(key) is None))
    time.sleep(0.5)  # hold it while the others try


@pytest.mark.parametrize("stale_first", [False, True])
def test_one_winner_among_racing_processes(tmp_path, stale_first):
    """Eight processes claim one run_key at once (a fresh one, or over a dead holder's
    claim that all of them see as stale): exactly one gets it."""
    board = tmp_path / "lb.jsonl"
    if stale_first:
        write_claim(tmp_path / "lb.jsonl.claims", "k-s0", pid=dead_pid())
    context = mp.get_context("fork")
    start, results = context.Barrier(8), context.Queue()
    procs = [context.Process(target=_race, args=(str(board), "k-s0", start, results))
             for _ in range(8)]  # fmt: skip
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(won for _, won in outcomes) == 1, outcomes


# -- overlapping sweeps --------------------------------------------------------------------
GRID = ["--task", "parity_check", "--task", "even_pairs", "--pe", "nope", "--pe", "alibi",
        "--seeds", "0-1", "--preset", "smoke", "--steps", "3", "--set", "eval_samples=2",
        "--set", "test_lengths=41-41", "--set", "train_lengths=1-8", "--jobs", "1"]  # fmt: skip


def sweep(board: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    args = [sys.executable, "-m", "che_bench.cli", "sweep", *GRID, "--device", "cpu",
            "--leaderboard", str(board), "--run-dir", str(cwd / "runs")]  # fmt: skip
    return subprocess.Popen(args, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_two_overlapping_sweeps_split_the_grid(tmp_path):
    board = tmp_path / "lb.jsonl"
    first, second = sweep(board, tmp_path), sweep(board, tmp_path)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    for proc, (out, err) in zip((first, second), outs):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in err
    rows = read_rows(board).rows
    assert all(r.status == "ok" for r in rows)
    counts = Counter(r.run_key for r in rows)
    assert len(counts) == 8 and set(counts.values()) == {1}, counts  # none twice, none lost
    assert verify(board).ok
    ran = [len(re.findall(r"^\[\s*\d+/\d+\] ok ", out, re.M)) for out, _ in outs]
    assert sum(ran) == 8, ran  # each cell was run by one of the two sweeps
    for out, _ in outs:
        for line in re.findall(r"^\[\s*\d+/\d+\] skipped .*$", out, re.M):
            assert re.search(r"claimed by pid \d+ on host \S+ since|already ok", line), line
    third = sweep(board, tmp_path)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0 and "8 already ok" in out and "0 to run" in out, out + err
    assert not list((tmp_path / "lb.jsonl.claims").glob("*-s*"))  # every claim released
