"""One row per run: `run` skips a run_key that already has an ok row (and says so), `--force`
re-runs it as a marked re-run, and a crash between the row and the checkpoint's removal
never leads to a second row."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import che_bench
from che_bench.cli import main
from che_bench.config import resolve
from che_bench.results.leaderboard import append_row, completed_keys, read_rows, verify
from che_bench.results.record import SCHEMA_VERSION

#: Each run takes about a second; a checkpoint every step, so one is left at the end.
TINY = {"steps": 3, "batch_size": 8, "train_lengths": (1, 8), "test_lengths": (41, 41),
        "eval_samples": 2, "eval_batch_size": 2, "checkpoint_every": 1}  # fmt: skip
CLI_TINY = ["--preset", "smoke", "--steps", "3", "--batch-size", "8", "--train-lengths", "1-8",
            "--test-lengths", "41-41", "--eval-samples", "2", "--eval-batch-size", "2",
            "--checkpoint-every", "1", "--device", "cpu"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(seed: int = 0):
    return resolve("parity_check", "nope", preset="smoke", seed=seed, **TINY)


def run(board: Path, runs: Path, **kwargs):
    return che_bench.run(config(), leaderboard=board, device="cpu", run_dir=runs, **kwargs)


def killed(*args) -> None:
    """Stands in for the checkpoint's removal: the process dies right after the row."""
    raise SystemExit("killed after the row was written")


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_library_run_twice_appends_one_row_and_says_so(tmp_path):
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    first = run(board, runs)
    with pytest.warns(UserWarning, match=r"already ok \(line 1, score .*\) in .*lb.jsonl"):
        again = run(board, runs)
    assert again == first  # the existing row, not a new run
    assert len(read_rows(board).rows) == 1 and verify(board).ok


def test_cli_run_twice_skips_with_one_line_and_shows_the_row(tmp_path):
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    args = ["run", "--task", "parity_check", "--pe", "nope", *CLI_TINY,
            "--leaderboard", str(board), "--run-dir", str(runs)]  # fmt: skip
    assert cli(*args).exit_code == 0
    second = cli(*args)
    assert second.exit_code == 0, second.output
    (row,) = read_rows(board).rows
    assert row.run_key == config().run_key  # the flags are the library's TINY config
    skipped = [line for line in second.output.splitlines() if line.startswith("skipped:")]
    assert skipped == [
        f"skipped: run {row.run_key} is already ok (line 1, score {row.score:.4f}, "
        f"{row.timestamp}) in {board}; --force runs it again"
    ]
    assert "run key" in second.output and "appended" not in second.output  # the row, shown
    assert len(read_rows(board).rows) == 1 and verify(board).ok


def test_force_reruns_and_marks_the_row_so_verify_stays_ok(tmp_path):
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    args = ["run", "--task", "parity_check", "--pe", "nope", *CLI_TINY,
            "--leaderboard", str(board), "--run-dir", str(runs)]  # fmt: skip
    assert cli(*args).exit_code == 0
    forced = cli(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "appended 1 row" in forced.output and "marked rerun" in forced.output
    rows = read_rows(board).rows
    assert [r.rerun for r in rows] == [False, True] and rows[0].run_id != rows[1].run_id
    assert rows[0].score == rows[1].score  # same config, same seed, same numbers
    assert verify(board).ok and verify(board).reruns == 1
    assert verify(board).format().endswith("2 rows (1 forced re-run(s)), OK")
    assert completed_keys(board) == {rows[0].run_key}
    # two ok rows for one run_key that are not marked are still a duplicate
    append_row(board, rows[0].__class__.from_dict({**rows[1].to_dict(), "rerun": False}))
    assert list(verify(board).duplicates) == [rows[0].run_key]
    assert not any(runs.glob("*/checkpoint.pt"))


def test_force_without_an_ok_row_is_an_ordinary_run(tmp_path):
    board = tmp_path / "lb.jsonl"
    assert run(board, tmp_path / "runs", force=True).rerun is False


def test_crash_between_the_row_and_the_checkpoint_removal(tmp_path, monkeypatch):
    """The row is fsynced, then the process dies before removing the checkpoint: running
    the command again must not add a second row, and must remove the leftover checkpoint."""
    from che_bench.running import runner

    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    checkpoint = runs / config().run_key / "checkpoint.pt"

    with monkeypatch.context() as patch:
        patch.setattr(runner, "remove_checkpoint_if_ok", killed)
        with pytest.raises(SystemExit):
            run(board, runs)
    assert checkpoint.exists() and len(read_rows(board).rows) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(board, runs)
    assert len(read_rows(board).rows) == 1 and verify(board).ok
    assert not checkpoint.exists() and (checkpoint.parent / "model.pt").exists()


def test_a_sweep_removes_the_checkpoint_a_finished_run_left(tmp_path, monkeypatch):
    from che_bench.running import runner

    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    with monkeypatch.context() as patch:
        patch.setattr(runner, "remove_checkpoint_if_ok", killed)
        with pytest.raises(SystemExit):
            run(board, runs)
    assert (runs / config().run_key / "checkpoint.pt").exists()
    sets = [f"--set={k}={v[0]}-{v[1]}" if isinstance(v, tuple) else f"--set={k}={v}"
            for k, v in TINY.items()]  # fmt: skip
    result = cli("sweep", "--task", "parity_check", "--pe", "nope", "--preset", "smoke", *sets,
                 "--executor", "inline", "--leaderboard", str(board),
                 "--run-dir", str(runs))  # fmt: skip
    assert result.exit_code == 0 and "1 already ok" in result.output, result.output
    assert not (runs / config().run_key / "checkpoint.pt").exists()
    assert len(read_rows(board).rows) == 1


def test_run_seeds_skips_done_seeds_and_forces_marked_reruns(tmp_path):
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    base = ["run", "--task", "parity_check", "--pe", "nope", *CLI_TINY,
            "--leaderboard", str(board), "--run-dir", str(runs)]  # fmt: skip
    assert cli(*base, "--seed", "1").exit_code == 0  # seed 1 alone first
    result = cli(*base, "--seeds", "0-2")
    assert result.exit_code == 0, result.output
    assert re.search(r"^seed 1: skipped: run \S+-s1 is already ok \(line 1,", result.output, re.M)
    assert "appended 2 rows" in result.output
    again = cli(*base, "--seeds", "0-2")
    assert again.exit_code == 0 and again.output.count("skipped:") == 3, again.output
    forced = cli(*base, "--seeds", "0-1", "--force")
    assert forced.exit_code == 0 and "appended 2 rows" in forced.output, forced.output
    rows = read_rows(board).rows
    assert sorted((r.seed, r.rerun) for r in rows) == [
        (0, False), (0, True), (1, False), (1, True), (2, False)
    ]  # fmt: skip
    assert verify(board).ok and not any(runs.glob("*/checkpoint.pt"))


def test_run_claimed_by_a_live_process_is_skipped(tmp_path):
    import subprocess
    import sys

    from che_bench.running.gate import RunClaimed

    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = Path(f"{board}.claims") / config().run_key
        claim.parent.mkdir()
        holder = {"pid": other.pid, "host": __import__("socket").gethostname(),
                  "started": "2026-01-01T00:00:00+00:00", "token": "x" * 32}  # fmt: skip
        claim.write_text(json.dumps(holder))
        with pytest.raises(RunClaimed, match=rf"claimed by pid {other.pid} on host"):
            run(board, runs)
        args = ["run", "--task", "parity_check", "--pe", "nope", *CLI_TINY,
                "--leaderboard", str(board), "--run-dir", str(runs)]  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert f"skipped: run {config().run_key} is claimed by pid {other.pid}" in result.output
        assert not board.exists() and claim.exists()  # nothing ran, the claim is not ours
    finally:
        other.kill()
        other.wait()
    assert run(board, runs).status == "ok"  # its holder is gone: the claim is taken over
    assert not claim.exists()


def test_version_1_rows_read_unchanged(tmp_path):
    """A leaderboard written before ``rerun`` existed reads as it did: no row is a re-run,
    so two ok rows of one run_key are still a duplicate."""
    board = tmp_path / "lb.jsonl"
    row = run(board, tmp_path / "runs").to_dict()
    version_1 = ("rerun", "train_accuracy_by_length", "train_score")
    old = {k: v for k, v in row.items() if k not in version_1} | {"schema_version": 1}
    old["versions"] = {k: v for k, v in row["versions"].items() if k != "code"}
    board.write_text(json.dumps(old) + "\n")
    (back,) = read_rows(board).rows
    assert back.rerun is False and back.schema_version == SCHEMA_VERSION
    assert back.train_accuracy_by_length == {} and back.train_score is None
    upgraded = {**row, "train_accuracy_by_length": {}, "train_score": None,
                "versions": {**row["versions"], "code": None}}  # fmt: skip
    assert back.to_dict() == {**upgraded, "timestamp": back.timestamp, "run_id": back.run_id}
    assert verify(board).ok
    board.write_text(json.dumps(old) + "\n" + json.dumps(old) + "\n")
    assert list(verify(board).duplicates) == [row["run_key"]]
