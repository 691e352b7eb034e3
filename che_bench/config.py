"""RunConfig: everything one run depends on, resolved once from task, preset and flags.

Resolution order (later wins): the task class (its default lengths; its constructor's
keyword defaults are the task parameters), the budget preset ``models/<preset>.yaml``, then
explicit overrides (CLI flags or a sweep; ``task_params`` merge into the task's defaults).
The resolved config is hashed; the hash plus the seed identifies a run in the leaderboard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError
from che_bench.model_config import ModelConfig, resolve_model
from che_bench.presets import load_preset
from che_bench.util import HASHED_IF_CHANGED

DEFAULT_PRESET = "quick"


def _length(value: Any) -> int:
    """An integer length from an int or a digit string; floats and booleans are refused."""
    if isinstance(value, bool | float):
        raise ValueError(value)
    return int(value)


def parse_range(value: Any, what: str) -> tuple[int, int]:
    """``[lo, hi]``, ``"lo-hi"`` or ``"lo..hi"`` → (lo, hi), validated 1 <= lo <= hi."""
    if isinstance(value, str):
        parts = value.replace("..", "-").split("-")
        if len(parts) != 2:
            raise ConfigError(f"{what}: expected LO-HI (e.g. 41-500), got {value!r}")
        value = parts
    try:
        lo, hi = (_length(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: expected two integers LO-HI, got {value!r}") from None
    if lo < 1 or hi < lo:
        raise ConfigError(f"{what}: need 1 <= LO <= HI, got {lo}-{hi}")
    return lo, hi


def parse_strided(value: Any, what: str) -> tuple[tuple[int, int], int | None]:
    """``"lo-hi:stride"`` → ((lo, hi), stride); without ``:stride`` the stride is None."""
    if isinstance(value, str) and ":" in value:
        span, _, step = value.rpartition(":")
        try:
            stride = _length(step)
        except ValueError:
            raise ConfigError(
                f"{what}: expected LO-HI:STRIDE (e.g. 41-500:10), got {value!r}"
            ) from None
        return parse_range(span, what), stride
    return parse_range(value, what), None


def strided(lengths: tuple[int, int], stride: int) -> list[int]:
    """Every ``stride``-th length from lo, and hi itself: (41, 500), 10 → 41, 51, …, 491, 500."""
    lo, hi = lengths
    picked = list(range(lo, hi + 1, stride))
    return picked if picked[-1] == hi else [*picked, hi]


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
    test_stride: int = 1
    eval_samples: int = 512
    train_eval_samples: int = 64
    eval_batch_size: int = 64
    eval_seed: int = 1
    eval_dropout: bool = False
    log_every: int = 50
    checkpoint_every: int = 500
    precision: str = "fp32"
    deterministic: bool = True
    compile: bool = False
    keep_model: bool = True  # keep the final weights under <run_dir>/<run_key>/model.pt
    log: str | None = None  # also send the run to "tensorboard" or "wandb" (not recorded)
    log_dir: str | None = None  # where the logger writes (default: the run's own folder)

    #: Fields that change where or how fast a run goes, or what it leaves on disk, never its
    #: numbers (``deterministic`` and ``compile`` may change float rounding on CUDA; both are
    #: recorded in the row).
    UNHASHED = ("seed", "log_every", "checkpoint_every", "deterministic", "compile", "keep_model")
    #: Where else a run is reported (:mod:`che_bench.running.loggers`): in neither the hash
    #: nor :meth:`to_dict`, so never in a row, a kept model's config or a report's protocol.
    NOT_RECORDED = ("log", "log_dir")
    #: Hashed fields added after rows were first written: they enter the hash only when set
    #: away from their default, so every earlier config keeps its hash.
    HASHED_IF_CHANGED = HASHED_IF_CHANGED

    @property
    def test_length_list(self) -> list[int]:
        """The lengths scored: every ``test_stride``-th of ``test_lengths``, ends included."""
        return strided(self.test_lengths, self.test_stride)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in self.NOT_RECORDED:
            del data[name]
        data["train_lengths"] = list(self.train_lengths)
        data["test_lengths"] = list(self.test_lengths)
        return data

    @property
    def config_hash(self) -> str:
        data = {
            k: v
            for k, v in self.to_dict().items()
            if k not in self.UNHASHED and self.HASHED_IF_CHANGED.get(k, object()) != v
        }
        late = _options_hashed_if_changed(self.encoding)
        data["encoding_options"] = {
            k: v for k, v in self.encoding_options.items() if late.get(k, object()) != v
        }
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


def _options_hashed_if_changed(encoding: str) -> dict[str, Any]:
    """The encoding's options that enter the hash only away from these defaults ({} for an
    encoding that is not installed)."""
    from che_bench.encodings import ENCODINGS

    return dict(ENCODINGS.get(encoding).hashed_if_changed) if encoding in ENCODINGS else {}


def resolve(
    task: str,
    encoding: str,
    *,
    preset: str = DEFAULT_PRESET,
    encoding_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> RunConfig:
    """Resolve a RunConfig from the task, the preset and ``overrides`` (None = not given)."""
    from che_bench.encodings import get_encoding
    from che_bench.generators import build_task, resolve_task_params

    task_params = resolve_task_params(task, overrides.pop("task_params", None))
    instance = build_task(task, task_params)  # the constructor checks the values too
    values = load_preset(preset)
    entry = get_encoding(encoding)
    options = entry.resolve_options(encoding_options or {})
    unknown = set(overrides) - {f.name for f in dataclasses.fields(RunConfig)}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    merged: dict[str, Any] = {
        "train_lengths": instance.train_lengths,
        "test_lengths": instance.test_lengths,
    }
    merged.update({k: v for k, v in values.items() if k not in ("description", "model")})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    test_lengths, stride = parse_strided(merged.pop("test_lengths"), "test lengths")
    if stride is not None and overrides.get("test_stride") is None:
        merged["test_stride"] = stride
    model = resolve_model(values.get("model"), merged.pop("model", None))
    config = RunConfig(
        task=task,
        encoding=encoding,
        encoding_options=options,
        task_params=task_params,
        preset=Path(preset).stem,
        model=model,
        train_lengths=parse_range(merged.pop("train_lengths"), "train lengths"),
        test_lengths=test_lengths,
        **merged,
    )
    validate(config)
    return config


#: ``fp32``: everything in float32. ``bf16``: matmuls and attention under bfloat16 autocast
#: (parameters, optimizer state and the loss stay float32).
PRECISIONS = ("fp32", "bf16")
#: Experiment trackers a run can also be sent to (``--log``).
LOGGERS = ("tensorboard", "wandb")
#: The most training steps a config may ask for (5× the 1M of Delétang et al., ICLR 2023).
MAX_STEPS = 5_000_000
#: The longest input length a config may name (the papers test up to 500).
MAX_LENGTH = 100_000


def _integer(value: Any, what: str, low: int, high: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{what} must be at most {high:,}, got {value:,}")


def _flag(value: Any, what: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, got {value!r}")


def validate(config: RunConfig) -> None:
    """Reject impossible values with one-line messages naming the field and the valid range;
    warn on train/test overlap. Builds the encoding once, so its options and its longest
    supported sequence are checked before any training."""
    _integer(config.steps, "steps", 1, MAX_STEPS)
    for name in ("batch_size", "eval_samples", "eval_batch_size", "log_every", "checkpoint_every"):
        _integer(getattr(config, name), name, 1)
    _integer(config.test_stride, "test_stride", 1)
    _integer(config.train_eval_samples, "train_eval_samples", 0)
    _integer(config.seed, "seed", 0)
    _integer(config.eval_seed, "eval_seed", 0)
    _flag(config.eval_dropout, "eval_dropout")
    _flag(config.causal, "causal")
    _flag(config.deterministic, "deterministic")
    _flag(config.compile, "compile")
    _flag(config.keep_model, "keep_model")
    if config.log is not None and config.log not in LOGGERS:
        raise ConfigError(f"log must be one of {', '.join(LOGGERS)}, got {config.log!r}")
    if config.log_dir is not None and not isinstance(config.log_dir, str | Path):
        raise ConfigError(f"log_dir must be a folder path, got {config.log_dir!r}")
    if config.log_dir is not None and config.log is None:
        raise ConfigError("log_dir is set but no logger is: add --log tensorboard or --log wandb")
    if config.precision not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}"
        )
    lr = config.lr
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < float("inf"):
        raise ConfigError(f"lr must be a positive finite number, got {lr!r}")
    model = config.model
    for name in ("num_layers", "d_model", "num_heads", "ffn_mult"):
        _integer(getattr(model, name), f"model.{name}", 1)
    dropout = model.dropout
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout must be a number in [0, 1), got {dropout!r}")
    if model.d_model % model.num_heads:
        raise ConfigError(
            f"model.d_model ({model.d_model}) must be divisible by model.num_heads "
            f"({model.num_heads})"
        )
    (tr_lo, tr_hi), (te_lo, te_hi) = config.train_lengths, config.test_lengths
    if max(tr_hi, te_hi) > MAX_LENGTH:
        raise ConfigError(f"lengths must be at most {MAX_LENGTH:,}, got {max(tr_hi, te_hi):,}")
    _check_encoding(config)
    if te_lo <= tr_hi and tr_lo <= te_hi:
        warnings.warn(
            f"test lengths {te_lo}-{te_hi} overlap training lengths {tr_lo}-{tr_hi}: "
            "the score no longer measures length generalization",
            UserWarning,
            stacklevel=2,
        )


def _check_encoding(config: RunConfig) -> None:
    """Build the encoding (its constructor validates the options) and check that it supports
    the longest sequence, tokens plus output placeholders, that the run will feed it."""
    from che_bench.encodings import build_encoding
    from che_bench.generators import get_task
    from che_bench.seeding import isolated_init_seed

    with isolated_init_seed(0):
        encoding = build_encoding(
            config.encoding,
            config.model.dims,
            causal=config.causal,
            options=config.encoding_options,
        )
    limit = encoding.max_length
    if limit is None:
        return
    task = get_task(config.task, **config.task_params)
    hi = max(config.train_lengths[1], config.test_lengths[1])
    longest = task.input_length(hi) + task.output_length(hi)
    if longest > limit:
        raise ConfigError(
            f"encoding {config.encoding!r} supports sequences up to {limit} tokens but length "
            f"{hi} needs {longest} (input + outputs); raise it with --pe-opt max_length={longest}"
        )
