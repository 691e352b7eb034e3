"""YAML loading with errors that name the file and line (``yaml.safe_load`` semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from che_bench.errors import ConfigError


def load_mapping(path: Path, allowed: Iterable[str], *, what: str) -> dict[str, Any]:
    """Load a YAML mapping from ``path`` and reject keys outside ``allowed``.

    Errors are one line: ``file:line: problem; what to do``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML ({problem}); fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a {what} must be a mapping of keys to values")
    allowed = set(allowed)
    lines = key_lines(node)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{path}:{lines.get(key, 1)}: unknown key {key!r} in {what}; "
                f"valid keys: {', '.join(sorted(allowed))}"
            )
    return data


def key_lines(node: yaml.Node | None) -> dict[Any, int]:
    """1-based line of every top-level key of a mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value}
