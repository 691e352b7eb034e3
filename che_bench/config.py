"""RunConfig: everything one run depends on, resolved once from card, preset and flags.

Resolution order (later wins): the task card ``tasks/<task>.yaml``, the budget preset
``models/<preset>.yaml``, then explicit overrides (CLI flags or a sweep). The resolved
config is hashed; the hash plus the seed identifies a run in the leaderboard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError, UnknownNameError
from che_bench.model import ModelConfig
from che_bench.yamlio import load_mapping

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_PRESET = "quick"

CARD_KEYS = {"name", "level", "description", "chance", "train_lengths", "test_lengths", "params"}
PRESET_KEYS = {
    "description",
    "model",
    "steps",
    "batch_size",
    "lr",
    "train_lengths",
    "test_lengths",
    "eval_samples",
    "eval_batch_size",
    "eval_seed",
    "eval_dropout",
    "log_every",
    "checkpoint_every",
}
MODEL_KEYS = {f.name for f in dataclasses.fields(ModelConfig)}


def data_dir(kind: str) -> Path:
    """``tasks`` or ``models``: inside the wheel, or at the repository root when editable."""
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
    """The task's card, or defaults for a plugin task that ships none."""
    from che_bench.generators import get_task

    instance = get_task(task)
    card: dict[str, Any] = {
        "name": task,
        "level": instance.level,
        "description": instance.description,
        "chance": instance.chance,
        "train_lengths": [1, 40],
        "test_lengths": [41, 500],
        "params": {},
    }
    path = data_dir("tasks") / f"{task}.yaml"
    if path.is_file():
        card.update(load_mapping(path, CARD_KEYS, what="task card"))
    return card


def parse_range(value: Any, what: str) -> tuple[int, int]:
    """``[lo, hi]``, ``"lo-hi"`` or ``"lo..hi"`` → (lo, hi), validated 1 <= lo <= hi."""
    if isinstance(value, str):
        parts = value.replace("..", "-").split("-")
        if len(parts) != 2:
            raise ConfigError(f"{what}: expected LO-HI (e.g. 41-500), got {value!r}")
        value = parts
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected two integers LO-HI, got {value!r}") from None
    if lo < 1 or hi < lo:
        raise ConfigError(f"{what}: need 1 <= LO <= HI, got {lo}-{hi}")
    return lo, hi


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved run. Only ``device``-like knobs are excluded from the hash."""

    task: str
    encoding: str
    encoding_options: dict[str, Any] = field(default_factory=dict)
    task_params: dict[str, Any] = field(default_factory=dict)
    causal: bool = False
    preset: str = DEFAULT_PRESET
    model: ModelConfig = ModelConfig()
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    train_lengths: tuple[int, int] = (1, 40)
    test_lengths: tuple[int, int] = (41, 500)
    eval_samples: int = 512
    eval_batch_size: int = 64
    eval_seed: int = 1
    eval_dropout: bool = False
    log_every: int = 50
    checkpoint_every: int = 500

    #: Fields that change where or how fast a run goes, never its numbers.
    UNHASHED = ("seed", "log_every", "checkpoint_every")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["train_lengths"] = list(self.train_lengths)
        data["test_lengths"] = list(self.test_lengths)
        return data

    @property
    def config_hash(self) -> str:
        data = {k: v for k, v in self.to_dict().items() if k not in self.UNHASHED}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def run_key(self) -> str:
        return f"{self.config_hash}-s{self.seed}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["model"] = ModelConfig(**data.get("model", {}))
        data["train_lengths"] = tuple(data["train_lengths"])
        data["test_lengths"] = tuple(data["test_lengths"])
        return cls(**data)


def resolve(
    task: str,
    encoding: str,
    *,
    preset: str = DEFAULT_PRESET,
    encoding_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> RunConfig:
    """Resolve a RunConfig from the card, the preset and ``overrides`` (None = not given)."""
    from che_bench.encodings import get_encoding

    card = load_card(task)
    values = load_preset(preset)
    entry = get_encoding(encoding)
    options = entry.resolve_options(encoding_options or {})
    unknown = set(overrides) - {f.name for f in dataclasses.fields(RunConfig)}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    merged: dict[str, Any] = {
        "train_lengths": card["train_lengths"],
        "test_lengths": card["test_lengths"],
    }
    merged.update({k: v for k, v in values.items() if k not in ("description", "model")})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    model = ModelConfig(**{**dataclasses.asdict(ModelConfig()), **(values.get("model") or {})})
    if isinstance(merged.get("model"), ModelConfig):
        model = merged.pop("model")
    config = RunConfig(
        task=task,
        encoding=encoding,
        encoding_options=options,
        task_params=dict(card.get("params") or {}),
        preset=Path(preset).stem,
        model=model,
        train_lengths=parse_range(merged.pop("train_lengths"), "train lengths"),
        test_lengths=parse_range(merged.pop("test_lengths"), "test lengths"),
        **{k: v for k, v in merged.items() if k != "model"},
    )
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Reject impossible values with one-line messages; warn on train/test overlap."""
    positive = (
        "steps",
        "batch_size",
        "eval_samples",
        "eval_batch_size",
        "log_every",
        "checkpoint_every",
    )
    for name in positive:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if not isinstance(config.lr, int | float) or not 0 < config.lr < float("inf"):
        raise ConfigError(f"lr must be a positive finite number, got {config.lr!r}")
    if not 0 <= config.model.dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {config.model.dropout}")
    if config.model.d_model % config.model.num_heads:
        raise ConfigError("d_model must be divisible by num_heads")
    (tr_lo, tr_hi), (te_lo, te_hi) = config.train_lengths, config.test_lengths
    if te_lo <= tr_hi and tr_lo <= te_hi:
        warnings.warn(
            f"test lengths {te_lo}-{te_hi} overlap training lengths {tr_lo}-{tr_hi}: "
            "the score no longer measures length generalization",
            UserWarning,
            stacklevel=2,
        )
