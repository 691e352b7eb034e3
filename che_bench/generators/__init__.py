"""The CHE task generators and their registry.

A task is one module: a :class:`Task` subclass decorated with ``@register_task`` in any
public module under ``regular/``, ``dcf/`` or ``cs/`` (the groups of Delétang et al.'s
reference code, google-deepmind/neural_networks_chomsky_hierarchy). The modules are
discovered, not listed; the class holds every fact about the task (name, level, sizes,
default lengths, golden examples, oracle), and its constructor's keyword arguments are the
task parameters a run records in ``RunConfig.task_params``. Private ``_*.py`` modules hold
shared helpers. Plugin tasks register through the ``che_bench.tasks`` entry-point group.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from che_bench.errors import ConfigError
from che_bench.generators.base import Batch, Example, Level, Task
from che_bench.registry import Registry

TASKS: Registry[type[Task]] = Registry("task", entry_point_group="che_bench.tasks")

#: Parameter types a task constructor may take (they go into the config hash as JSON).
PARAM_TYPES = (bool, int, float, str)


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a Task subclass under ``cls.name``."""
    TASKS.add(cls.name, cls)
    return cls


def resolve_task_params(name: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The task's constructor keyword defaults, updated with ``given`` and validated.

    An unknown key or a value of the wrong type is a one-line :class:`ConfigError`.
    """
    cls = TASKS.get(name)
    given = dict(given or {})
    accepted = {
        key: p
        for key, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        valid = f"valid: {', '.join(accepted)}" if accepted else "it takes none"
        raise ConfigError(f"task {name!r} has no parameter {', '.join(unknown)}; {valid}")
    params: dict[str, Any] = {}
    for key, p in accepted.items():
        if key not in given and p.default is p.empty:
            raise ConfigError(f"task {name!r} needs parameter {key!r}")
        params[key] = _check_type(name, key, given.get(key, p.default), p.default)
    return params


def _check_type(name: str, key: str, value: Any, default: Any) -> Any:
    kind = type(default) if isinstance(default, PARAM_TYPES) else None
    ok = isinstance(value, PARAM_TYPES) and (
        kind is None
        or (type(value) is kind)
        or (kind is float and type(value) is int)  # 2 for a float parameter is fine
    )
    if not ok:
        want = kind.__name__ if kind else "bool, int, float or str"
        raise ConfigError(
            f"task {name!r}: parameter {key} must be {want}, got {value!r} ({type(value).__name__})"
        )
    return float(value) if kind is float else value


def build_task(name: str, params: dict[str, Any] | None = None) -> Task:
    """Instantiate task ``name`` with ``params`` merged into its defaults (validated)."""
    return TASKS.get(name)(**resolve_task_params(name, params))


def get_task(name: str, **params: Any) -> Task:
    """Instantiate the task registered under ``name`` (did-you-mean on a typo)."""
    return build_task(name, params)


def list_tasks(pattern: str = "*") -> list[str]:
    """Registered task names matching a shell-style wildcard."""
    return TASKS.list(pattern)


def _import_task_modules() -> None:
    """Import every public module of this package; importing registers its tasks."""
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        if not module.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(module.name)


_import_task_modules()

__all__ = [
    "TASKS",
    "Batch",
    "Example",
    "Level",
    "Task",
    "build_task",
    "get_task",
    "list_tasks",
    "register_task",
    "resolve_task_params",
]
