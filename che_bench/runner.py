"""One run, end to end: build → train (resumable) → evaluate → one leaderboard row."""

from __future__ import annotations

import contextlib
import platform
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from che_bench import __version__
from che_bench.config import RunConfig
from che_bench.encodings import build_encoding
from che_bench.errors import CheBenchError, ConfigError
from che_bench.evaluate import evaluate
from che_bench.generators import get_task
from che_bench.leaderboard import SCHEMA_VERSION, append_row
from che_bench.model import Encoder
from che_bench.seeding import isolated_init_seed
from che_bench.train import Progress, Trainer, TrainResult

DEFAULT_LEADERBOARD = Path("leaderboards/local.jsonl")
DEFAULT_RUN_DIR = Path("runs")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA GPU is visible; use cpu/auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def build_model(config: RunConfig, device: torch.device | str = "cpu") -> Encoder:
    """The encoder for ``config``, its parameters a pure function of ``config.seed``."""
    task = get_task(config.task)
    with isolated_init_seed(config.seed):
        encoding = build_encoding(
            config.encoding,
            config.model.dims,
            causal=config.causal,
            options=config.encoding_options,
        )
        model = Encoder(task.input_size, task.output_size, encoding, config.model)
    return model.to(device)


@dataclass
class RunHooks:
    """Callbacks the CLI uses to show progress; all optional."""

    on_train: Callable[[Progress], None] | None = None
    on_eval: Callable[[int, int], None] | None = None
    on_phase: Callable[[str], None] | None = None
    on_resume: Callable[[int], None] | None = None


def execute(
    config: RunConfig,
    *,
    device: str = "auto",
    run_dir: Path | None = DEFAULT_RUN_DIR,
    max_memory: int | None = None,
    hooks: RunHooks | None = None,
) -> dict[str, Any]:
    """Train and evaluate ``config``; return its leaderboard row (never raises for a
    failing model: the row's status says ``failed`` or ``diverged``)."""
    hooks = hooks or RunHooks()
    started = time.perf_counter()
    torch_device = resolve_device(device)
    task = get_task(config.task)
    checkpoint = run_dir / config.run_key / "checkpoint.pt" if run_dir else None
    row = base_row(config, torch_device)
    with failure_recorded(row):
        model = build_model(config, torch_device)
        trainer = Trainer(model, task, config, torch_device, checkpoint)
        if hooks.on_phase:
            hooks.on_phase("train")
        result = trainer.run(hooks.on_train, on_resume=hooks.on_resume)
        finish_row(row, result, trainer, torch_device, max_memory, hooks)
    row["wall_time_s"] = round(time.perf_counter() - started, 3)
    return row


@contextlib.contextmanager
def failure_recorded(*rows: dict[str, Any]) -> Iterator[None]:
    """A model that raises is a result, not a crash: mark ``rows`` failed with the error.
    User errors (:class:`CheBenchError`) still propagate."""
    try:
        yield
    except CheBenchError:
        raise
    except Exception as exc:
        for row in rows:
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}")


def finish_row(
    row: dict[str, Any],
    result: TrainResult,
    trainer: Trainer,
    device: torch.device,
    max_memory: int | None,
    hooks: RunHooks,
) -> None:
    """Record ``result`` in ``row``; if it trained, evaluate the model and record the scores."""
    row.update(steps=result.steps, final_loss=result.final_loss, status=result.status)
    row["error"] = result.error
    if result.status != "ok":
        return
    if hooks.on_phase:
        hooks.on_phase("evaluate")
    scores = evaluate(
        trainer.model, trainer.task, trainer.config, device,
        max_memory=max_memory, progress=hooks.on_eval,
    )  # fmt: skip
    row["accuracy_by_length"] = {str(k): v for k, v in scores.accuracy_by_length.items()}
    row["score"] = scores.score


def base_row(config: RunConfig, device: torch.device) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_key": config.run_key,
        "run_id": uuid.uuid4().hex,
        "status": "failed",
        "error": None,
        "task": config.task,
        "encoding": config.encoding,
        "encoding_options": dict(config.encoding_options),
        "seed": config.seed,
        "lr": config.lr,
        "preset": config.preset,
        "config": config.to_dict(),
        "config_hash": config.config_hash,
        "train_lengths": list(config.train_lengths),
        "test_lengths": list(config.test_lengths),
        "accuracy_by_length": {},
        "score": None,
        "chance": get_task(config.task).chance,
        "steps": 0,
        "final_loss": None,
        "wall_time_s": 0.0,
        "device": device_name(device),
        "versions": {
            "che_bench": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}"


def run(
    config: RunConfig,
    *,
    leaderboard: Path | None = DEFAULT_LEADERBOARD,
    device: str = "auto",
    run_dir: Path | None = DEFAULT_RUN_DIR,
    max_memory: int | None = None,
    hooks: RunHooks | None = None,
) -> dict[str, Any]:
    """Execute ``config`` and append its row to ``leaderboard`` (unless None)."""
    row = execute(config, device=device, run_dir=run_dir, max_memory=max_memory, hooks=hooks)
    if leaderboard is not None:
        append_row(leaderboard, row)
    if run_dir is not None:
        remove_checkpoint(run_dir, config.run_key)
    return row


def remove_checkpoint(run_dir: Path, run_key: str) -> None:
    """Delete a finished run's checkpoint (its row is on disk) and its empty folder."""
    checkpoint = run_dir / run_key / "checkpoint.pt"
    checkpoint.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        checkpoint.parent.rmdir()
