"""YAML loading with errors that name the file and line (``yaml.safe_load`` semantics, stricter).

Aliases (``&a`` / ``*a``) are refused, which rules out exponential "billion laughs"
expansion, and a key given twice in one mapping is an error instead of silently keeping
the last value. Files must be UTF-8.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from che_bench.errors import ConfigError


class StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` without aliases and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(exc: yaml.YAMLError, where: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    at = f"{where}:{mark.line + 1}" if mark is not None else where
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"{at}: malformed YAML ({problem}); fix it")


def parse_value(text: str, where: str) -> Any:
    """One YAML value from a command-line string (``--set key=value``)."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, where) from None


def compose(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of a YAML document."""
    try:
        return yaml.compose(text, Loader=StrictLoader), yaml.load(text, Loader=StrictLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, str(path)) from None


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or a one-line error naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_mapping(path: Path, allowed: Iterable[str], *, what: str) -> dict[str, Any]:
    """Load a YAML mapping from ``path`` and reject keys outside ``allowed``.

    Errors are one line: ``file:line: problem; what to do``.
    """
    node, data = compose(path, read_text(path, what))
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
