"""Small parsers and defaults shared by the library and the command line (one copy each)."""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError

#: RunConfig fields added after rows were stored → the default under which a field stays out
#: of the config hash (so every earlier config keeps its hash) and out of the protocol.
HASHED_IF_CHANGED: dict[str, Any] = {
    "precision": "fp32",
    "test_stride": 1,
    "train_eval_samples": 64,
}

DEFAULT_LEADERBOARD = Path("leaderboards/local.jsonl")
DEFAULT_RUN_DIR = Path("runs")
#: The folder the command line's default leaderboard and run folder are in (default: the
#: current folder), so that every command of a project finds the same results.
HOME_ENV = "CHE_BENCH_HOME"
#: How ``--help`` shows the two defaults.
LEADERBOARD_SHOWN = f"$CHE_BENCH_HOME/{DEFAULT_LEADERBOARD} if set, else ./{DEFAULT_LEADERBOARD}"
RUN_DIR_SHOWN = f"$CHE_BENCH_HOME/{DEFAULT_RUN_DIR} if set, else ./{DEFAULT_RUN_DIR}"
EXECUTORS = ("local", "ray", "slurm", "inline")
#: The most seeds one grid or ``run --seeds`` may name (a typo like 0-100000 is refused).
MAX_SEEDS = 1000

SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kb": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "g": 2**30,
    "gb": 2**30,
}


def home() -> Path:
    """``$CHE_BENCH_HOME``, or the current folder."""
    return Path(os.environ.get(HOME_ENV) or ".")


def default_leaderboard() -> Path:
    return home() / DEFAULT_LEADERBOARD


def default_run_dir() -> Path:
    return home() / DEFAULT_RUN_DIR


def parse_size(text: str | None, what: str = "--max-memory") -> int | None:
    """``2GB``, ``512MB``, ``1.5g`` → bytes; None stays None."""
    if text is None:
        return None
    raw = text.strip().lower().replace(" ", "").replace("ib", "b")
    number = raw.rstrip("kmgb")
    unit = raw[len(number) :]
    try:
        value = float(number) * SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise ConfigError(f"{what}: expected a size like 2GB or 512MB, got {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"{what} must be a positive number of bytes, got {text!r}")
    return int(value)


def parse_seeds(value: Any, where: str = "seeds") -> list[int]:
    """``3``, ``"0-9"``, ``"0,2,5"`` or ``[0, 2, 5]`` → distinct non-negative seeds, in order."""
    items = value if isinstance(value, list) else [value]
    seeds: list[int] = []
    expected = "N, LO-HI, a comma list or a list"
    try:
        for item in items:
            if isinstance(item, bool | float):
                raise ValueError
            if isinstance(item, int):
                seeds.append(item)
                continue
            for part in str(item).split(","):
                lo, sep, hi = part.strip().partition("-")
                if not sep:
                    seeds.append(int(lo))
                    continue
                first, last = int(lo), int(hi)
                if last < first:
                    raise ConfigError(f"{where}: range {part.strip()!r} is empty (LO > HI)")
                if last - first >= MAX_SEEDS:
                    raise ConfigError(f"{where}: at most {MAX_SEEDS} seeds, got {value!r}")
                seeds.extend(range(first, last + 1))
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"{where}: seeds must be non-negative integers, got {value!r}")
    seeds = list(dict.fromkeys(seeds))
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"{where}: at most {MAX_SEEDS} seeds, got {len(seeds)}")
    return seeds


def fmt_range(pair: tuple[int, int] | list[int]) -> str:
    """``(1, 40)`` → ``"1-40"``."""
    return f"{pair[0]}-{pair[1]}"


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` matches any shell-style pattern (every name, for no patterns)."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)
