"""Training, evaluation and the run lifecycle: determinism, resume after SIGKILL, divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from che_bench.config import resolve
from che_bench.encodings import ENCODINGS, register_encoding
from che_bench.encodings.alibi import ALiBi
from che_bench.generators import get_task
from che_bench.running.runner import build_model, execute
from che_bench.training.evaluate import EvalSpec, evaluate, query_chunk_for
from che_bench.training.metrics import masked_accuracy

TINY = {
    "steps": 6,
    "batch_size": 8,
    "eval_samples": 6,
    "eval_batch_size": 4,
    "test_lengths": (41, 43),
    "train_lengths": (1, 12),
}


def test_same_seed_same_result_different_seed_differs(tmp_path):
    a = execute(resolve("reverse_string", "alibi", preset="smoke", seed=3, **TINY), run_dir=None)
    b = execute(resolve("reverse_string", "alibi", preset="smoke", seed=3, **TINY), run_dir=None)
    c = execute(resolve("reverse_string", "alibi", preset="smoke", seed=4, **TINY), run_dir=None)
    assert a.status == "ok"
    assert a.accuracy_by_length == b.accuracy_by_length and a.score == b.score
    assert a.final_loss == b.final_loss
    assert a.final_loss != c.final_loss


def test_score_is_the_unweighted_mean_over_test_lengths():
    row = execute(resolve("parity_check", "nope", preset="smoke", **TINY), run_dir=None)
    curve = row.accuracy_by_length
    assert list(curve) == ["41", "42", "43"]
    assert row.score == pytest.approx(np.mean(list(curve.values())))


def test_evaluation_memory_budget_never_changes_a_number():
    config = resolve("duplicate_string", "rand-alibi", preset="smoke", **TINY)
    model = build_model(config)
    task = get_task(config.task)
    spec = EvalSpec.from_config(config)
    assert spec == EvalSpec(test_lengths=(41, 43), samples=6, batch_size=4, seed=1, dropout=False)
    roomy = evaluate(model, task, spec, torch.device("cpu"), max_memory=2**34)
    tight = evaluate(model, task, spec, torch.device("cpu"), max_memory=2**16)
    assert query_chunk_for(4, 129, 2**16) is not None  # the tight budget really chunks
    assert roomy.accuracy_by_length == tight.accuracy_by_length


def test_accuracy_is_masked_but_loss_is_not():
    """stack_manipulation: wrong predictions on padding change the loss, not the accuracy."""
    task = get_task("stack_manipulation")
    batch = task.sample(np.random.default_rng(0), 16, 10)
    targets = torch.from_numpy(batch.targets)
    mask = torch.from_numpy(batch.mask)
    assert not mask.all()
    perfect = torch.nn.functional.one_hot(targets, 3).float() * 10
    spoiled = perfect.clone()
    spoiled[~mask] = torch.tensor([0.0, 10.0, 0.0])  # padding (target 0) predicted as 1
    assert masked_accuracy(spoiled, targets, mask) == masked_accuracy(perfect, targets, mask)
    ce = torch.nn.functional.cross_entropy
    assert ce(spoiled.reshape(-1, 3), targets.reshape(-1)) > ce(
        perfect.reshape(-1, 3), targets.reshape(-1)
    )


class Exploding(ALiBi):
    """Test-only: an infinite bias, so the loss becomes NaN."""

    def bias(self, layer, length, device, generator):
        return torch.full((self.dims.num_heads, length, length), float("inf"), device=device)


def test_nan_loss_is_recorded_as_diverged_not_a_crash():
    register_encoding("test-exploding")(Exploding)  # registered here only: other tests list
    try:  # the registry, and must never see it
        row = execute(resolve("parity_check", "test-exploding", preset="smoke", **TINY),
                      run_dir=None)  # fmt: skip
    finally:
        for name in ("test-exploding", "dape-test-exploding", "dapev2-test-exploding"):
            ENCODINGS.remove(name)
    assert row.status == "diverged"
    assert "loss became nan at step 1" in row.error
    assert row.score is None


def test_killed_run_resumes_bit_identically(tmp_path):
    """SIGKILL a real `che-bench run` after its first checkpoint, re-run, compare."""
    args = [
        "run",
        "--task",
        "reverse_string",
        "--pe",
        "rope",
        "--preset",
        "smoke",
        "--steps",
        "60",
        "--checkpoint-every",
        "10",
        "--batch-size",
        "16",
        "--eval-samples",
        "8",
        "--test-lengths",
        "41-42",
    ]
    cmd = [sys.executable, "-m", "che_bench.cli", *args]

    def board(name):
        return ["--leaderboard", str(tmp_path / name), "--run-dir", str(tmp_path / f"runs-{name}")]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    victim = subprocess.Popen(
        cmd + board("resumed.jsonl"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 300
    run_dir = tmp_path / "runs-resumed.jsonl"
    while not list(run_dir.glob("*/checkpoint.pt")) and time.time() < deadline:
        assert victim.poll() is None, victim.stdout.read().decode()
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    checkpoint = next(run_dir.glob("*/checkpoint.pt"))
    assert not (tmp_path / "resumed.jsonl").exists()  # it died before finishing
    killed_at = torch.load(checkpoint, weights_only=False)["step"]
    assert 10 <= killed_at < 60

    resumed = subprocess.run(
        cmd + board("resumed.jsonl"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint at step" in resumed.stdout
    straight = subprocess.run(
        cmd + board("straight.jsonl"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert straight.returncode == 0, straight.stderr
    a = json.loads((tmp_path / "resumed.jsonl").read_text())
    b = json.loads((tmp_path / "straight.jsonl").read_text())
    assert a["accuracy_by_length"] == b["accuracy_by_length"]
    assert a["score"] == b["score"] and a["final_loss"] == b["final_loss"]
    assert a["run_key"] == b["run_key"]
