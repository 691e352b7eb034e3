"""``CHE_BENCH_HOME``: every command's default leaderboard and run folder live there, so a
project's commands find the same results from any folder; without it, the current folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from che_bench.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--steps", "3", "--batch-size", "4", "--train-lengths", "1-8", "--test-lengths", "41-42",
        "--eval-samples", "4", "--eval-batch-size", "4"]  # fmt: skip


def cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def test_the_defaults_follow_che_bench_home(tmp_path, monkeypatch):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {"CHE_BENCH_HOME": str(home)}
    ran = cli("run", "--task", "parity_check", "--pe", "alibi", "--preset", "smoke",
              "--device", "cpu", *TINY, env=env)  # fmt: skip
    assert ran.exit_code == 0, ran.output
    board = home / "leaderboards" / "local.jsonl"
    assert f"appended 1 row to {board}" in " ".join(ran.output.split())
    (row,) = [json.loads(line) for line in board.read_text().splitlines()]
    assert row["status"] == "ok"
    assert (home / "runs" / row["run_key"] / "model.pt").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written where the command ran
    reported = cli("report", "--format", "json", env=env)
    assert reported.exit_code == 0, reported.output
    assert [r["encoding"] for r in json.loads(reported.output)] == ["alibi"]
    listed = cli("runs", "list", env=env)
    assert row["run_key"][:8] in listed.output


def test_without_che_bench_home_the_current_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHE_BENCH_HOME", raising=False)
    ran = cli("run", "--task", "parity_check", "--pe", "nope", "--preset", "smoke",
              "--device", "cpu", "--no-keep-model", *TINY)  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "leaderboards" / "local.jsonl").is_file()

