"""The training batches: the data stream's draws, on CUDA one step ahead in a thread.

The uniform length curriculum of Ruoss et al. (ACL 2023): one length N ~ U{lo..hi} per step
for the whole batch, then the batch, both from the run's numpy stream. With ``prefetch`` a
worker thread draws (and pins) the next batch while the current step runs; the draws are the
same, in the same order, only earlier. A checkpoint stores the stream's state at the step
boundary, before the draw in flight, so a resumed run draws that batch again: bit-identical.

On the CPU prefetching buys nothing (sampling is under 0.4% of a step, and the thread takes
time from torch's own threads), so it is on by default only on CUDA, where the step is
short and the host would otherwise sample while the GPU idles.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from che_bench.generators import Batch, Task

Tensors = tuple[torch.Tensor, ...]


def host_tensors(batch: Batch, pin: bool) -> Tensors:
    """The batch's arrays as CPU tensors (copied: no negative strides), pinned if ``pin``."""
    tensors = tuple(torch.from_numpy(a.copy()) for a in (batch.inputs, batch.targets, batch.mask))
    return tuple(t.pin_memory() for t in tensors) if pin else tensors


def to_device(batch: Batch, device: torch.device) -> Tensors:
    """The batch's arrays on ``device``; on CUDA through pinned memory, without blocking."""
    return on_device(host_tensors(batch, device.type == "cuda"), device)


def on_device(tensors: Tensors, device: torch.device) -> Tensors:
    """Host tensors on ``device``: as they are on the CPU, else copied without blocking."""
    if device.type == "cpu":
        return tensors
    return tuple(t.to(device, non_blocking=True) for t in tensors)


class BatchStream:
    """The run's training batches from ``rng``, drawn one step ahead when ``prefetch``."""

    def __init__(
        self,
        task: Task,
        rng: np.random.Generator,
        batch_size: int,
        lengths: tuple[int, int],
        device: torch.device,
        prefetch: bool,
    ) -> None:
        self.task, self.rng, self.batch_size, self.lengths = task, rng, batch_size, lengths
        self.device = device
        self.pool = ThreadPoolExecutor(1, "che-bench-batches") if prefetch else None
        self.pending: Future | None = None
        self.before: dict[str, Any] | None = None  # the stream's state before ``pending``

    def draw(self) -> tuple[int, Tensors]:
        """One length and a batch of it, as host tensors."""
        lo, hi = self.lengths
        length = int(self.rng.integers(lo, hi + 1))
        batch = self.task.sample(self.rng, self.batch_size, length)
        return length, host_tensors(batch, self.device.type == "cuda")

    def next(self, ahead: bool = True) -> tuple[int, Tensors]:
        """The next step's length and (inputs, targets, mask) on the device; with prefetch
        and ``ahead`` (more steps to come), the draw after it starts in the thread."""
        if self.pending is not None:
            length, tensors = self.pending.result()
            self.pending = self.before = None
        else:
            length, tensors = self.draw()
        if self.pool is not None and ahead:
            self.before = self.rng.bit_generator.state
            self.pending = self.pool.submit(self.draw)
        return length, on_device(tensors, self.device)

    def discard(self) -> None:
        """Drop the draw in flight and rewind the stream to before it."""
        if self.pending is not None:
            self.pending.result()
            self.rng.bit_generator.state = self.before
            self.pending = self.before = None

    def state(self) -> dict[str, Any]:
        """The stream's state at the step boundary (without the draw in flight)."""
        return self.before if self.pending is not None else self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.discard()
        self.rng.bit_generator.state = state

    def close(self) -> None:
        """Drop the draw in flight and stop the thread (the run has ended)."""
        self.discard()
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
