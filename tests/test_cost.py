"""``sweep --dry-run``'s cost estimate: the arithmetic, and the line it prints."""

from __future__ import annotations

import subprocess
import sys

import pytest

from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.cost import Rates, run_seconds


def test_the_sub_batch_fit_passes_through_both_points() -> None:
    rates = Rates(0.5, ((100, 1.0), (1000, 40.0)))
    assert rates.sub_batch_s(100) == pytest.approx(1.0)
    assert rates.sub_batch_s(1000) == pytest.approx(40.0)
    assert 1.0 < rates.sub_batch_s(500) < 40.0


def test_a_run_costs_its_steps_plus_every_test_length() -> None:
    config = resolve("parity_check", "nope", preset="smoke")  # 20 steps; lengths 41-43
    task = get_task("parity_check")
    tokens = [task.input_length(n) + task.output_length(n) for n in (41, 42, 43)]
    rates = Rates(0.5, ((tokens[0], 2.0), (tokens[-1], 2.0 * tokens[-1] / tokens[0])))
    sub_batches = config.eval_samples // config.eval_batch_size
    expected = 20 * 0.5 + sub_batches * sum(2.0 * t / tokens[0] for t in tokens)
    assert run_seconds(config, rates) == pytest.approx(expected)


def test_dry_run_prints_the_estimate(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "che_bench.cli", "sweep", "--task", "parity_check", "--pe",
         "nope", "--seeds", "0-1", "--preset", "smoke", "--dry-run", "--leaderboard",
         str(tmp_path / "board.jsonl")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("estimated cost"))
    assert "device-hours for 2 runs" in line and "cpu:" in line
    assert not (tmp_path / "board.jsonl").exists()
