"""No host round-trip per training step: 0 device-to-host reads on a non-logging step."""

from __future__ import annotations

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
