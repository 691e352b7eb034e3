"""``che-bench export``: a task's generated data as NumPy or Parquet files."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from che_bench.cli._common import console, say
from che_bench.errors import ConfigError


@click.command()
@click.option("--task", "-t", required=True, help="Task name (see `che-bench list tasks`).")
@click.option(
    "--lengths",
    required=True,
    help="Input lengths LO-HI, or LO-HI:STRIDE for every STRIDE-th (ends included).",
)
@click.option(
    "--samples",
    "-s",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Samples per length (512: the paper preset's eval_samples).",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to write (created; must be empty unless --force).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Seed of the samples [default: 1, the seed of che-bench's test sets].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["npz", "parquet"]),
    default="npz",
    show_default=True,
    help="npz: one file per length (NumPy); parquet: one file, a row per sample (pyarrow).",
)
@click.option(
    "--force", is_flag=True, help="Write into a non-empty directory, replacing an earlier export."
)
def export(
    task: str, lengths: str, samples: int, output: Path, seed: int | None, fmt: str, force: bool
) -> None:
    """Write TASK's generated samples (inputs, targets, mask, lengths) to files that JAX,
    PyTorch or Hugging Face datasets load, with a meta.json: task, parameters, seed,
    lengths, vocabulary and the che-bench version that generated them.

    Length L's samples are drawn as che-bench's evaluator draws them, from a generator
    seeded by (seed, L), so the same command writes the same files, and with the default
    seed and --samples equal to a run's eval_samples they are the test set it was scored
    on (41-500 and 512 in the paper preset; 1-40 and 64 for its in-distribution score).

    \b
    Examples:
      che-bench export --task reverse_string --lengths 41-500 -o data/reverse_test
      che-bench export -t parity_check --lengths 1-40 --samples 64 -o data/parity_in_dist
      che-bench export -t bucket_sort --lengths 41-500:10 --format parquet -o data/bs
    \b
    Load one length in Python:
      z = numpy.load("data/reverse_test/length_0041.npz"); z["inputs"], z["mask"]
    """
    from che_bench.config import parse_strided, strided
    from che_bench.export import export as write

    span, stride = parse_strided(lengths, "--lengths")
    if stride is not None and stride < 1:
        raise ConfigError(f"--lengths: STRIDE must be >= 1, got {stride}")
    picked = strided(span, stride or 1)
    live = console.is_terminal
    columns = (TextColumn("export"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeRemainingColumn(), console=console, disable=not live) as bar:
        job = bar.add_task("export", total=len(picked))

        def progress(done: int, total: int, length: int) -> None:
            bar.update(job, completed=done)
            if not live:
                say(f"length {length}: {samples} samples ({done}/{total})")

        meta = write(
            task, picked, samples, output, seed=seed, fmt=fmt, force=force, progress=progress
        )
    say(
        f"wrote {len(meta['files'])} {fmt} file(s) and meta.json to {output}: {task}, "
        f"{len(picked)} lengths × {samples} samples, seed {meta['seed']}"
    )
