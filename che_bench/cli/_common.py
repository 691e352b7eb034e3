"""What every ``che-bench`` command shares: the consoles, one-line errors, common parsers.

Command modules import from here; nothing here imports a command module (no cycle).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from che_bench.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

# Pipes and CI logs get wide lines instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = escape(str(message))  # an encoding label like rope[base=500] is text, not markup
    err_console.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def say(*objects: Any, **options: Any) -> None:
    """Print on the CLI's console without wrapping or highlighting (logs stay greppable)."""
    console.print(*objects, **{"highlight": False, "soft_wrap": True, **options})


def parse_pe_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--pe-opt expects KEY=VALUE (e.g. kernel=5), got {pair!r}")
        options[key.strip()] = value.strip()
    return options


#: Kernel file systems: files there accept an open for writing (as root) but no rows.
VIRTUAL_ROOTS = ("/proc", "/sys", "/dev")


def check_writable(path: Path, what: str = "leaderboard") -> None:
    """Fail before training, not after, when rows cannot be appended to ``path``.

    Writes nothing: an existing file must be a regular file that opens for appending; a new
    one needs its nearest existing parent to be a directory where a file can be created.
    """
    hint = f"pass --{what} PATH"
    resolved = path.resolve()
    if any(resolved.is_relative_to(root) for root in VIRTUAL_ROOTS):
        raise ConfigError(f"{what} {path} is on a kernel file system; {hint}")
    if path.exists():
        if not path.is_file():
            raise ConfigError(f"{what} {path} is not a regular file; {hint}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
        except OSError as exc:
            raise ConfigError(f"{what} {path} is not writable ({exc.strerror}); {hint}") from None
        return
    parent = next((p for p in resolved.parents if p.exists()), Path("/"))
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: {parent} is not a directory; {hint}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: cannot create files in {parent}; {hint}")


class Real(click.ParamType):
    """A float option that refuses NaN, infinity (unless ``allow_inf``) and out-of-range values."""

    name = "number"

    def __init__(
        self, low: float | None = None, high: float | None = None, *,
        low_open: bool = False, allow_inf: bool = False,
    ) -> None:  # fmt: skip
        self.low, self.high, self.low_open, self.allow_inf = low, high, low_open, allow_inf

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if math.isnan(number) or (math.isinf(number) and not self.allow_inf):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low, high = self.low, self.high
        if low is not None and (number < low or (self.low_open and number == low)):
            self.fail(f"{value!r} must be {'>' if self.low_open else '>='} {low:g}", param, ctx)
        if high is not None and number > high:
            self.fail(f"{value!r} must be <= {high:g}", param, ctx)
        return number


#: Settings that are mappings, reached field by field with a dotted ``--set`` key.
NESTED_SETTINGS = ("model", "task_params")


def parse_sets(
    pairs: Sequence[str], into: dict[str, Any] | None = None, keep: bool = False
) -> dict[str, Any]:
    """``--set key=value`` with the value read as YAML (numbers, lists, booleans), merged into
    ``into`` (``keep``: a setting ``into`` already has wins); ``--set model.d_model=128``
    sets one field of a mapping setting."""
    from che_bench.running.sweep import override_problem
    from che_bench.yamlio import parse_value

    overrides = into if into is not None else {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. steps=100), got {pair!r}")
        head, dot, field = key.partition(".")
        problem = override_problem(head)
        if problem:
            raise ConfigError(f"--set {key}: {problem}")
        value = parse_value(raw, f"--set {key}")
        if keep and not dot and key in overrides:
            continue
        if not dot:
            overrides[key] = value
        elif head in NESTED_SETTINGS and field and "." not in field:
            nested = overrides.get(head)
            overrides[head] = {**(nested if isinstance(nested, dict) else {}), field: value}
        else:
            nested = " or ".join(f"{n}.FIELD" for n in NESTED_SETTINGS)
            raise ConfigError(f"--set {key}: only {nested} take a dotted key")
    return overrides


def run_dir_option(help: str) -> Callable[[F], F]:
    """``--run-dir``, defaulting to ``$CHE_BENCH_HOME/runs`` or ``./runs``."""
    from che_bench.util import RUN_DIR_SHOWN, default_run_dir

    return click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
                        default=default_run_dir, show_default=RUN_DIR_SHOWN, help=help)  # fmt: skip


def leaderboard_option(help: str) -> Callable[[F], F]:
    """``--leaderboard``, defaulting to ``leaderboards/local.jsonl`` under the same home."""
    from che_bench.util import LEADERBOARD_SHOWN, default_leaderboard

    return click.option("--leaderboard", type=click.Path(dir_okay=False, path_type=Path),
                        default=default_leaderboard, show_default=LEADERBOARD_SHOWN,
                        help=help)  # fmt: skip
