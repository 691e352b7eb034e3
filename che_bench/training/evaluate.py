"""The Evaluator: per-length accuracy on held-out lengths, memory-bounded and exact.

Every model sees the same test set: length ℓ's samples come from a generator seeded by
(eval_seed, ℓ) alone. Sub-batches are fixed by the :class:`EvalSpec` (a config's
``test_lengths`` and ``eval_*`` settings); the memory budget only picks the query-chunk
size, which is exact (a query block's attention rows are those of the unchunked
attention), so the budget never changes a number. Randomized encodings draw from a
generator seeded per (eval_seed, ℓ, sub-batch).

Logits that are NaN or ±inf at a test length end the evaluation with
:class:`NonFiniteLogits`, naming the length: the run's record is ``failed`` (not
``diverged``: training went well, the model's arithmetic breaks at that length), never a
chance-level score computed from the argmax of NaNs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from che_bench.config import strided
from che_bench.generators import Task
from che_bench.model import Encoder
from che_bench.seeding import eval_rng, torch_generator
from che_bench.training.metrics import masked_accuracy
from che_bench.training.precision import autocast
from che_bench.training.train import to_device

if TYPE_CHECKING:
    from che_bench.config import RunConfig

#: Floats alive per (query, key) pair per sequence while a query block runs, an upper bound.
#: Measured on CPU (peak-RSS slope over the block size, T = 1500, benchmarks/README.md):
#: ~24 for most encodings (logits, scores, probabilities: 3 per head; DAPE V1/V2 included,
#: their hidden layer stays in cache-sized blocks), 57 for Transformer-XL (its 2T-1 offset
#: logits) and 98 for CoPE (gates, two cumulative sums, interpolation indices).
FLOATS_PER_PAIR = 16 * 8
#: Floats per (query, key) pair of one layer that have no batch axis and are not chunked:
#: the bias B [H, T, T] and its copies, and DAPE's c = W1B·B + b1 [D, T, T] (measured: 18 for
#: alibi/t5, 50 for DAPE V1, 58 for DAPE V2).
FIXED_FLOATS_PER_PAIR = 8 * 8
#: Left for everything else in the budget: interpreter, torch, weights, per-token activations
#: (about 230 MiB on CPU after the imports).
RESERVE_BYTES = 256 * 2**20


class NonFiniteLogits(ArithmeticError):
    """The model's logits were NaN or ±inf at a test length."""


@dataclass(frozen=True)
class EvalSpec:
    """What an evaluation reads from a RunConfig: the test lengths (inclusive), samples per
    length, the sub-batch size, the test-set seed, whether dropout stays on and the
    arithmetic (``precision``, see :mod:`che_bench.training.precision`)."""

    test_lengths: tuple[int, int]
    samples: int
    batch_size: int
    seed: int
    dropout: bool = False
    precision: str = "fp32"
    stride: int = 1

    @classmethod
    def from_config(cls, config: RunConfig) -> EvalSpec:
        """The test evaluation: ``test_lengths`` every ``test_stride``, ``eval_samples`` each."""
        return cls(
            test_lengths=(config.test_lengths[0], config.test_lengths[1]),
            samples=config.eval_samples,
            batch_size=config.eval_batch_size,
            seed=config.eval_seed,
            dropout=config.eval_dropout,
            precision=config.precision,
            stride=config.test_stride,
        )

    @classmethod
    def in_distribution(cls, config: RunConfig) -> EvalSpec | None:
        """Every training length with ``train_eval_samples`` each (None when that is 0): tells
        "did not learn" apart from "learned but did not generalize"."""
        if config.train_eval_samples == 0:
            return None
        return dataclasses.replace(
            cls.from_config(config),
            test_lengths=(config.train_lengths[0], config.train_lengths[1]),
            samples=config.train_eval_samples,
            stride=1,
        )

    @property
    def lengths(self) -> list[int]:
        return strided(self.test_lengths, self.stride)


@dataclass(frozen=True)
class EvalResult:
    accuracy_by_length: dict[int, float]

    @property
    def score(self) -> float:
        """Unweighted mean of the per-length accuracies (Delétang et al. Eq. 1)."""
        return float(np.mean(list(self.accuracy_by_length.values())))


def available_memory(device: torch.device) -> int:
    """Bytes free for evaluation on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


#: The fraction of a GPU's memory that the evaluations sharing it may use together; the
#: rest is left to their training state, the CUDA context and the caching allocator's slack.
GPU_EVAL_FRACTION = 0.6


def eval_budget(device: torch.device, share: int = 1) -> int:
    """The default evaluation memory budget of one of ``share`` runs using ``device`` at once.

    On CUDA each run gets its share of the GPU's total memory, the same whenever it starts
    (``--jobs 4`` on one GPU: a quarter of ``GPU_EVAL_FRACTION`` each), so runs that start
    later do not get less because earlier ones hold memory. On the CPU: a quarter of the
    memory available now, divided among the runs.
    """
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        return int(total * GPU_EVAL_FRACTION) // max(share, 1)
    return available_memory(device) // 4 // max(share, 1)


def query_chunk_for(batch: int, length: int, budget_bytes: int) -> int | None:
    """Largest query block that keeps an evaluation within ``budget_bytes``; None = all.

    The budget covers the whole evaluation: the batch-independent [.., T, T] tensors of a
    layer, the per-layer pair tensors of one query block of the sub-batch, and a fixed
    reserve for the rest, so ``--max-memory 2GB`` bounds the process's peak RSS on CPU.
    """
    per_row = batch * length * FLOATS_PER_PAIR * 4
    left = budget_bytes - RESERVE_BYTES - length * length * FIXED_FLOATS_PER_PAIR * 4
    rows = max(1, left // max(per_row, 1))
    return None if rows >= length else int(rows)


def evaluate(
    model: Encoder,
    task: Task,
    spec: EvalSpec,
    device: torch.device,
    *,
    max_memory: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Accuracy of ``model`` on ``task`` at every length of ``spec.test_lengths``; raises
    :class:`NonFiniteLogits` at the first length whose logits are not all finite."""
    lengths = spec.lengths
    budget = max_memory or eval_budget(device)
    model.train(spec.dropout)
    results: dict[int, float] = {}
    with torch.no_grad():
        for done, length in enumerate(lengths, start=1):
            batch = task.sample(eval_rng(spec.seed, length), spec.samples, length)
            inputs, targets, mask = to_device(batch, device)
            total = inputs.shape[1] + targets.shape[1]
            correct = counted = 0
            sub = spec.batch_size
            for index, start in enumerate(range(0, spec.samples, sub)):
                x, y, m = inputs[start : start + sub], targets[start : start + sub], mask[start:]
                generator = torch_generator(device, spec.seed, length, index)
                chunk = query_chunk_for(x.shape[0], total, budget)
                with autocast(device, spec.precision):
                    logits = model(x, y.shape[1], generator=generator, query_chunk=chunk)
                if not bool(torch.isfinite(logits).all()):
                    kind = "nan" if bool(logits.isnan().any()) else "inf"
                    raise NonFiniteLogits(
                        f"logits became {kind} at test length {length} (sub-batch {index})"
                    )
                c, n = masked_accuracy(logits, y, m[: x.shape[0]])
                correct, counted = correct + c, counted + n
            results[length] = correct / counted if counted else math.nan
            if progress is not None:
                progress(done, len(lengths))
    model.train(False)
    return EvalResult(results)
