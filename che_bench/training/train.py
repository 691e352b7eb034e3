"""The Trainer: Adam, constant lr, global-norm clip 1.0, uniform length curriculum.

The protocol of the RPE reference code (Ruoss et al., ACL 2023; Delétang et al., ICLR 2023,
§4): one length N ~ U{lo..hi} per step for the whole batch; cross-entropy averaged over batch
and output positions, **not** masked; accuracy masked. Checkpoints (model, optimizer, RNG
states, step, the open logging window, the device type) are written atomically, so a killed
run resumes bit-identically on CPU and reports the same final loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from che_bench.config import RunConfig
from che_bench.generators import Batch, Task
from che_bench.model import Encoder
from che_bench.seeding import data_rng, torch_generator
from che_bench.training.checkpoints import read_checkpoint, write_atomic
from che_bench.training.metrics import masked_accuracy
from che_bench.training.precision import configure_determinism

#: A run has exploded (status ``diverged``) when its final loss, the mean over the last
#: logging window, is above this multiple of ln(output_size), the cross-entropy of a uniform
#: guess.
EXPLODED = 10.0


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


@dataclass
class LogWindow:
    """Sums over the steps since the last logging step; closed every ``log_every`` steps."""

    loss: float = 0.0
    correct: int = 0
    counted: int = 0
    steps: int = 0

    def add(self, loss: float, correct: int, counted: int) -> None:
        self.loss, self.steps = self.loss + loss, self.steps + 1
        self.correct, self.counted = self.correct + correct, self.counted + counted

    def close(self) -> tuple[float, float]:
        """(mean loss, masked accuracy) over the window, which starts afresh."""
        means = (self.loss / self.steps, self.correct / max(self.counted, 1))
        self.loss, self.correct, self.counted, self.steps = 0.0, 0, 0, 0
        return means


class Trainer:
    """Trains ``model`` on ``task`` for ``config.steps`` updates.

    Divergence. A run stops with status ``diverged``, and an error naming the step and its
    length, when a step's loss is NaN or ±inf (non-finite logits make it so) or the global
    gradient norm is (the value ``clip_grad_norm_`` returns, kept on the device and read once
    per logging window and before each checkpoint: one host sync per window, no change to
    any number). It ends ``diverged`` too when its loss has exploded: the final loss, the
    mean over the last logging window, is above ``EXPLODED`` × ln(output_size), ten times
    the cross-entropy of a uniform guess (a healthy smoke run ends below 1.5×).
    """

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
        configure_determinism(device, config.deterministic)
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
        )
        self.rng = data_rng(config.seed)
        self.generator = torch_generator(device, config.seed, 2)
        self.step = self.resumed = 0
        self.length = 0  # the length of the last step's batch
        self.window = LogWindow()
        #: (loss, accuracy) of the last closed window: what the row reports at the end.
        self.logged: tuple[float, float] = (math.nan, math.nan)
        self.logged_at = 0  # the step that closed it
        #: (step, length, gradient norm on the device) of the steps not checked yet.
        self.norms: list[tuple[int, int, torch.Tensor]] = []

    # -- checkpoints ---------------------------------------------------------------
    def state(self) -> dict:
        return {
            "config_hash": self.config.config_hash,
            "device": self.device.type,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "window": asdict(self.window),
            "logged": self.logged,
        }

    def save(self) -> None:
        """Write the checkpoint atomically (temp file, fsync, rename)."""
        assert self.checkpoint is not None
        write_atomic(self.checkpoint, self.state())

    def try_resume(self) -> int:
        """Load the checkpoint if it belongs to this config; return the step resumed at.

        See :mod:`che_bench.training.checkpoints`: stale temp files go, an unreadable
        checkpoint is moved aside (the run starts from step 0), one of another device type
        raises ConfigError. Tensors load on the CPU and ``load_state_dict`` moves them, so
        Adam's ``step`` counters stay CPU tensors, as in a fresh run.
        """
        if self.checkpoint is None:
            return 0
        state = read_checkpoint(
            self.checkpoint, self.model.state_dict(), self.config.config_hash, self.device
        )
        if state is None:
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["data_rng"]
        self.generator.set_state(state["generator"].cpu())
        self.step = self.resumed = int(state["step"])
        self.window = LogWindow(**state.get("window", {}))  # older checkpoints lack both
        self.logged = tuple(state.get("logged", (math.nan, math.nan)))
        return self.step

    # -- training ------------------------------------------------------------------
    def train_step(self) -> tuple[float, int, int]:
        lo, hi = self.config.train_lengths
        self.length = length = int(self.rng.integers(lo, hi + 1))
        batch = self.task.sample(self.rng, self.config.batch_size, length)
        inputs, targets, mask = to_device(batch, self.device)
        logits = self.model(inputs, targets.shape[1], generator=self.generator)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        value = loss.item()
        if not math.isfinite(value):
            return value, 0, 0
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.norms.append((self.step + 1, length, norm))
        self.optimizer.step()
        correct, counted = masked_accuracy(logits.detach(), targets, mask)
        return value, correct, counted

    def advance(self, loss: float, correct: int, counted: int) -> bool:
        """Count one finished step in the log window. True at a logging step."""
        self.step += 1
        self.window.add(loss, correct, counted)
        logged = self.step % self.config.log_every == 0 or self.step == self.config.steps
        if logged:
            self.logged, self.logged_at = self.window.close(), self.step
        return logged

    def update(self) -> TrainResult | None:
        """One step: train, count, check, checkpoint. None while the run goes on; its
        result once it has ended (trained all steps, or diverged)."""
        loss, correct, counted = self.train_step()
        if not math.isfinite(loss):
            at = f"at step {self.step + 1} (length {self.length})"
            error = self.norm_error() or f"loss became {loss} {at}"
            return self.result(loss, None, "diverged", error)
        logged = self.advance(loss, correct, counted)
        last = self.step == self.config.steps
        save = self.checkpoint is not None and self.step % self.config.checkpoint_every == 0
        if logged or save:  # no checkpoint of a model a non-finite gradient has spoilt
            error = self.norm_error()
            if error is not None:
                return self.result(loss, None, "diverged", error)
        if save and not last:
            self.save()
        return self.finished() if last else None

    def norm_error(self) -> str | None:
        """The first unchecked step whose gradient norm is NaN or ±inf, as an error (one
        host sync); None if there is none. Marks every step checked."""
        pending, self.norms = self.norms, []
        if not pending:
            return None
        finite = torch.isfinite(torch.stack([norm for _, _, norm in pending]))
        if bool(finite.all()):
            return None
        step, length, norm = pending[int(finite.logical_not().nonzero()[0, 0])]
        return f"gradient norm became {float(norm)} at step {step} (length {length})"

    def result(
        self, loss: float, accuracy: float | None, status: str, error: str | None
    ) -> TrainResult:
        return TrainResult(self.step, loss, accuracy, status, error, self.resumed)

    def finished(self) -> TrainResult:
        """The result of a run that trained all its steps: ``ok``, or ``diverged`` if its
        final loss exploded (see the class docstring)."""
        loss, accuracy = self.logged
        size = self.task.output_size
        limit = EXPLODED * math.log(size)
        if loss > limit:
            error = (
                f"loss exploded: final loss {loss:.4g} at step {self.step} is above "
                f"{limit:.3g} = {EXPLODED:g} × ln({size}), {EXPLODED:g}× a uniform guess's loss"
            )
            return self.result(loss, accuracy, "diverged", error)
        return self.result(loss, accuracy, "ok", None)

    def run(
        self,
        progress: Callable[[Progress], None] | None = None,
        on_resume: Callable[[int], None] | None = None,
    ) -> TrainResult:
        resumed = self.try_resume()
        if resumed and on_resume is not None:
            on_resume(resumed)
        self.model.train()
        started = time.perf_counter()
        result = self.finished() if self.step >= self.config.steps else None
        while result is None:
            before = self.step
            result = self.update()
            if progress is not None and self.step > before and self.logged_at == self.step:
                rate = (self.step - resumed) / max(time.perf_counter() - started, 1e-9)
                progress(Progress(self.step, self.config.steps, *self.logged, rate))
        return result
