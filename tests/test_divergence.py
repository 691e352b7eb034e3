"""Junk is never recorded as ``ok``: exploding losses, non-finite gradient norms and logits
that are NaN only at the test lengths."""

from __future__ import annotations

import math

import pytest
import torch

from che_bench.config import resolve
from che_bench.encodings import ENCODINGS, register_encoding
from che_bench.encodings.alibi import ALiBi
from che_bench.generators import get_task
from che_bench.running.runner import build_model, execute
from che_bench.training.ensemble import train_ensemble
from che_bench.training.train import EXPLODED, Trainer

TINY = {
    "steps": 6,
    "batch_size": 8,
    "eval_samples": 4,
    "eval_batch_size": 4,
    "test_lengths": (41, 43),
    "train_lengths": (1, 12),
}
CPU = torch.device("cpu")


def test_an_exploding_loss_is_diverged_not_ok():
    """lr 1e3 ends with a finite loss of ~1e7: far above 10 × ln(2), so not a result."""
    row = execute(resolve("parity_check", "alibi", preset="smoke", lr=1e3, **TINY), run_dir=None)
    assert row.status == "diverged", row
    assert row.error.startswith("loss exploded: final loss")
    assert f"{EXPLODED:g} × ln(2)" in row.error and "at step 6" in row.error
    assert row.final_loss > EXPLODED * math.log(2)
    assert row.score is None and row.accuracy_by_length == {}


def test_an_exploding_ensemble_member_is_diverged():
    configs = [resolve("parity_check", "alibi", preset="smoke", lr=1e3, seed=s, **TINY)
               for s in (0, 1)]  # fmt: skip
    rows = train_ensemble(configs, device="cpu")
    assert [r.status for r in rows] == ["diverged", "diverged"]
    assert all("loss exploded" in r.error for r in rows)


class NaNBeyond40(ALiBi):
    """Test-only: ALiBi whose bias is NaN for sequences longer than 40 (test lengths only)."""

    def bias(self, layer, length, device, generator):
        bias = super().bias(layer, length, device, generator)
        return torch.full_like(bias, math.nan) if length > 40 else bias


def test_nan_logits_at_test_lengths_only_fail_the_run():
    register_encoding("test-nan-beyond-40")(NaNBeyond40)  # registered here only: other
    try:  # tests list the registry, and must never see it
        row = execute(resolve("parity_check", "test-nan-beyond-40", preset="smoke", **TINY),
                      run_dir=None)  # fmt: skip
    finally:
        for name in ("test-nan-beyond-40", "dape-test-nan-beyond-40", "dapev2-test-nan-beyond-40"):
            ENCODINGS.remove(name)
    assert row.status == "failed", row
    assert "NonFiniteLogits: logits became nan at test length 41" in row.error
    assert row.steps == 6 and row.final_loss is not None  # training itself was fine
    assert row.score is None and row.accuracy_by_length == {}


@pytest.mark.parametrize("at_step", [3, 6])
def test_a_non_finite_gradient_norm_is_diverged_at_its_step(at_step):
    """An inf gradient at step ``at_step``: the loss stays finite for that step (and, at the
    last step, for good); the run must still stop, naming that step and its length."""
    config = resolve("parity_check", "alibi", preset="smoke", **TINY)
    model = build_model(config)
    task = get_task(config.task)
    lengths, calls = [], []
    sample = task.sample
    task.sample = lambda rng, batch, length: lengths.append(length) or sample(rng, batch, length)

    def spoil(grad):
        calls.append(len(lengths))
        return torch.full_like(grad, math.inf) if len(calls) == at_step else grad

    next(model.parameters()).register_hook(spoil)
    result = Trainer(model, task, config, CPU).run()
    assert calls[at_step - 1] == at_step  # the hook ran in step `at_step`'s backward
    assert result.status == "diverged", result
    assert (
        result.error
        == f"gradient norm became inf at step {at_step} (length {lengths[at_step - 1]})"
    )
    assert result.steps == at_step
