"""Prefetching the next batch in a thread changes nothing but when it is drawn: same losses,
same checkpoint (the data stream's state at the step boundary, not after the draw in
flight), and a run resumed from it ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import dataclasses

import torch

from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.training.train import Trainer, TrainResult

CPU = torch.device("cpu")
CONFIG = dict(preset="smoke", batch_size=4, steps=10, log_every=2, checkpoint_every=3, seed=3)


def trainer(tmp_path, prefetch: bool) -> Trainer:
    config = resolve("parity_check", "alibi", **CONFIG)
    return Trainer(build_model(config), get_task(config.task), config, CPU,
                   tmp_path / "checkpoint.pt", prefetch=prefetch)  # fmt: skip


def losses_until_done(t: Trainer) -> tuple[list, TrainResult]:
    logged, result = [], None
    while result is None:
        result = t.update()
        logged.append(t.logged)
    return logged, result


def test_prefetching_trains_and_checkpoints_the_same(tmp_path) -> None:
    plain = trainer(tmp_path / "plain", prefetch=False)
    ahead = trainer(tmp_path / "ahead", prefetch=True)
    for _ in range(3):  # step 3 writes a checkpoint while step 4's draw is in flight
        plain.update()
        ahead.update()
    assert ahead.batches.pending is not None  # it really drew ahead
    saved = [torch.load(t.checkpoint, weights_only=False) for t in (plain, ahead)]
    assert saved[0]["data_rng"] == saved[1]["data_rng"]
    assert ahead.batches.rng.bit_generator.state != saved[1]["data_rng"]  # drawn past it
    rest = [losses_until_done(t) for t in (plain, ahead)]
    assert rest[0] == rest[1]
    assert ahead.batches.pending is None and ahead.batches.pool is None  # closed at the end

    resumed = trainer(tmp_path / "ahead", prefetch=True)
    assert resumed.try_resume() == 9  # the last checkpoint, written with a draw in flight
    final = losses_until_done(resumed)
    assert final[1] == dataclasses.replace(rest[0][1], resumed_from=9)
