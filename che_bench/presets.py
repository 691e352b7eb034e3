"""Budget presets (``models/<name>.yaml``) and task cards: the data a RunConfig resolves from."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError, UnknownNameError
from che_bench.model_config import ModelConfig
from che_bench.yamlio import load_mapping

PACKAGE_DIR = Path(__file__).resolve().parent
PRESET_KEYS = {
    "description",
    "model",
    "steps",
    "batch_size",
    "lr",
    "train_lengths",
    "test_lengths",
    "test_stride",
    "eval_samples",
    "train_eval_samples",
    "eval_batch_size",
    "eval_seed",
    "eval_dropout",
    "log_every",
    "checkpoint_every",
}
MODEL_KEYS = {f.name for f in dataclasses.fields(ModelConfig)}


def data_dir(kind: str) -> Path:
    """``models``: inside the wheel, or at the repository root when editable."""
    packaged = PACKAGE_DIR / "_data" / kind
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / kind


def list_presets() -> list[str]:
    return sorted(p.stem for p in data_dir("models").glob("*.yaml"))


def preset_path(name: str) -> Path:
    """A preset name (``quick``) or a path to a YAML file."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist")
        return path
    path = data_dir("models") / f"{name}.yaml"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(name, list_presets(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownNameError(
            f"unknown preset {name!r}; {hint}choose from {', '.join(list_presets())} "
            "or pass a YAML file"
        )
    return path


def shipped(value: str | Path, kind: str, template: str) -> Path:
    """``value`` as a path if it names a file or looks like one (has a ``/`` or a suffix),
    else the file shipped with che-bench (``kind`` folder, ``template`` filled with the
    name): ``shipped("ci", "leaderboards", "baseline-{}.jsonl")``."""
    path = Path(value)
    if path.is_file() or "/" in str(value) or path.suffix:
        return path
    return data_dir(kind) / template.format(value)


def load_preset(name: str) -> dict[str, Any]:
    path = preset_path(name)
    data = load_mapping(path, PRESET_KEYS, what="preset")
    model = data.get("model") or {}
    if not isinstance(model, dict) or set(model) - MODEL_KEYS:
        bad = sorted(set(model) - MODEL_KEYS) if isinstance(model, dict) else model
        raise ConfigError(
            f"{path}: bad model section {bad!r}; valid keys: {', '.join(sorted(MODEL_KEYS))}"
        )
    return data


def load_card(task: str) -> dict[str, Any]:
    """The facts of a task, read from its class (built with its default parameters)."""
    from che_bench.generators import get_task, resolve_task_params

    instance = get_task(task)
    return {
        "name": task,
        "level": instance.level,
        "description": instance.description,
        "chance": instance.chance,
        "train_lengths": list(instance.train_lengths),
        "test_lengths": list(instance.test_lengths),
        "params": resolve_task_params(task),
    }
