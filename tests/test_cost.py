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


def test_a_run_costs_its_steps_plus_every_evaluated_length() -> None:
    """Steps, the test lengths scored (strided ones only) and the in-distribution lengths."""
    task = get_task("parity_check")

    def seconds(n: int) -> float:  # linear in tokens: 2 s per sub-batch at 41 tokens
        return 2.0 * (task.input_length(n) + task.output_length(n)) / 42

    rates = Rates(0.5, ((42, 2.0), (44, 2.0 * 44 / 42)))
    config = resolve("parity_check", "nope", preset="smoke", train_eval_samples=0)
    sub_batches = config.eval_samples // config.eval_batch_size  # smoke: lengths 41-43
    expected = 20 * 0.5 + sub_batches * sum(seconds(n) for n in (41, 42, 43))
    assert run_seconds(config, rates) == pytest.approx(expected)
    seen = resolve("parity_check", "nope", preset="smoke", train_eval_samples=16)
    in_distribution = sum(seconds(n) for n in range(1, 21))  # smoke trains on 1-20
    assert run_seconds(seen, rates) == pytest.approx(expected + in_distribution)
    sparse = resolve("parity_check", "nope", preset="smoke", train_eval_samples=0,
                     test_lengths="41-43:2")  # fmt: skip
    assert run_seconds(sparse, rates) == pytest.approx(expected - sub_batches * seconds(42))


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
