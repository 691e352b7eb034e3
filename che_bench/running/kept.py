"""Kept models: the final weights of every ``ok`` run, for re-scoring and inspection.

A run keeps ``<run_dir>/<run_key>/model.pt`` (the state dict, about 1 MB for the reference
encoder) beside ``config.json`` (the resolved :class:`~che_bench.config.RunConfig` and the
training row's ``run_id``), unless its config says ``keep_model: false``. The model is
rebuilt from the config and loaded exactly, so evaluating it again reproduces the row's
accuracies (same device, same evaluation settings).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from che_bench.errors import ConfigError

if TYPE_CHECKING:
    from che_bench.config import RunConfig
    from che_bench.model import Encoder

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class KeptModel:
    """A run's kept model on disk: where, its config and the run it came from."""

    directory: Path
    config: RunConfig
    run_id: str | None
    score: float | None

    @property
    def run_key(self) -> str:
        return self.config.run_key

    @property
    def path(self) -> Path:
        return self.directory / MODEL_FILE

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in (self.path, self.directory / CONFIG_FILE))

    def load(self, device: Any = "cpu") -> Encoder:
        """The trained encoder, in eval mode on ``device``."""
        import torch

        from che_bench.running.runner import build_model

        model = build_model(self.config, device)
        state = torch.load(self.path, map_location=device, weights_only=True)
        model.load_state_dict(state)
        return model.eval()


def save(
    directory: Path, config: RunConfig, model: Encoder, run_id: str, score: float | None
) -> Path:
    """Write ``model``'s weights and ``config`` to ``directory`` (each atomically: a crash
    leaves the old file or the new one); the model file's path."""
    from che_bench.training.checkpoints import write_atomic

    weights = directory / MODEL_FILE
    write_atomic(weights, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    about = {
        "run_key": config.run_key,
        "run_id": run_id,
        "score": score,
        "config": config.to_dict(),
    }
    text_tmp = directory / f"{CONFIG_FILE}.tmp{os.getpid()}"
    text_tmp.write_text(json.dumps(about, indent=1, default=str) + "\n")
    os.replace(text_tmp, directory / CONFIG_FILE)
    return weights


def _read(directory: Path) -> KeptModel | None:
    from che_bench.config import RunConfig

    try:
        about = json.loads((directory / CONFIG_FILE).read_text())
        config = RunConfig.from_dict(about["config"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (directory / MODEL_FILE).is_file():
        return None
    return KeptModel(directory, config, about.get("run_id"), about.get("score"))


def kept_models(run_dir: Path) -> Iterator[KeptModel]:
    """Every readable kept model under ``run_dir``, by run_key."""
    if not run_dir.is_dir():
        return
    for directory in sorted(run_dir.iterdir()):
        kept = _read(directory) if directory.is_dir() else None
        if kept is not None:
            yield kept


def find(run_dir: Path, key: str) -> KeptModel:
    """The kept model whose run_key is ``key`` or starts with it (a unique prefix); a
    one-line ConfigError naming what to do when there is none or several."""
    exact = _read(run_dir / key)
    if exact is not None:
        return exact
    found = [k for k in kept_models(run_dir) if k.run_key.startswith(key)]
    if len(found) == 1:
        return found[0]
    if found:
        keys = ", ".join(k.run_key for k in found[:4])
        raise ConfigError(
            f"run key {key!r} matches {len(found)} kept models ({keys}…); give more of it"
        )
    raise ConfigError(
        f"no kept model for run {key!r} under {run_dir}/ (`che-bench runs list` shows them; "
        "runs made with --no-keep-model or under another --run-dir keep none there)"
    )


def remove(kept: KeptModel) -> None:
    """Delete a kept model; its folder too, unless it holds anything else (the run's
    training curve, or the checkpoint of a run that is resuming)."""
    for name in (MODEL_FILE, CONFIG_FILE):
        (kept.directory / name).unlink(missing_ok=True)
    if not any(kept.directory.iterdir()):
        shutil.rmtree(kept.directory, ignore_errors=True)
