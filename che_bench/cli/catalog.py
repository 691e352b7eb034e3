"""``che-bench list`` and ``che-bench sample``: what there is, and what a task asks."""

from __future__ import annotations

import fnmatch

import click
from rich.table import Table

from che_bench.cli._common import console
from che_bench.errors import ConfigError

MAX_SAMPLE_LENGTH = 10_000


@click.command("list")
@click.argument("what", type=click.Choice(["tasks", "encodings", "presets"]))
@click.argument("pattern", default="*")
def list_command(what: str, pattern: str) -> None:
    """List tasks, encodings or presets, optionally filtered by a wildcard PATTERN.

    \b
    Examples:
      che-bench list encodings 'dape*'
      che-bench list tasks '*string*'
    """
    from che_bench.presets import list_presets, load_card, load_preset

    table = Table(box=None, pad_edge=False)
    if what == "tasks":
        from che_bench.generators import list_tasks

        names = list_tasks(pattern)
        for column in ("task", "level", "chance", "train", "test", "description"):
            table.add_column(column)
        for name in names:
            card = load_card(name)
            table.add_row(
                name,
                card["level"],
                f"{card['chance']:.0%}",
                "-".join(map(str, card["train_lengths"])),
                "-".join(map(str, card["test_lengths"])),
                card["description"],
            )
    elif what == "encodings":
        from che_bench.encodings import ENCODINGS, list_encodings  # imports torch

        names = list_encodings(pattern)
        table.add_column("encoding")
        table.add_column("options")
        table.add_column("description")
        for name in names:
            entry = ENCODINGS.get(name)
            options = ", ".join(f"{k}={v.default}" for k, v in entry.options.items())
            table.add_row(name, options or "-", entry.description)
    else:
        names = [p for p in list_presets() if fnmatch.fnmatch(p, pattern)]
        table.add_column("preset")
        table.add_column("description")
        for name in names:
            table.add_row(name, str(load_preset(name).get("description", "")))
    if not names:
        raise ConfigError(f"no {what} match {pattern!r}; try `che-bench list {what}`")
    console.print(table)


@click.command()
@click.option("--task", "-t", required=True, help="Task name (see `che-bench list tasks`).")
@click.option(
    "--length",
    "-n",
    type=click.IntRange(1, MAX_SAMPLE_LENGTH),
    default=10,
    show_default=True,
    help=f"Input length N (at most {MAX_SAMPLE_LENGTH:,}: the output is meant to be read).",
)
@click.option(
    "--count",
    "-c",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="How many examples.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the numpy generator the examples are drawn from.",
)
def sample(task: str, length: int, count: int, seed: int) -> None:
    """Print decoded examples of TASK at input length N, to see what it asks: the input
    tokens, the target and the mask of the positions that are scored.

    \b
    Examples:
      che-bench sample --task reverse_string --length 8
      che-bench sample -t solve_equation -n 12 -c 5 --seed 3
    """
    import numpy as np

    from che_bench.generators import get_task

    instance = get_task(task)
    batch = instance.sample(np.random.default_rng(seed), count, length)
    table = Table(title=f"{task} ({instance.level}), length {length}", box=None)
    for column in ("input", "target", "mask"):
        table.add_column(column, overflow="fold")
    for x, y, m in zip(batch.inputs, batch.targets, batch.mask):
        table.add_row(
            instance.decode_inputs(x),
            instance.decode_targets(y),
            "".join("1" if b else "." for b in m),
        )
    console.print(table)
