"""``che-bench evaluate`` and ``che-bench runs``: re-score and manage the models runs kept."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from che_bench.cli._common import check_writable, console, leaderboard_option, run_dir_option, say
from che_bench.util import (
    fmt_range,
    matches,
    parse_size,
)

if TYPE_CHECKING:
    from che_bench.running.kept import KeptModel

RUN_DIR = run_dir_option("Where the runs kept their models.")


@click.command()
@click.argument("run_key")
@click.option(
    "--test-lengths",
    required=True,
    help="Lengths LO-HI, or LO-HI:STRIDE for every STRIDE-th (ends included).",
)
@click.option("--eval-samples", type=click.IntRange(min=1), help="Samples per length (the run's).")
@leaderboard_option("The leaderboard holding the run's row; the evaluation row is appended to it.")
@RUN_DIR
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--max-memory", help="Evaluation memory budget, e.g. 2GB (default: 1/4 of free).")
def evaluate(
    run_key: str,
    test_lengths: str,
    eval_samples: int | None,
    leaderboard: Path,
    run_dir: Path,
    device: str,
    max_memory: str | None,
) -> None:
    """Score a run's kept model on other lengths, without retraining; append one row.

    RUN_KEY is the run's key (as `run` prints it and `che-bench runs list` shows it) or a
    unique prefix of it. The row is of kind `evaluation`: same run_key and config as the
    training row, its own test lengths and scores. `report --evaluations` and
    `plot --kind curves` show it; `check`, `compare` and sweeps leave it out. Length ℓ's
    test set depends only on the run's eval seed and ℓ, so the numbers are those a fresh
    run with these test lengths and the same seed gets.

    \b
    Examples:
      che-bench evaluate 3f9c2a1b --test-lengths 501-1000:50
      che-bench evaluate 3f9c2a1b0d4e5f60-s0 --test-lengths 41-100 --eval-samples 128
    """
    from che_bench.cli._view import ProgressView, render_row
    from che_bench.config import parse_strided
    from che_bench.results.leaderboard import append_row
    from che_bench.running import kept as lib
    from che_bench.running.rescore import rescore, training_row

    lengths, stride = parse_strided(test_lengths, "--test-lengths")
    kept = lib.find(run_dir, run_key)
    row = training_row(leaderboard, kept)
    check_writable(leaderboard)
    config = kept.config
    say(
        f"[bold]{config.task}[/] × [bold]{config.encoding}[/]  seed {config.seed}  trained on "
        f"{fmt_range(config.train_lengths)}  evaluating {fmt_range(lengths)}"
        + (f" every {stride}" if stride else "")
        + f"  run {kept.run_key}"
    )
    with ProgressView(console) as view:
        record = rescore(
            kept,
            row,
            lengths,
            stride=stride or 1,
            samples=eval_samples,
            device=device,
            max_memory=parse_size(max_memory),
            progress=view.on_eval,
        )
    append_row(leaderboard, record)
    render_row(record)
    say(f"appended 1 evaluation row to {leaderboard}")
    if record.status != "ok":
        sys.exit(1)


@click.group()
def runs() -> None:
    """The models that runs kept (RUN_DIR/<run_key>/model.pt): list, show, prune.

    \b
    Examples:
      che-bench runs list --pe 'dape*'
      che-bench runs show 3f9c2a1b
      che-bench runs prune --task parity_check --dry-run
    """


@runs.command("list")
@RUN_DIR
@click.option("--task", "-t", "tasks", multiple=True, help="Only tasks matching, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Only encodings matching, repeatable.")
def list_runs(run_dir: Path, tasks: tuple[str, ...], encodings: tuple[str, ...]) -> None:
    """One line per kept model: run key, task, encoding, seed, score, size."""
    from rich.table import Table

    from che_bench.running.kept import kept_models

    found = [k for k in kept_models(run_dir) if _selected(k, tasks, encodings)]
    if not found:
        say(f"no kept models under {run_dir}/" + (" matching" if tasks or encodings else ""))
        return
    table = Table(box=None)
    for name in ("run key", "task", "encoding", "seed", "score", "size"):
        table.add_column(name, justify="right" if name in ("seed", "score", "size") else "left")
    for k in found:
        score = "-" if k.score is None else f"{k.score:.4f}"
        size = f"{k.size / 2**20:.1f} MB"
        table.add_row(k.run_key, k.config.task, k.config.encoding, str(k.config.seed), score, size)
    console.print(table)
    say(f"{len(found)} kept model(s), {sum(k.size for k in found) / 2**20:.1f} MB in {run_dir}/")


@runs.command("show")
@click.argument("run_key")
@RUN_DIR
def show_run(run_key: str, run_dir: Path) -> None:
    """A kept model's path and its resolved config."""
    import json

    from che_bench.running.kept import find

    kept = find(run_dir, run_key)
    say(f"[bold]{kept.run_key}[/]  {kept.path}  ({kept.size / 2**20:.1f} MB)  run_id {kept.run_id}")
    console.print_json(json.dumps(kept.config.to_dict(), default=str))


@runs.command("prune")
@RUN_DIR
@click.option("--task", "-t", "tasks", multiple=True, help="Tasks matching, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Encodings matching, repeatable.")
@click.option("--all", "everything", is_flag=True, help="Every kept model.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted and delete nothing.")
def prune(
    run_dir: Path,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    everything: bool,
    dry_run: bool,
) -> None:
    """Delete kept models matching --task/--pe (or --all). Rows stay; checkpoints of runs
    still training stay."""
    from che_bench.errors import ConfigError
    from che_bench.running.kept import kept_models, remove

    if not (tasks or encodings or everything):
        raise ConfigError("runs prune needs --task, --pe or --all (nothing is deleted by default)")
    found = [k for k in kept_models(run_dir) if _selected(k, tasks, encodings)]
    size = sum(k.size for k in found) / 2**20
    if dry_run:
        for k in found:
            say(f"would delete {k.directory}/ ({k.config.task} × {k.config.encoding})")
        say(f"{len(found)} kept model(s), {size:.1f} MB would be deleted")
        return
    for k in found:
        remove(k)
    say(f"deleted {len(found)} kept model(s), {size:.1f} MB, from {run_dir}/")


def _selected(kept: KeptModel, tasks: tuple[str, ...], encodings: tuple[str, ...]) -> bool:
    return matches(kept.config.task, tasks) and matches(kept.config.encoding, encodings)
