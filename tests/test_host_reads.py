"""No host round-trip per training step: 0 device-to-host reads on a non-logging step."""

from __future__ import annotations

import math

import torch

from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.training.host_reads import HostReads
from che_bench.training.train import Trainer

CPU = torch.device("cpu")


def test_the_counter_counts_reads_and_skips_adams_step() -> None:
    t = torch.tensor([1.0, 2.0])
    with HostReads() as reads:
        t.sum().item()
        bool(t.all())
        t.tolist()
        t + 1  # not a read
    assert reads.names == ["item", "__bool__", "tolist"]
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([param])
    param.grad = torch.ones(2)
    optimizer.step()  # creates the state
    with HostReads(optimizer) as reads:
        optimizer.step()  # the single-tensor Adam reads its CPU `step` counter
    assert reads.count == 0


def test_no_host_read_on_non_logging_steps() -> None:
    config = resolve("parity_check", "alibi", preset="smoke", batch_size=4, steps=12, log_every=6)
    trainer = Trainer(build_model(config), get_task(config.task), config, CPU)
    counts = []
    for _ in range(12):
        with HostReads(trainer.optimizer) as reads:
            trainer.update()
        counts.append(reads.count)
    logging = {5, 11}  # steps 6 and 12
    assert [c for i, c in enumerate(counts) if i not in logging] == [0] * 10
    assert all(1 <= counts[i] <= 2 for i in logging), counts


def test_window_sums_equal_python_float_sums() -> None:
    """The device's float64 loss sum is the sum of the steps' losses as Python floats (what
    the window summed before), and the int64 counts are the masked token counts."""
    config = resolve("parity_check", "alibi", preset="smoke", batch_size=4, steps=5, log_every=5)
    trainer = Trainer(build_model(config), get_task(config.task), config, CPU)
    for _ in range(4):
        trainer.train_step()
    losses = [u.loss.item() for u in trainer.unchecked]
    assert trainer.settle() is None
    total = 0.0
    for value in losses:
        total += value
    assert trainer.window.loss == total and trainer.window.steps == 4
    assert isinstance(trainer.window.correct, int) and trainer.window.counted == 4 * 4


def test_a_nan_loss_mid_window_names_its_step_and_writes_no_checkpoint(tmp_path) -> None:
    """A NaN loss at step 3 is found at step 4's checkpoint (not at once); the result names
    step 3 and its length, and the spoilt model is never saved."""
    config = resolve("parity_check", "alibi", preset="smoke", batch_size=4, steps=8,
                     log_every=8, checkpoint_every=4)  # fmt: skip
    task = get_task(config.task)
    model = build_model(config)
    lengths: list[int] = []
    sample = task.sample
    task.sample = lambda rng, batch, length: lengths.append(length) or sample(rng, batch, length)
    forward = model.forward

    def spoil(*args, **kwargs):
        logits = forward(*args, **kwargs)
        return logits * math.nan if len(lengths) == 3 else logits

    model.forward = spoil
    checkpoint = tmp_path / "checkpoint.pt"
    trainer = Trainer(model, task, config, CPU, checkpoint)
    results = [trainer.update() for _ in range(4)]
    assert results[:3] == [None, None, None]  # steps 1-3: no check, no read
    result = results[3]
    assert result is not None and result.status == "diverged"
    assert result.error == f"loss became nan at step 3 (length {lengths[2]})"
    assert result.steps == 2
    assert not checkpoint.exists()
