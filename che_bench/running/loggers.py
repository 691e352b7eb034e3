"""Sending a run to the experiment trackers researchers use: TensorBoard and Weights & Biases.

``--log tensorboard|wandb`` (the config's ``log`` and ``log_dir`` fields, which are neither
hashed nor recorded in the row) picks a :class:`Logger`. It gets the resolved config when
training starts, the loss and accuracy at every logging step, and at the end the evaluation
curve (accuracy per length, the training lengths included) and the score. The leaderboard
row stays the source of truth; a logger that raises is a warning and is switched off for
that run, never a failed run (:class:`che_bench.running.run_log.RunLog` calls it, where
training runs: in a sweep's worker, since the config carries the choice there).

- TensorBoard (``torch.utils.tensorboard.SummaryWriter``, extra ``tensorboard``): event files
  in ``RUN_DIR/<run_key>/tensorboard``, or ``LOG_DIR/<run_key>`` with ``--log-dir``.
  Scalars ``train/loss``, ``train/accuracy``, ``train/steps_per_s`` by step, ``eval/accuracy``
  by length, ``eval/score``; the config as text and as hyperparameters (the HParams tab).
- Weights & Biases (``wandb``, extra ``wandb``): one W&B run named by the run_key, grouped by
  task/encoding, project ``$WANDB_PROJECT`` or ``che-bench``; ``WANDB_MODE=offline`` works.
  The same metrics, ``eval/accuracy`` plotted against ``eval/length``, scores in the summary.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from che_bench.errors import CheBenchError

if TYPE_CHECKING:
    from che_bench.config import RunConfig
    from che_bench.results.record import RunRecord
    from che_bench.training.train import Progress

#: backend → (the module that must import, the extra that installs it, its name in messages)
BACKENDS = {
    "tensorboard": ("tensorboard", "tensorboard", "TensorBoard"),
    "wandb": ("wandb", "wandb", "Weights & Biases"),
}


class LoggerWarning(UserWarning):
    """A logger failed; the run goes on without it."""


class Logger(Protocol):
    """An experiment tracker's view of one run."""

    def start(self, config: RunConfig, resumed_from: int = 0) -> None:
        """Training starts (at ``resumed_from`` after a checkpoint): log the config."""

    def step(self, progress: Progress) -> None:
        """A logging step: loss and accuracy over the window ending at ``progress.step``."""

    def finish(self, record: RunRecord) -> None:
        """The run was evaluated: log its curve and scores."""

    def close(self) -> None:
        """Flush and release everything (also when the run failed before :meth:`finish`)."""


def require(backend: str) -> None:
    """Fail in one line, naming the extra to install, if ``backend`` cannot be imported."""
    module, extra, name = BACKENDS[backend]
    try:
        __import__(module)
    except ImportError:
        raise CheBenchError(
            f"--log {backend} needs {name}: install che-bench[{extra}] "
            f"(pip install 'che-bench[{extra}]')"
        ) from None


def flat_config(config: RunConfig) -> dict[str, Any]:
    """The resolved config as one level of scalars (``model.d_model``; lists as text)."""
    flat: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        items = value.items() if key == "model" else [("", value)]
        for sub, v in items:
            name = f"{key}.{sub}" if sub else key
            flat[name] = v if isinstance(v, bool | int | float | str) else json.dumps(v)
    return flat


def evaluation_curve(record: RunRecord) -> list[tuple[int, float]]:
    """(length, accuracy) at every evaluated length, the training lengths first."""
    curve = {**record.train_accuracy_by_length, **record.accuracy_by_length}
    return sorted((int(k), v) for k, v in curve.items() if v is not None)


class TensorBoardLogger:
    """Event files in ``folder``, written with ``torch.utils.tensorboard.SummaryWriter``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer: Any = None
        self.config: RunConfig | None = None

    def start(self, config: RunConfig, resumed_from: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run hides what its killed predecessor logged after the checkpoint.
        purge = resumed_from + 1 if resumed_from else None
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=purge)
        self.config = config
        text = json.dumps(config.to_dict(), indent=1, default=str)
        self.writer.add_text("config", f"```\n{text}\n```", global_step=resumed_from)

    def step(self, progress: Progress) -> None:
        for name in ("loss", "accuracy", "steps_per_s"):
            self.writer.add_scalar(f"train/{name}", getattr(progress, name), progress.step)

    def finish(self, record: RunRecord) -> None:
        for length, accuracy in evaluation_curve(record):
            self.writer.add_scalar("eval/accuracy", accuracy, length)
        if record.score is not None:
            self.writer.add_scalar("eval/score", record.score, record.steps)
        metrics = {"hparams/score": record.score, "hparams/train_score": record.train_score}
        metrics = {k: v for k, v in metrics.items() if v is not None}
        if self.config is not None and metrics:  # the HParams tab, in this run's folder
            self.writer.add_hparams(flat_config(self.config), metrics, run_name=".")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WandbLogger:
    """One Weights & Biases run, its files under ``folder`` (None: W&B's own default)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.run: Any = None

    def start(self, config: RunConfig, resumed_from: int = 0) -> None:
        import wandb

        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "che-bench",
            name=config.run_key,
            group=f"{config.task}/{config.encoding}",
            job_type="train",
            tags=[config.task, config.encoding, f"preset:{config.preset}"],
            config={**config.to_dict(), "run_key": config.run_key, "resumed_from": resumed_from},
            dir=str(self.folder) if self.folder is not None else None,
        )
        self.run.define_metric("eval/length")
        self.run.define_metric("eval/accuracy", step_metric="eval/length")

    def step(self, progress: Progress) -> None:
        values = {f"train/{n}": getattr(progress, n) for n in ("loss", "accuracy", "steps_per_s")}
        self.run.log(values, step=progress.step)

    def finish(self, record: RunRecord) -> None:
        for length, accuracy in evaluation_curve(record):
            self.run.log({"eval/length": length, "eval/accuracy": accuracy})
        self.run.summary.update(
            {
                "score": record.score,
                "train_score": record.train_score,
                "final_loss": record.final_loss,
                "chance": record.chance,
                "status": record.status,
            }
        )

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()


def log_folder(config: RunConfig, run_dir: Path | None) -> Path | None:
    """Where ``config.log``'s files go: for TensorBoard ``LOG_DIR/<run_key>``, else
    ``RUN_DIR/<run_key>/tensorboard``; for W&B ``LOG_DIR`` (None: W&B's default)."""
    given = Path(config.log_dir) if config.log_dir else None
    if config.log != "tensorboard":
        return given
    if given is not None:
        return given / config.run_key
    return run_dir / config.run_key / "tensorboard" if run_dir is not None else None


def make_logger(config: RunConfig, run_dir: Path | None) -> Logger | None:
    """The logger ``config.log`` names, writing in :func:`log_folder`; None when there is
    none, or nowhere to put TensorBoard's files."""
    folder = log_folder(config, run_dir)
    if config.log == "tensorboard":
        if folder is None:
            warnings.warn(
                f"run {config.run_key}: no TensorBoard logging without a run folder or log_dir",
                LoggerWarning,
                stacklevel=2,
            )
            return None
        return TensorBoardLogger(folder)
    if config.log == "wandb":
        return WandbLogger(folder)
    return None
