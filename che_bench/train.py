"""The Trainer: Adam, constant lr, global-norm clip 1.0, uniform length curriculum.

Protocol of the RPE/CHE reference (spec ``model-and-protocol.md`` §3): one length
N ~ U{lo..hi} per step for the whole batch; cross-entropy averaged over batch and output
positions, **not** masked; accuracy masked. Checkpoints (model, optimizer, RNG states,
step) are written atomically, so a killed run resumes bit-identically on CPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from che_bench.config import RunConfig
from che_bench.generators import Batch, Task
from che_bench.model import Encoder
from che_bench.seeding import data_rng, torch_generator


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    loss: float
    accuracy: float
    steps_per_s: float


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float | None
    train_accuracy: float | None
    status: str  # "ok" | "diverged"
    error: str | None = None
    resumed_from: int = 0


def to_device(batch: Batch, device: torch.device) -> tuple[torch.Tensor, ...]:
    arrays = (batch.inputs, batch.targets, batch.mask)
    return tuple(torch.from_numpy(a.copy()).to(device) for a in arrays)  # copy: no negative strides


def masked_accuracy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple:
    """(correct, counted) token counts: argmax equality pooled over masked positions."""
    correct = (logits.argmax(-1) == targets) & mask
    return int(correct.sum()), int(mask.sum())


class Trainer:
    """Trains ``model`` on ``task`` for ``config.steps`` updates."""

    def __init__(
        self,
        model: Encoder,
        task: Task,
        config: RunConfig,
        device: torch.device,
        checkpoint: Path | None = None,
    ) -> None:
        self.model, self.task, self.config, self.device = model, task, config, device
        self.checkpoint = checkpoint
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
        )
        self.rng = data_rng(config.seed)
        self.generator = torch_generator(device, config.seed, 2)
        self.step = 0

    # -- checkpoints ---------------------------------------------------------------
    def state(self) -> dict:
        return {
            "config_hash": self.config.config_hash,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
        }

    def save(self) -> None:
        """Atomic: write a temp file, fsync, rename over the old checkpoint."""
        assert self.checkpoint is not None
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            torch.save(self.state(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.checkpoint)

    def try_resume(self) -> int:
        """Load the checkpoint if it belongs to this config; return the step resumed at."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return 0
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        if state.get("config_hash") != self.config.config_hash:
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["data_rng"]
        self.generator.set_state(state["generator"].cpu())
        self.step = int(state["step"])
        return self.step

    # -- training ------------------------------------------------------------------
    def train_step(self) -> tuple[float, int, int]:
        lo, hi = self.config.train_lengths
        length = int(self.rng.integers(lo, hi + 1))
        batch = self.task.sample(self.rng, self.config.batch_size, length)
        inputs, targets, mask = to_device(batch, self.device)
        logits = self.model(inputs, targets.shape[1], generator=self.generator)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        value = loss.item()
        if not math.isfinite(value):
            return value, 0, 0
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        correct, counted = masked_accuracy(logits.detach(), targets, mask)
        return value, correct, counted

    def run(
        self,
        progress: Callable[[Progress], None] | None = None,
        on_resume: Callable[[int], None] | None = None,
    ) -> TrainResult:
        resumed = self.try_resume()
        if resumed and on_resume is not None:
            on_resume(resumed)
        self.model.train()
        window_loss, window_correct, window_count, window_steps = 0.0, 0, 0, 0
        loss = accuracy = float("nan")
        started = time.perf_counter()
        while self.step < self.config.steps:
            step_loss, correct, counted = self.train_step()
            if not math.isfinite(step_loss):
                return TrainResult(
                    self.step,
                    step_loss,
                    None,
                    "diverged",
                    f"loss became {step_loss} at step {self.step + 1}",
                    resumed,
                )
            self.step += 1
            window_loss += step_loss
            window_correct += correct
            window_count += counted
            window_steps += 1
            last = self.step == self.config.steps
            if self.step % self.config.log_every == 0 or last:
                loss = window_loss / window_steps
                accuracy = window_correct / max(window_count, 1)
                elapsed = time.perf_counter() - started
                if progress is not None:
                    rate = (self.step - resumed) / max(elapsed, 1e-9)
                    progress(Progress(self.step, self.config.steps, loss, accuracy, rate))
                window_loss, window_correct, window_count, window_steps = 0.0, 0, 0, 0
            if self.checkpoint is not None and (
                self.step % self.config.checkpoint_every == 0 and not last
            ):
                self.save()
        return TrainResult(self.step, loss, accuracy, "ok", None, resumed)
