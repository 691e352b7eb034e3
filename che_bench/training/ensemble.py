"""Seed-parallel training: S seeds of one (task, encoding) trained together in one process.

Each member is an ordinary solo :class:`~che_bench.training.train.Trainer` (its own model,
Adam, data stream, dropout generator, checkpoint) stepped in lockstep through its own
``update``, so every member's record is bit-identical to its solo run.
There is one forward pass in che-bench, :class:`~che_bench.model.Encoder`'s: on a 2-core
CPU, batching the seeds' forwards measured no faster (solo steps at batch 128 are already
compute-bound), so the ensemble does not stack them.

A member that diverges (see :class:`~che_bench.training.train.Trainer`) stops with status
``diverged``; the others go on.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from che_bench.config import RunConfig
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.results.record import RunRecord
from che_bench.running.gate import CHECKPOINT
from che_bench.running.runner import (
    RunHooks,
    build_model,
    device_name,
    failure_recorded,
    finish_record,
    resolve_device,
)
from che_bench.training.train import Progress, Trainer, TrainResult


def check_configs(configs: Sequence[RunConfig]) -> None:
    """Reject an empty list, configs that differ in anything but the seed, repeated seeds."""
    if not configs:
        raise ConfigError("an ensemble needs at least one config")
    names = [f.name for f in dataclasses.fields(RunConfig) if f.name != "seed"]
    differ = [n for n in names if any(getattr(c, n) != getattr(configs[0], n) for c in configs)]
    if differ:
        raise ConfigError(f"ensemble configs must differ only in the seed, not in {differ}")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"ensemble seeds must be distinct, got {seeds}")


def build_trainers(
    configs: Sequence[RunConfig], device: torch.device, run_dir: Path | None = None
) -> list[Trainer]:
    """One solo Trainer per config (checkpoints where ``runner.execute`` puts them)."""
    check_configs(configs)
    task = get_task(configs[0].task, **configs[0].task_params)
    path = (lambda c: run_dir / c.run_key / CHECKPOINT) if run_dir else (lambda c: None)
    return [Trainer(build_model(c, device), task, c, device, path(c)) for c in configs]


def fit(
    trainers: Sequence[Trainer],
    progress: Callable[[Progress], None] | None = None,
    after_step: Callable[[int], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Train all members in lockstep; each result is what its own ``Trainer.run`` returns.

    ``progress`` gets the members' mean window loss/accuracy at log steps; ``after_step(step)``
    runs after every step (tests use it to inject faults); ``on_resume`` gets the lowest
    step resumed from a checkpoint.
    """
    config = trainers[0].config
    resumed = [t.try_resume() for t in trainers]
    if on_resume is not None and any(resumed):
        on_resume(min(resumed))
    results: list[TrainResult | None] = [
        t.finished() if t.step >= config.steps else None for t in trainers
    ]
    for t in trainers:
        t.model.train()
    started, done_steps = time.perf_counter(), 0
    while active := [i for i, r in enumerate(results) if r is None]:
        for i in active:
            results[i] = trainers[i].update()
        done_steps += 1
        step = max(trainers[i].step for i in active)
        if progress is not None and (step % config.log_every == 0 or step == config.steps):
            shown = [trainers[i].logged for i in active]
            rate = done_steps / max(time.perf_counter() - started, 1e-9)
            mean = [sum(v) / len(shown) for v in zip(*shown)]
            progress(Progress(step, config.steps, mean[0], mean[1], rate))
        if after_step is not None:
            after_step(step)
    return [r for r in results if r is not None]


def train_ensemble(
    configs: Sequence[RunConfig],
    *,
    device: str = "auto",
    run_dir: Path | None = None,
    max_memory: int | None = None,
    hooks: RunHooks | None = None,
) -> list[RunRecord]:
    """Train ``configs`` (identical but for the seed) together; one record per config, as
    :func:`che_bench.running.runner.execute` gives it. A record's ``wall_time_s`` is the shared
    training time divided by S plus the member's own evaluation time. Checkpoints go where
    ``execute`` puts them (``run_dir/<run_key>/checkpoint.pt``); removing them is the caller's."""
    check_configs(configs)
    hooks = hooks or RunHooks()
    started = time.perf_counter()
    torch_device = resolve_device(device)
    records = [RunRecord.begin(c, device_name(torch_device)) for c in configs]
    results: list[TrainResult] = []
    with failure_recorded() as failure:
        trainers = build_trainers(configs, torch_device, run_dir)
        if hooks.on_phase:
            hooks.on_phase("train")
        results = fit(trainers, hooks.on_train, on_resume=hooks.on_resume)
    shared = (time.perf_counter() - started) / len(configs)
    if not results:
        return [failure.mark(r).with_wall_time(shared * len(configs)) for r in records]
    finished = []
    for config, record, t, result in zip(configs, records, trainers, results):
        begun = time.perf_counter()
        record = finish_record(
            record,
            result,
            t.model,
            t.task,
            config,
            torch_device,
            max_memory=max_memory,
            hooks=hooks,
            keep_in=run_dir / config.run_key if run_dir else None,
        )
        finished.append(record.with_wall_time(shared + time.perf_counter() - begun))
    return finished
