"""Re-scoring a kept model on other lengths, without retraining (``che-bench evaluate``).

The new row is of kind ``evaluation``: the training row's run_key and config, its own test
lengths, samples and scores, and ``evaluation.of_run_id`` naming the training row. The test
set of a length depends only on (eval seed, length), so a kept model scored on 501..1000
gives the numbers a fresh run with ``--test-lengths 501-1000`` and the same seed would.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from che_bench.errors import ConfigError
from che_bench.results.leaderboard import OkRows
from che_bench.results.record import RunRecord
from che_bench.running.kept import KeptModel
from che_bench.running.runner import device_name, failure_recorded, resolve_device


def training_row(leaderboard: Path, kept: KeptModel) -> RunRecord:
    """The ``ok`` training row of ``kept``'s run in ``leaderboard``: the row an evaluation
    row links to. A one-line ConfigError when the leaderboard has none."""
    found = OkRows(leaderboard).refresh().get(kept.run_key)
    if found is None:
        raise ConfigError(
            f"{leaderboard} has no ok row for run {kept.run_key}; pass the leaderboard the "
            "run was recorded in (--leaderboard)"
        )
    return found[1]


def rescore(
    kept: KeptModel,
    row: RunRecord,
    test_lengths: tuple[int, int],
    *,
    stride: int = 1,
    samples: int | None = None,
    device: str = "cpu",
    max_memory: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunRecord:
    """The ``evaluation`` row of ``kept`` (whose training row is ``row``) scored at every
    ``stride``-th length of ``test_lengths`` with ``samples`` per length (the run's own
    count by default). A model whose logits are not finite gives a ``failed`` row."""
    from che_bench.generators import get_task
    from che_bench.training.evaluate import EvalSpec, evaluate

    started = time.perf_counter()
    config = dataclasses.replace(
        kept.config,
        test_lengths=test_lengths,
        test_stride=stride,
        eval_samples=samples or kept.config.eval_samples,
    )
    torch_device = resolve_device(device)
    spec = EvalSpec.from_config(config)
    record = row.evaluation_of(
        test_lengths,
        samples=spec.samples,
        stride=stride,
        seed=spec.seed,
        device=device_name(torch_device),
    )
    with failure_recorded() as failure:
        model = kept.load(torch_device)
        task = get_task(config.task, **config.task_params)
        scores = evaluate(model, task, spec, torch_device, max_memory=max_memory, progress=progress)
        record = record.with_scores(scores.accuracy_by_length, scores.score)
    return failure.mark(record).with_wall_time(time.perf_counter() - started)
