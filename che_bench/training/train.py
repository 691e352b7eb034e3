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
from che_bench.generators import Task
from che_bench.model import Encoder
from che_bench.seeding import data_rng, torch_generator
from che_bench.training.batches import BatchStream
from che_bench.training.batches import to_device as to_device  # re-exported
from che_bench.training.checkpoints import read_checkpoint, write_atomic
from che_bench.training.metrics import masked_counts
from che_bench.training.precision import autocast, configure_determinism

#: A run has exploded (status ``diverged``) when its final loss, the mean over the last
#: logging window, is above this multiple of ln(output_size), the cross-entropy of a uniform
#: guess.
EXPLODED = 10.0


#: torch.compile's backend for ``compile: true`` runs (tests swap in a cheap one).
COMPILE_BACKEND = "inductor"


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


@dataclass
class LogWindow:
    """Sums over the steps since the last logging step; closed every ``log_every`` steps.
    The host-side form of :class:`Trainer`'s on-device sums (and the checkpoint's)."""

    loss: float = 0.0
    correct: int = 0
    counted: int = 0
    steps: int = 0

    def close(self) -> tuple[float, float]:
        """(mean loss, masked accuracy) over the window, which starts afresh."""
        means = (self.loss / self.steps, self.correct / max(self.counted, 1))
        self.loss, self.correct, self.counted, self.steps = 0.0, 0, 0, 0
        return means


@dataclass(frozen=True)
class Unchecked:
    """A step whose loss and gradient norm are still on the device, not yet checked."""

    step: int
    length: int
    loss: torch.Tensor
    norm: torch.Tensor


class Trainer:
    """Trains ``model`` on ``task`` for ``config.steps`` updates.

    No host round-trip per step: a step's loss, accuracy counts and gradient norm stay on
    the device (the window's sums in float64, as exact as the Python floats they replace)
    and are read once per logging window and before each checkpoint, one host read each.

    Divergence. A run stops with status ``diverged``, and an error naming the first bad
    step and its length, when a step's loss is NaN or ±inf (non-finite logits make it so)
    or its global gradient norm is (the value ``clip_grad_norm_`` returns); found at the
    end of the window, before any checkpoint of the spoilt model is written. It ends
    ``diverged`` too when its loss has exploded: the final loss, the
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
        prefetch: bool | None = None,
    ) -> None:
        self.model, self.task, self.config, self.device = model, task, config, device
        self.checkpoint = checkpoint
        configure_determinism(device, config.deterministic)
        #: The forward the steps call: the model, or with ``compile`` the model compiled
        #: once for every length (dynamic shapes; dropout's uniforms drawn beforehand).
        self.forward = model
        if config.compile:
            self.forward = torch.compile(model, dynamic=True, backend=COMPILE_BACKEND)
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
        )
        self.rng = data_rng(config.seed)
        #: The batches, drawn one step ahead in a thread when ``prefetch`` (default: on
        #: CUDA only; see :mod:`che_bench.training.batches`).
        prefetch = device.type == "cuda" if prefetch is None else prefetch
        self.batches = BatchStream(
            task, self.rng, config.batch_size, config.train_lengths, device, prefetch
        )
        self.generator = torch_generator(device, config.seed, 2)
        self.step = self.resumed = 0
        self.length = 0  # the length of the last step's batch
        self.window = LogWindow()
        #: The open window's loss sum (float64: as exact as the Python floats it replaces)
        #: and its (correct, counted) token counts (int64), on the device.
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.counts = torch.zeros(2, dtype=torch.int64, device=device)
        #: (loss, accuracy) of the last closed window: what the row reports at the end.
        self.logged: tuple[float, float] = (math.nan, math.nan)
        self.logged_at = 0  # the step that closed it
        self.unchecked: list[Unchecked] = []

    # -- checkpoints ---------------------------------------------------------------
    def state(self) -> dict:
        return {
            "config_hash": self.config.config_hash,
            "device": self.device.type,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_rng": self.batches.state(),  # at the step boundary
            "generator": self.generator.get_state(),
            "window": asdict(self.window),  # read by settle() before every save
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
        self.batches.set_state(state["data_rng"])
        self.generator.set_state(state["generator"].cpu())
        self.step = self.resumed = int(state["step"])
        self.window = LogWindow(**state.get("window", {}))  # older checkpoints lack both
        window = self.window
        self.loss_sum = torch.tensor(window.loss, dtype=torch.float64, device=self.device)
        counts = [window.correct, window.counted]
        self.counts = torch.tensor(counts, dtype=torch.int64, device=self.device)
        self.logged = tuple(state.get("logged", (math.nan, math.nan)))
        return self.step

    # -- training ------------------------------------------------------------------
    def train_step(self) -> None:
        """One update; its loss, accuracy and gradient norm stay on the device."""
        ahead = self.step + 1 < self.config.steps  # no draw past the last step
        self.length, (inputs, targets, mask) = self.batches.next(ahead)
        noise = None
        if self.config.compile:
            total = inputs.shape[1] + targets.shape[1]
            noise = self.model.dropout_noise(len(inputs), total, self.generator, self.device)
        with autocast(self.device, self.config.precision):
            logits = self.forward(inputs, targets.shape[1], generator=self.generator, noise=noise)
        logits = logits.float()  # the loss in float32 whatever the precision
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        loss = loss.detach()
        self.unchecked.append(Unchecked(self.step + 1, self.length, loss, norm))
        correct, counted = masked_counts(logits.detach(), targets, mask)
        self.loss_sum += loss.double()
        self.counts += torch.stack((correct, counted))
        self.window.steps += 1
        self.step += 1

    def settle(self) -> TrainResult | None:
        """Read the window's sums and check every unchecked step (one host read): the
        diverged result at the first step whose loss or gradient norm is not finite (the
        run stops there), else None with :attr:`window` up to date."""
        unchecked, self.unchecked = self.unchecked, []
        if not unchecked:
            return None
        count = len(unchecked)
        steps = [u.loss.double() for u in unchecked] + [u.norm.double() for u in unchecked]
        # counts below 2**53 are exact in float64: one tensor, one read
        sums = (self.loss_sum.reshape(1), self.counts.double(), torch.stack(steps))
        values = torch.cat(sums).tolist()
        sums, losses, norms = values[:3], values[3 : 3 + count], values[3 + count :]
        for u, loss, norm in zip(unchecked, losses, norms):
            at = f"at step {u.step} (length {u.length})"
            if not math.isfinite(loss):
                self.step = u.step - 1  # that step's update is not counted
                return self.result(loss, None, "diverged", f"loss became {loss} {at}")
            if not math.isfinite(norm):
                self.step = u.step
                return self.result(loss, None, "diverged", f"gradient norm became {norm} {at}")
        window = self.window
        window.loss, window.correct, window.counted = sums[0], int(sums[1]), int(sums[2])
        return None

    def update(self) -> TrainResult | None:
        """One step: train, and at a logging or checkpoint step check and count (and save).
        None while the run goes on; its result once it has ended (trained all steps, or
        diverged), and then the batch stream is closed."""
        result = self._update()
        if result is not None:
            self.batches.close()
        return result

    def _update(self) -> TrainResult | None:
        self.train_step()
        last = self.step == self.config.steps
        logged = self.step % self.config.log_every == 0 or last
        save = self.checkpoint is not None and self.step % self.config.checkpoint_every == 0
        if not (logged or save):
            return None
        diverged = self.settle()  # no checkpoint of a model a non-finite value has spoilt
        if diverged is not None:
            return diverged
        if logged:
            self.logged, self.logged_at = self.window.close(), self.step
            self.loss_sum.zero_()
            self.counts.zero_()
        if save and not last:
            self.save()
        return self.finished() if last else None

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
