"""What a grid will cost before it runs: device-hours from rates measured here, now.

For each distinct model shape of the grid (task, encoding and its options, model, batch,
precision) up to ``MAX_MEASURED`` of them, a fresh model takes a few training steps at the
mean training length and evaluates one sub-batch at the shortest test length and at up to
four times it, on this machine's device. A run's cost is then its steps at that rate plus its
evaluation: every test length's sub-batches, the time per sub-batch fitted as a·T + b·T²
through the two measured lengths (T tokens). Grids with more shapes than that reuse the
mean rate of those measured. An estimate: it ignores warm-up, checkpoints and contention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from che_bench.config import RunConfig, strided
from che_bench.generators import get_task

#: The most model shapes measured for one estimate (each takes a second or a few).
MAX_MEASURED = 6
TIMED_STEPS = 3
#: Evaluation is timed at the shortest test length and at most this many times it (41 and
#: 164 for 41..500), then extrapolated: timing N = 500 itself takes minutes on a CPU.
MEASURED_LENGTH_FACTOR = 4


@dataclass(frozen=True)
class Rates:
    """Seconds per training step, and per evaluation sub-batch at two token counts."""

    step_s: float
    eval_points: tuple[tuple[int, float], tuple[int, float]]

    def sub_batch_s(self, tokens: int) -> float:
        (t1, s1), (t2, s2) = self.eval_points
        if t1 == t2:
            return s1 * tokens / t1
        # s = a·T + b·T² through both points (b ≥ 0 keeps long lengths from going negative)
        b = max((s2 / t2 - s1 / t1) / (t2 - t1), 0.0)
        a = s1 / t1 - b * t1
        return max(a * tokens + b * tokens**2, 0.0)


def shape_of(config: RunConfig) -> tuple:
    options = tuple(sorted(config.encoding_options.items()))
    params = tuple(sorted(config.task_params.items()))
    return (config.task, params, config.encoding, options, config.causal, config.model,
            config.batch_size, config.eval_batch_size, config.precision)  # fmt: skip


def measure(config: RunConfig, device: torch.device) -> Rates:
    """The rates of ``config``'s model on ``device`` (a throw-away model, no checkpoint)."""
    from che_bench.running.runner import build_model
    from che_bench.training.train import Trainer, to_device

    task = get_task(config.task, **config.task_params)
    lo, hi = config.train_lengths
    mean = (lo + hi) // 2
    timed = RunConfig.from_dict({**config.to_dict(), "train_lengths": [mean, mean],
                                 "steps": 10**6, "log_every": 10**6})  # fmt: skip
    trainer = Trainer(build_model(timed, device), task, timed, device)
    trainer.update()  # warm-up
    step_s = _timed(device, lambda: [trainer.update() for _ in range(TIMED_STEPS)])
    model = trainer.model.eval()
    points = []
    lo, hi = config.test_lengths
    for length in sorted({lo, min(hi, MEASURED_LENGTH_FACTOR * lo)}):
        batch = task.sample(np.random.default_rng(0), config.eval_batch_size, length)
        inputs, targets, _ = to_device(batch, device)
        with torch.no_grad():
            seconds = _timed(device, lambda x=inputs, k=targets.shape[1]: model(x, k))
        points.append((inputs.shape[1] + targets.shape[1], seconds))
    return Rates(step_s / TIMED_STEPS, (points[0], points[-1]))


def _timed(device: torch.device, fn: Callable[[], object]) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    begun = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - begun


def run_seconds(config: RunConfig, rates: Rates) -> float:
    task = get_task(config.task, **config.task_params)

    def evaluation(lengths: list[int], samples: int) -> float:
        sub_batches = -(-samples // config.eval_batch_size)
        tokens = (task.input_length(n) + task.output_length(n) for n in lengths)
        return sub_batches * sum(rates.sub_batch_s(t) for t in tokens)

    seen = strided(config.train_lengths, 1)
    return (
        config.steps * rates.step_s
        + evaluation(config.test_length_list, config.eval_samples)
        + evaluation(seen, config.train_eval_samples)
    )


def estimate_hours(
    configs: Sequence[RunConfig],
    device: torch.device,
    on_measure: Callable[[int, int], None] | None = None,
) -> tuple[float, int]:
    """(device-hours of ``configs`` run one after another on ``device``, shapes measured)."""
    shapes = list(dict.fromkeys(shape_of(c) for c in configs))
    firsts = {shape_of(c): c for c in reversed(configs)}
    measured: dict[tuple, Rates] = {}
    for index, shape in enumerate(shapes[:MAX_MEASURED]):
        if on_measure is not None:
            on_measure(index + 1, min(len(shapes), MAX_MEASURED))
        measured[shape] = measure(firsts[shape], device)
    fallback = Rates(
        float(np.mean([r.step_s for r in measured.values()])),
        tuple(  # type: ignore[arg-type]
            (int(np.mean([r.eval_points[i][0] for r in measured.values()])),
             float(np.mean([r.eval_points[i][1] for r in measured.values()])))
            for i in (0, 1)
        ),
    )  # fmt: skip
    total = sum(run_seconds(c, measured.get(shape_of(c), fallback)) for c in configs)
    return total / 3600, len(measured)
