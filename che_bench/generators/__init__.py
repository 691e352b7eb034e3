"""The 15 CHE task generators and their registry.

Adding a task touches two places: a module here that defines a :class:`Task` subclass
decorated with ``@register_task``, and a card ``tasks/<name>.yaml``.
"""

from __future__ import annotations

from che_bench.generators.base import Batch, Level, Task
from che_bench.registry import Registry

TASKS: Registry[type[Task]] = Registry("task", entry_point_group="che_bench.tasks")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a Task subclass under ``cls.name``."""
    TASKS.add(cls.name, cls)
    return cls


def get_task(name: str) -> Task:
    """Instantiate the task registered under ``name`` (did-you-mean on a typo)."""
    return TASKS.get(name)()


def list_tasks(pattern: str = "*") -> list[str]:
    """Registered task names matching a shell-style wildcard."""
    return TASKS.list(pattern)


# Importing the modules registers the built-in tasks.
from che_bench.generators import (  # noqa: E402,F401
    binary_addition,
    binary_multiplication,
    bucket_sort,
    compute_sqrt,
    cycle_navigation,
    duplicate_string,
    even_pairs,
    missing_duplicate_string,
    modular_arithmetic,
    modular_arithmetic_brackets,
    odds_first,
    parity_check,
    reverse_string,
    solve_equation,
    stack_manipulation,
)

__all__ = ["TASKS", "Batch", "Level", "Task", "get_task", "list_tasks", "register_task"]
